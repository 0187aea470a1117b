"""The ticket's conversation with the client in the console: reply box, delivery states, attachments, quarantine."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from sqlalchemy import select

from tests.inbox import fixtures
from tests.inbox.conftest import Desk, desk  # noqa: F401 - the fixture
from tests.web.conftest import Console
from ticketing import lifecycle, portal
from ticketing.db import transaction
from ticketing.models import MailAttachment, OutboxMessage, TicketMessage


def test_the_ticket_shows_the_conversation_and_a_reply_goes_to_the_client_but_a_note_does_not(
    desk: Desk,  # noqa: F811
    console: Console,
) -> None:
    desk.receive(fixtures.with_attachment(2000))
    (ticket,) = desk.tickets()
    page = console.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert "Conversation" in page and "See attached." in page and 'id="composer"' in page
    assert "Public reply to <b>dana@acme-dental.example</b>" in page and ">sent" in page  # the confirmation's state
    note = console.post(f"/tickets/{ticket.number}/note", {"text": "internal: billing dispute"})
    assert note.status_code == 303
    reply = console.post(f"/tickets/{ticket.number}/reply", {"text": "A technician is on the way."})
    assert reply.status_code == 303
    desk.run_jobs()
    sent = desk.sent()
    assert [m["Subject"] for m in sent][-1] == f"[#{ticket.number}] Re: Screenshot of the error"
    assert sent[-1]["In-Reply-To"] == "<att-1@acme-dental.example>"
    assert all("billing dispute" not in m.get_body(("plain",)).get_content() for m in sent)
    with desk.runtime.sessions() as s:
        rows = s.scalars(select(TicketMessage).order_by(TicketMessage.id)).all()
        assert [(r.event, r.state) for r in rows] == [("client", "received"), ("created", "sent"), ("reply", "sent")]
        assert not any("note" in k for k in s.scalars(select(OutboxMessage.key)).all())
    empty = console.post(f"/tickets/{ticket.number}/reply", {"text": "  "})
    assert empty.status_code == 400 and "A reply needs some text." in empty.get_data(as_text=True)


def test_attachments_are_served_to_signed_in_users_only_as_downloads(
    desk: Desk,  # noqa: F811
    console: Console,
    app: Flask,
) -> None:
    desk.receive(fixtures.with_attachment(2000))
    with desk.runtime.sessions() as s:
        attachment_id = s.scalars(select(MailAttachment.id)).one()
    anonymous = Console(app.test_client()).get(f"/attachments/{attachment_id}")
    assert anonymous.status_code in (302, 303, 401)
    download = console.get(f"/attachments/{attachment_id}")
    assert download.status_code == 200 and download.data[:256] == bytes(range(256))
    assert "attachment" in download.headers["Content-Disposition"]
    assert download.headers["Content-Type"] == "application/octet-stream"
    download.close()


def test_quarantined_mail_is_listed_with_the_reason(desk: Desk, console: Console) -> None:  # noqa: F811
    desk.receive(b"\r\n\r\n\x00garbage")
    page = console.get("/mail").get_data(as_text=True)
    assert "Quarantined messages" in page and "unparsable" in page
    assert console.get("/queue").status_code == 200


def test_metrics_count_inbound_mail_and_client_messages_by_state(desk: Desk, app: Flask) -> None:  # noqa: F811
    desk.receive(fixtures.multipart_alternative())
    desk.receive(b"\r\n\r\n\x00garbage")
    text = app.test_client().get("/metrics").get_data(as_text=True)
    assert 'supportline_inbound_mail_total{state="ticketed",via="imap"} 1.0' in text
    assert 'supportline_inbound_mail_total{state="quarantined",via="imap"} 1.0' in text
    assert 'supportline_client_messages_total{channel="email",state="sent"} 1.0' in text


def test_client_files_list_email_and_portal_files_once_and_the_conversation_points_there(
    desk: Desk,  # noqa: F811
    console: Console,
) -> None:
    desk.receive(fixtures.with_attachment(2000))
    (ticket,) = desk.tickets()
    folder = Path(desk.runtime.settings.recordings_dir) / "attachments"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "photo.png").write_bytes(b"\x89PNG\r\n")
    with transaction(desk.runtime.sessions) as s:
        t = lifecycle.get_ticket(s, ticket.number)
        portal.add_attachment(
            s, t, filename="photo.png", content_type="image/png", size=6, sha256="0" * 64,
            path=str(folder / "photo.png"), now=desk.runtime.now(), contact_id=None,
        )  # fmt: skip
    with desk.runtime.sessions() as s:
        mailed = s.scalars(select(MailAttachment)).one()
    page = console.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    talk = page.split('aria-label="Conversation with the client"')[1].split("</section>")[0]
    details = page.split('aria-label="Details"')[1]
    assert "1 file attached" in talk and 'href="#client-files"' in talk and mailed.filename not in talk
    assert 'id="client-files"' in details and mailed.filename in details and "photo.png" in details
    assert f'href="/attachments/{mailed.id}"' in details and page.count(f'href="/attachments/{mailed.id}"') == 1


def _bouncing_ticket(desk: Desk) -> int:  # noqa: F811
    """A ticket whose contact's address bounced the confirmation: no more mail goes to it."""
    from ticketing.models import Contact

    with transaction(desk.runtime.sessions) as s:
        gone = s.scalars(select(Contact).where(Contact.email == "gone@acme-dental.example")).one()
        t = lifecycle.open_ticket(
            s,
            policy=desk.runtime.policy,
            now=desk.runtime.now(),
            priority="P3",
            source="phone",
            actor="coordinator",
            summary="New laptop",
            contact_id=gone.id,
        )
        number = t.number
    desk.run_jobs()
    with desk.runtime.sessions() as s:
        confirmation = s.scalars(select(TicketMessage).where(TicketMessage.direction == "out")).one()
        message_id = confirmation.message_id
    desk.receive(fixtures.mailer_daemon_bounce(message_id or ""))
    return number  # type: ignore[return-value]


