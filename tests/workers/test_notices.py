"""Client notices: every template renders, the listed events notify, notes never leave, SMTP is real."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller

from languages import available
from settings import ROOT
from tests.conftest import FixedClock, SmtpInbox
from tests.inbox import conftest as mail_tests
from tests.inbox import fixtures
from tests.inbox.conftest import Desk
from ticketing import conversation, lifecycle
from ticketing.db import transaction
from workers.notices import TEMPLATE_NAMES, NoticeConfigError, load_notices

VALUES = {
    "company": "ITECH Solutions",
    "number": 400127,
    "tag": "[#400127]",
    "summary": "Printer offline",
    "priority": "P3",
    "priority_label": "P3 - Medium",
    "source": "email",
    "first_response_minutes": 12,
    "first_response_due": "Wed Nov 18, 10:12 AM PST",
    "support_phone": "805-592-2500",
    "contact_name": "Dana",
    "client_name": "Acme Dental",
    "actor": "Alex",
    "note": "Replaced the fuser.",
    "question": "Which model?",
    "estimate": "Thu Nov 19, 2:00 PM PST",
    "reopen_days": 7,
    "reply": "We are on our way.",
    "callback_number": "805-555-0188 ext. 12",
}

desk = mail_tests.desk  # the email tests' desk: a directory of clients and the mail jobs


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_every_template_of_the_shipped_file_renders(name: str) -> None:
    rendered = load_notices(ROOT / "config" / "mail.toml").render(name, VALUES)
    assert rendered.body.strip() and "{{" not in rendered.body
    if name != "reply_sms":
        assert rendered.subject and "{" not in rendered.subject


@pytest.mark.parametrize("language", [code for code in available() if code != "en"])
def test_every_template_is_translated_into_every_call_language_and_renders(language: str) -> None:
    notices = load_notices(ROOT / "config" / "mail.toml")
    assert sorted(notices.translations.get(language, {})) == sorted(TEMPLATE_NAMES)
    for name in TEMPLATE_NAMES:
        english = notices.render(name, VALUES)
        rendered = notices.render(name, VALUES, language)
        assert rendered.body.strip() and "{{" not in rendered.body and rendered.body != english.body
        if name != "reply_sms":
            assert rendered.subject and "{" not in rendered.subject
    assert notices.render("created", VALUES, "xx") == notices.render("created", VALUES)  # not translated: as written


def test_a_broken_translation_names_the_key(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "mail.toml"
    text = (ROOT / "config" / "mail.toml").read_text()
    path.write_text(text.replace("[translations.es.waiting]", "[translations.es.wating]"))
    with pytest.raises(NoticeConfigError, match="translations.es.wating: unknown template"):
        load_notices(path)
    path.write_text(text.replace('subject = "Resuelto: {{ summary }}"', 'subject = "Resuelto: {{ summary }"'))
    with pytest.raises(NoticeConfigError, match="translations.es.resolved.subject"):
        load_notices(path)


def test_a_broken_notices_file_names_the_key(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "mail.toml"
    path.write_text((ROOT / "config" / "mail.toml").read_text().replace("created = true", 'created = "yes"'))
    with pytest.raises(NoticeConfigError, match="notify.created"):
        load_notices(path)


def _open(desk: Desk, clock: FixedClock, **kw: object) -> int:
    with transaction(desk.runtime.sessions) as s:
        from sqlalchemy import select

        from ticketing.models import Contact

        dana = s.scalars(select(Contact).where(Contact.name == "Dana Whitfield")).one()
        t = lifecycle.open_ticket(
            s,
            policy=desk.runtime.policy,
            now=clock(),
            priority="P2",
            source="phone",
            actor="coordinator",
            summary="Server down",
            contact_id=dana.id,
            **kw,  # type: ignore[arg-type]
        )
        return t.number  # type: ignore[return-value]


def test_progress_updates_go_out_on_each_listed_event_and_never_for_notes(desk: Desk, clock: FixedClock) -> None:
    number = _open(desk, clock)
    policy = desk.runtime.policy
    steps = [
        lambda s, t: lifecycle.set_status(s, t, "acknowledged", actor="Alex", now=clock(), policy=policy),
        lambda s, t: lifecycle.add_note(
            s, t, "internal: the admin password is in the vault", actor="Alex", now=clock()
        ),
        lambda s, t: lifecycle.meet_milestone(
            s,
            t,
            "resolution_plan",
            actor="Alex",
            now=clock(),
            estimate=clock() + timedelta(hours=3),
            note="Replacing the disk.",
        ),
        lambda s, t: lifecycle.pause_sla(s, t, actor="Alex", now=clock(), reason="Can we reboot at noon?"),
        lambda s, t: lifecycle.resume_sla(s, t, actor="Alex", now=clock(), policy=policy),
        lambda s, t: conversation.reply_to_client(s, t, "The disk arrives at 2 pm.", actor="Alex", now=clock()),
        lambda s, t: lifecycle.set_status(
            s, t, "resolved", actor="Alex", now=clock(), policy=policy, reason="Disk replaced."
        ),
    ]
    for step in steps:
        with transaction(desk.runtime.sessions) as s:
            step(s, lifecycle.get_ticket(s, number))
        desk.run_jobs()
        clock.advance(minutes=2)
    sent = desk.sent()
    subjects = [m["Subject"] for m in sent]
    assert subjects == [
        f"[#{number}] New ticket created: Server down",
        f"[#{number}] We are working on your request: Server down",
        f"[#{number}] Resolution plan for your request: Server down",
        f"[#{number}] We need information from you: Server down",
        f"[#{number}] Re: Server down",
        f"[#{number}] Resolved: Server down",
    ]
    bodies = [m.get_body(("plain",)).get_content() for m in sent]
    assert all("vault" not in b for b in bodies)  # the internal note never left
    assert "P2 - High" in bodies[0] and "call 805-592-2500 to adjust" not in bodies[0]  # that line is for email tickets
    assert "Estimated resolution: Wed Nov 18, 1:04 PM PST" in bodies[2]
    assert "Can we reboot at noon?" in bodies[3] and "The disk arrives at 2 pm." in bodies[4]
    assert all(m["Auto-Submitted"] in ("auto-generated", "auto-replied") for m in sent)
    assert len({m["Message-ID"] for m in sent}) == 6


def test_a_retried_notice_job_never_sends_twice(desk: Desk, clock: FixedClock) -> None:
    from workers import mail as jobs

    number = _open(desk, clock)
    desk.run_jobs()
    key = f"notify:{number}:created:1"
    assert jobs.notify_ticket_event(number, "created", key) == "sent"  # already sent: reported, not resent
    assert len(desk.sent()) == 1


def test_a_caller_with_no_email_gets_the_reply_by_sms(desk: Desk, clock: FixedClock, twilio_api) -> None:  # type: ignore[no-untyped-def]
    desk.runtime.settings = desk.runtime.settings.with_overrides(**twilio_api.settings_overrides())
    with transaction(desk.runtime.sessions) as s:
        t = lifecycle.open_ticket(
            s,
            policy=desk.runtime.policy,
            now=clock(),
            priority="P3",
            source="voicemail",
            actor="support line",
            caller_number="+18055550777",
            summary="Call back",
        )
        number = t.number
        message = conversation.reply_to_client(s, t, "We fixed it remotely.", actor="Alex", now=clock())
        assert message.channel == "sms"
    desk.run_jobs()
    assert desk.sent() == []
    assert any("We fixed it remotely." in (m.param("Body") or "") for m in twilio_api.messages("+18055550777"))
    with desk.runtime.sessions() as s:
        (row,) = conversation.conversation(s, lifecycle.get_ticket(s, number))
        assert row.state == "sent"


def test_notices_reach_a_real_smtp_server(desk: Desk, smtp_server: tuple[Controller, SmtpInbox]) -> None:
    controller, handler = smtp_server
    desk.runtime.settings = desk.runtime.settings.with_overrides(
        smtp_url=f"smtp+insecure://127.0.0.1:{controller.port}"
    )
    desk.receive(fixtures.multipart_alternative())
    (message,) = handler.messages
    assert message["To"] == "dana@acme-dental.example" and re.match(r"\[#\d{6,}\] ", message["Subject"])
    assert message.get_body(("plain",)) is not None and message["Message-ID"]


def test_a_smtp_server_that_is_down_leaves_the_notice_failed_and_visible(desk: Desk) -> None:
    from testing.twilio_server import free_port

    desk.runtime.settings = desk.runtime.settings.with_overrides(smtp_url=f"smtp+insecure://127.0.0.1:{free_port()}")
    desk.receive(fixtures.multipart_alternative())  # no retries left outside a worker: the final failure
    (ticket,) = desk.tickets()
    with desk.runtime.sessions() as s:
        t = lifecycle.get_ticket(s, ticket.number)
        out = [m for m in conversation.conversation(s, t) if m.direction == "out"]
        assert [m.state for m in out] == ["failed"] and out[0].error
        assert "email failed" in [a.action for a in t.audit]


def test_a_send_that_dies_after_the_server_accepted_it_is_sent_again_with_the_same_message_id(
    desk: Desk, smtp_server: tuple[Controller, SmtpInbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    from workers import mail as jobs

    controller, handler = smtp_server
    desk.runtime.settings = desk.runtime.settings.with_overrides(
        smtp_url=f"smtp+insecure://127.0.0.1:{controller.port}"
    )
    real_send = jobs.send_message

    def accepted_then_killed(*args: object, **kw: object) -> str:
        real_send(*args, **kw)  # type: ignore[arg-type]
        raise RuntimeError("worker killed after the 250")

    monkeypatch.setattr(jobs, "send_message", accepted_then_killed)
    with pytest.raises(RuntimeError):
        desk.receive(fixtures.multipart_alternative())
    monkeypatch.setattr(jobs, "send_message", real_send)
    desk.run_jobs()  # the retry of the same (ticket, event)
    first, again = handler.messages
    assert first["Message-ID"] == again["Message-ID"] and first["Subject"] == again["Subject"]
    (ticket,) = desk.tickets()
    with desk.runtime.sessions() as s:
        t = lifecycle.get_ticket(s, ticket.number)
        (out,) = [m for m in conversation.conversation(s, t) if m.direction == "out"]
        assert out.state == "sent" and out.message_id == first["Message-ID"] and out.tries == 2
        assert [a.action for a in t.audit].count("email sent") == 1


def test_a_connection_that_drops_at_quit_after_the_250_is_not_sent_again(
    desk: Desk, smtp_server: tuple[Controller, SmtpInbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    import smtplib

    controller, handler = smtp_server
    desk.runtime.settings = desk.runtime.settings.with_overrides(
        smtp_url=f"smtp+insecure://127.0.0.1:{controller.port}"
    )
    docmd = smtplib.SMTP.docmd

    def reset_at_quit(self: smtplib.SMTP, cmd: str, args: str = "") -> tuple[int, bytes]:
        if cmd.upper() == "QUIT":
            raise ConnectionResetError("connection reset by peer")
        return docmd(self, cmd, args)

    monkeypatch.setattr(smtplib.SMTP, "docmd", reset_at_quit)
    desk.receive(fixtures.multipart_alternative())
    assert len(handler.messages) == 1
    (ticket,) = desk.tickets()
    with desk.runtime.sessions() as s:
        (out,) = [
            m for m in conversation.conversation(s, lifecycle.get_ticket(s, ticket.number)) if m.direction == "out"
        ]
        assert out.state == "sent" and out.tries == 1
