"""The ticket's conversation with the client in the console: reply box, delivery states, attachments, quarantine."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from sqlalchemy import select

from tests.console.conftest import Console
from tests.mail import fixtures
from tests.mail.conftest import Desk, desk  # noqa: F401 - the fixture
from ticketing import portal, service
from ticketing.db import transaction
from ticketing.models import MailAttachment, OutboxMessage, TicketMessage


def test_the_ticket_shows_the_conversation_and_a_reply_goes_to_the_client_but_a_note_does_not(
    desk: Desk,  # noqa: F811
    console: Console,
) -> None:
    desk.receive(fixtures.with_attachment(2000))
    (ticket,) = desk.tickets()
    page = console.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert "Conversation" in page and "See attached." in page and "Reply to client" in page
    assert "email to dana@acme-dental.example" in page and ">sent" in page  # the confirmation's delivery state
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
        t = service.get_ticket(s, ticket.number)
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