def _resolve(desk: Desk, number: int) -> None:  # noqa: F811
    with transaction(desk.runtime.sessions) as s:
        lifecycle.set_status(
            s,
            lifecycle.get_ticket(s, number),
            "resolved",
            actor="eng",
            now=desk.runtime.now(),
            policy=desk.runtime.policy,
        )
    desk.run_jobs()


def test_a_coordinator_marks_a_bouncing_address_deliverable_again_and_mail_resumes(
    desk: Desk,  # noqa: F811
    console: Console,
    app: Flask,
    smtp_server,  # type: ignore[no-untyped-def]
) -> None:
    from ticketing.models import AuditEntry, MailAddress

    controller, handler = smtp_server
    desk.runtime.settings = desk.runtime.settings.with_overrides(
        smtp_url=f"smtp+insecure://127.0.0.1:{controller.port}"
    )
    number = _bouncing_ticket(desk)
    page = console.get(f"/tickets/{number}").get_data(as_text=True)
    assert "is bouncing since" in page and "Mark gone@acme-dental.example deliverable again" in page
    no_token = console.client.post(f"/tickets/{number}/mail-deliverable")
    assert no_token.status_code == 400  # CSRF
    engineer = Console(app.test_client())
    engineer.login("eli")
    assert engineer.post(f"/tickets/{number}/mail-deliverable").status_code == 403
    with desk.runtime.sessions() as s:
        assert s.scalars(select(MailAddress)).one().bouncing_since is not None
    cleared = console.post(f"/tickets/{number}/mail-deliverable")
    assert cleared.status_code == 303
    with desk.runtime.sessions() as s:
        assert s.scalars(select(MailAddress)).one().bouncing_since is None
        (entry,) = s.scalars(select(AuditEntry).where(AuditEntry.action == "address deliverable again")).all()
        assert entry.actor == "Dana Reyes" and entry.ticket.number == number
        assert (entry.reason or "").startswith(
            "address gone@acme-dental.example marked deliverable again by Dana Reyes"
        )
    page = console.get(f"/tickets/{number}", follow_redirects=True).get_data(as_text=True)
    assert "is bouncing since" not in page and "deliverable again" in page
    again = console.post(f"/tickets/{number}/mail-deliverable")
    assert again.status_code == 400 and "is not marked bouncing" in again.get_data(as_text=True)
    assert len(handler.messages) == 1  # the confirmation, before the bounce
    _resolve(desk, number)
    assert [m["Subject"] for m in handler.messages][-1] == f"[#{number}] Resolved: New laptop"
    assert handler.messages[-1]["To"] == "gone@acme-dental.example"


def test_the_cli_marks_a_bouncing_address_deliverable_again(desk: Desk, app: Flask) -> None:  # noqa: F811
    number = _bouncing_ticket(desk)
    _resolve(desk, number)
    assert len(desk.sent()) == 1  # suppressed while bouncing
    result = app.test_cli_runner().invoke(args=["ticket", "mail-deliverable", str(number), "--by", "Ada Brooks"])
    assert result.exit_code == 0, result.output
    assert "gone@acme-dental.example marked deliverable again" in result.output
    from ticketing import conversation

    with transaction(desk.runtime.sessions) as s:
        conversation.reply_to_client(
            s, lifecycle.get_ticket(s, number), "Your laptop is ready.", actor="Ada Brooks", now=desk.runtime.now()
        )
    desk.run_jobs()
    assert desk.sent()[-1]["To"] == "gone@acme-dental.example" and len(desk.sent()) == 2
    assert app.test_cli_runner().invoke(args=["ticket", "mail-deliverable", str(number)]).exit_code != 0


def test_a_strangers_mail_naming_a_ticket_is_shown_as_a_new_ticket_that_mentions_it(
    desk: Desk,  # noqa: F811
    console: Console,
) -> None:
    desk.receive(fixtures.multipart_alternative())
    (ticket,) = desk.tickets()
    desk.receive(
        fixtures.plain(
            sender="attacker@evil.example",
            subject=f"Re: [#{ticket.number}] Printer in reception is offline",
            body="Write to me from now on.",
            mid="<mallory@evil.example>",
        )
    )
    _old, new = desk.tickets()
    mention = f"mentions #{ticket.number}, sender not on that ticket"
    mail_page = console.get("/mail").get_data(as_text=True)
    assert f"new ticket #{new.number}: {mention} (attacker@evil.example)" in mail_page
    new_page = console.get(f"/tickets/{new.number}").get_data(as_text=True)
    assert mention in new_page and "merge by hand" in new_page
    assert "Write to me from now on." not in console.get(f"/tickets/{ticket.number}").get_data(as_text=True)
