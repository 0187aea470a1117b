"""Email intake end to end on real MIME: stored raw first, parsed by the job, one ticket or one reply each."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.conftest import FixedClock
from tests.inbox import fixtures
from tests.inbox.conftest import Desk
from ticketing import lifecycle
from ticketing.db import transaction
from ticketing.models import InboundMail, MailAddress, MailAttachment, Status, Ticket, TicketMessage


def messages(desk: Desk, number: int) -> list[TicketMessage]:
    with desk.runtime.sessions() as s:
        t = lifecycle.get_ticket(s, number)
        rows = s.scalars(select(TicketMessage).where(TicketMessage.ticket_id == t.id).order_by(TicketMessage.id)).all()
        for r in rows:
            s.expunge(r)
        return list(rows)


def test_an_email_opens_one_p3_ticket_and_the_sender_gets_one_new_ticket_created_email(desk: Desk) -> None:
    row = desk.receive(fixtures.multipart_alternative())
    (ticket,) = desk.tickets()
    assert (ticket.priority, ticket.source, ticket.summary) == ("P3", "email", "Printer in reception is offline")
    assert "“offline” since this morning" in ticket.description
    assert desk.inbound(row).state == "ticketed"
    (confirmation,) = desk.sent()
    assert confirmation["To"] == "dana@acme-dental.example"
    assert confirmation["Subject"] == f"[#{ticket.number}] New ticket created: Printer in reception is offline"
    assert confirmation["Auto-Submitted"] == "auto-replied"
    assert confirmation["In-Reply-To"] == "<alt-1@acme-dental.example>"
    body = confirmation.get_body(("plain",)).get_content()
    assert f"Ticket number:   {ticket.number}" in body and "P3 - Medium" in body
    assert "by Wed Nov 18, 10:12 AM PST" in body  # the first-response target, Pacific time
    assert "Email tickets default to P3 - Medium priority. For higher priorities (e.g., P1), call 805-592-2500" in body
    stored = messages(desk, ticket.number)
    assert [(m.direction, m.state) for m in stored] == [("in", "received"), ("out", "sent")]
    assert stored[1].message_id == confirmation["Message-ID"]


def test_the_same_message_twice_is_one_ticket_and_one_confirmation(desk: Desk) -> None:
    first = desk.receive(fixtures.multipart_alternative())
    second = desk.receive(fixtures.multipart_alternative(), via="mailgun")
    assert first == second
    assert len(desk.tickets()) == 1 and len(desk.sent()) == 1


def test_a_message_without_message_id_is_deduplicated_by_its_headers(desk: Desk) -> None:
    raw = fixtures.no_message_id()
    desk.receive(raw)
    desk.receive(raw.replace(b"From:", b"Received: from relay2 by mx; Wed, 18 Nov 2026\r\nFrom:", 1))
    (ticket,) = desk.tickets()
    assert ticket.contact_id is None and ticket.client_id is None
    with desk.runtime.sessions() as s:
        assert "unknown sender" in s.scalars(select(InboundMail.outcome)).one()
    assert "(unknown sender)" in ticket.description
    assert [m["To"] for m in desk.sent()] == ["someone@unknown-company.example"]  # unknown senders still hear back


def test_html_only_mail_becomes_readable_text_and_the_domain_finds_the_client(desk: Desk) -> None:
    desk.receive(fixtures.html_only())
    (ticket,) = desk.tickets()
    assert "Since 9:40 none of us can reach the VPN." in ticket.description
    assert (
        "Laptop A" in ticket.description and "<b>" not in ticket.description and "color:red" not in ticket.description
    )
    with desk.runtime.sessions() as s:
        t = s.get(Ticket, ticket.id)
        assert t is not None and t.client is not None and t.client.name == "Pismo Title"


def test_latin1_and_shift_jis_subjects_and_bodies_decode(desk: Desk) -> None:
    desk.receive(fixtures.latin1_subject())
    desk.receive(fixtures.shift_jis_subject())
    latin, sjis = desk.tickets()
    assert latin.summary == "Problème de réseau à l'accueil"
    assert "Le réseau ne marche plus à l'accueil." in latin.description
    assert latin.client_id is not None and latin.contact_id is None  # acme-dental.example: the client by domain
    assert sjis.summary == "プリンターが動きません"
    assert "受付のプリンターが印刷できません。" in sjis.description


def test_attachments_are_stored_up_to_the_cap_and_a_bigger_one_is_listed_not_stored(desk: Desk) -> None:
    desk.receive(fixtures.with_attachment(10_000, "<small@acme-dental.example>"))
    desk.receive(fixtures.with_attachment(200_000, "<big@acme-dental.example>"))
    with desk.runtime.sessions() as s:
        small, big = s.scalars(select(MailAttachment).order_by(MailAttachment.id)).all()
        assert small.path is not None and small.size == 10_000
        from pathlib import Path

        assert Path(small.path).read_bytes()[:256] == bytes(range(256))
        assert big.path is None and "over the 65536-byte cap" in (big.note or "")
    assert len(desk.tickets()) == 2  # the message with the big file is still a ticket


def test_an_unparsable_or_oversize_message_is_quarantined_and_the_next_one_still_becomes_a_ticket(
    desk: Desk,
) -> None:
    desk.runtime.settings = desk.runtime.settings.with_overrides(mail_max_bytes=150_000)
    bad = desk.receive(b"\r\n\r\n\x00\x01garbage")
    oversize = desk.receive(fixtures.with_attachment(200_000, "<huge@acme-dental.example>"))
    good = desk.receive(fixtures.multipart_alternative())
    assert desk.inbound(bad).state == "quarantined" and "unparsable" in (desk.inbound(bad).outcome or "")
    assert desk.inbound(oversize).state == "quarantined" and "MAIL_MAX_BYTES" in (desk.inbound(oversize).outcome or "")
    assert desk.inbound(good).state == "ticketed"
    assert len(desk.tickets()) == 1


def test_a_reply_with_the_tag_only_lands_on_its_ticket_and_resumes_a_waiting_ticket(
    desk: Desk, clock: FixedClock
) -> None:
    desk.receive(fixtures.multipart_alternative())
    (ticket,) = desk.tickets()
    with transaction(desk.runtime.sessions) as s:
        t = lifecycle.get_ticket(s, ticket.number)
        lifecycle.pause_sla(s, t, actor="coordinator", now=clock(), reason="Which printer model is it?")
    desk.run_jobs()
    waiting = desk.sent()[-1]
    assert waiting["Subject"].startswith(f"[#{ticket.number}] We need information from you")
    assert "Which printer model is it?" in waiting.get_content()
    clock.advance(hours=1)
    row = desk.receive(fixtures.reply_with_tag_only(f"[#{ticket.number}]"))
    assert desk.inbound(row).state == "threaded"
    (again,) = desk.tickets()
    assert again.status == Status.IN_PROGRESS.value and again.paused_at is None
    assert [m.event for m in messages(desk, ticket.number) if m.direction == "in"] == ["client", "client"]
    assert len(desk.sent()) == 2  # a client's reply gets no automatic answer


def test_a_reply_with_in_reply_to_only_threads_and_subject_text_alone_never_does(desk: Desk) -> None:
    desk.receive(fixtures.multipart_alternative())
    (ticket,) = desk.tickets()
    confirmation_id = desk.sent()[0]["Message-ID"]
    desk.receive(fixtures.reply_with_in_reply_to_only(confirmation_id))
    assert len(desk.tickets()) == 1
    assert "Yes, please go ahead." in messages(desk, ticket.number)[-1].body
    desk.receive(fixtures.same_subject_no_tag())
    assert len(desk.tickets()) == 2  # same subject, no tag, no known Message-ID: a new ticket


def test_an_outlook_out_of_office_threads_without_an_answer_or_a_status_change(desk: Desk) -> None:
    desk.receive(fixtures.multipart_alternative())
    (ticket,) = desk.tickets()
    confirmation_id = desk.sent()[0]["Message-ID"]
    row = desk.receive(fixtures.outlook_out_of_office(f"[#{ticket.number}]", confirmation_id))
    assert "automatic: Auto-Submitted: auto-generated" in (desk.inbound(row).outcome or "")
    assert len(desk.sent()) == 1 and len(desk.tickets()) == 1
    assert messages(desk, ticket.number)[-1].auto_reason == "Auto-Submitted: auto-generated"


def test_a_gmail_vacation_reply_to_a_resolved_ticket_neither_reopens_it_nor_gets_an_answer(
    desk: Desk, clock: FixedClock
) -> None:
    desk.receive(fixtures.multipart_alternative())
    (ticket,) = desk.tickets()
    with transaction(desk.runtime.sessions) as s:
        lifecycle.set_status(
            s, lifecycle.get_ticket(s, ticket.number), "resolved", actor="eng", now=clock(), policy=desk.runtime.policy
        )
    desk.run_jobs()
    assert len(desk.sent()) == 2  # confirmation, resolved
    desk.receive(fixtures.gmail_vacation(f"[#{ticket.number}]"))
    (t,) = desk.tickets()
    assert t.status == "resolved" and len(desk.sent()) == 2


def test_a_reply_to_a_resolved_ticket_reopens_it_within_the_window_and_later_opens_a_linked_ticket(
    desk: Desk, clock: FixedClock
) -> None:
    desk.receive(fixtures.multipart_alternative())
    (ticket,) = desk.tickets()
    policy = desk.runtime.policy
    with transaction(desk.runtime.sessions) as s:
        lifecycle.set_status(
            s, lifecycle.get_ticket(s, ticket.number), "resolved", actor="eng", now=clock(), policy=policy
        )
    clock.advance(days=2)
    desk.receive(fixtures.reply_with_tag_only(f"[#{ticket.number}]"))
    assert [t.status for t in desk.tickets()] == ["in progress"]
    with transaction(desk.runtime.sessions) as s:
        lifecycle.set_status(
            s, lifecycle.get_ticket(s, ticket.number), "resolved", actor="eng", now=clock(), policy=policy
        )
    clock.advance(days=8)
    row = desk.receive(fixtures.reply_with_in_reply_to_only(desk.sent()[0]["Message-ID"]))
    old, new = desk.tickets()
    assert old.status == "resolved" and new.status == "new" and new.source == "email"
    assert f"Follow-up of ticket #{old.number}" in new.description
    assert f"new ticket #{new.number}" in (desk.inbound(row).outcome or "")
    assert desk.sent()[-1]["Subject"].startswith(f"[#{new.number}] New ticket created")


def test_a_mailer_daemon_bounce_marks_the_address_bouncing_and_stops_mail_to_it(desk: Desk, clock: FixedClock) -> None:
    with transaction(desk.runtime.sessions) as s:
        from ticketing.models import Contact

        gone = s.scalars(select(Contact).where(Contact.email == "gone@acme-dental.example")).one()
        t = lifecycle.open_ticket(
            s,
            policy=desk.runtime.policy,
            now=clock(),
            priority="P3",
            source="phone",
            actor="coordinator",
            summary="New laptop",
            contact_id=gone.id,
        )
        number = t.number
    desk.run_jobs()
    (confirmation,) = desk.sent()
    row = desk.receive(fixtures.mailer_daemon_bounce(confirmation["Message-ID"]))
    assert desk.inbound(row).state == "bounce"
    with desk.runtime.sessions() as s:
        address = s.scalars(select(MailAddress)).one()
        assert address.address == "gone@acme-dental.example" and address.bouncing_since is not None
        assert "User unknown" in (address.bounce_reason or "")
    assert messages(desk, number)[0].state == "bounced"
    assert len(desk.tickets()) == 1  # a bounce is no ticket
    with transaction(desk.runtime.sessions) as s:
        lifecycle.set_status(
            s, lifecycle.get_ticket(s, number), "resolved", actor="eng", now=clock(), policy=desk.runtime.policy
        )
    desk.run_jobs()
    assert len(desk.sent()) == 1
    last = messages(desk, number)[-1]
    assert last.state == "suppressed" and "is bouncing since" in (last.error or "")


def test_a_mailing_list_message_is_ticketed_without_an_automatic_answer(desk: Desk) -> None:
    row = desk.receive(fixtures.mailing_list())
    (ticket,) = desk.tickets()
    assert "no automatic answer (Precedence: list)" in (desk.inbound(row).outcome or "")
    assert desk.sent() == []
    (incoming, notice) = messages(desk, ticket.number)
    assert notice.state == "suppressed" and "Precedence: list" in (notice.error or "")


def test_our_own_mail_coming_back_is_ignored(desk: Desk) -> None:
    desk.receive(fixtures.multipart_alternative())
    (confirmation,) = desk.sent()
    row = desk.receive(confirmation.as_bytes())
    assert desk.inbound(row).state == "ignored"
    assert len(desk.tickets()) == 1 and len(desk.sent()) == 1


def test_the_cap_stops_automatic_mail_to_one_address_about_one_ticket(desk: Desk, clock: FixedClock) -> None:
    desk.runtime.settings = desk.runtime.settings.with_overrides(mail_cap_per_ticket=3)
    desk.receive(fixtures.multipart_alternative())
    (ticket,) = desk.tickets()
    policy = desk.runtime.policy
    for i in range(4):
        with transaction(desk.runtime.sessions) as s:
            t = lifecycle.get_ticket(s, ticket.number)
            lifecycle.pause_sla(s, t, actor="eng", now=clock(), reason=f"question {i}")
            lifecycle.resume_sla(s, t, actor="eng", now=clock(), policy=policy)
        desk.run_jobs()
        clock.advance(minutes=1)
    assert len(desk.sent()) == 3  # confirmation + 2 questions, then the cap
    with desk.runtime.sessions() as s:
        assert s.scalar(select(func.count(TicketMessage.id)).where(TicketMessage.state == "suppressed")) == 2


def test_a_message_that_breaks_the_intake_itself_is_quarantined_and_the_next_one_still_goes_through(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    from inbox import intake

    real = intake._new_ticket

    def broken(*args: object, **kwargs: object) -> str:
        raise RuntimeError("a bug meets a strange message")

    monkeypatch.setattr(intake, "_new_ticket", broken)
    bad = desk.receive(fixtures.html_only())
    monkeypatch.setattr(intake, "_new_ticket", real)
    good = desk.receive(fixtures.multipart_alternative())
    assert desk.inbound(bad).state == "quarantined"
    assert "processing failed: RuntimeError" in (desk.inbound(bad).outcome or "")
    assert desk.inbound(good).state == "ticketed" and len(desk.tickets()) == 1
