"""Development mode's way to try the email intake: a typed message or an .eml file, and the ``mail in`` command."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from sqlalchemy import select

from settings import ROOT
from tests.inbox.conftest import Desk, desk  # noqa: F401 - the fixture
from tests.web.conftest import Console
from ticketing.models import InboundMail
from web.app import create_app

SAMPLE = ROOT / "samples" / "printer-offline.eml"


def _dev_console(desk: Desk, tmp_path: Path) -> Console:  # noqa: F811
    desk.runtime.settings = desk.runtime.settings.with_overrides(
        dev_mode=True, dev_twilio_log=tmp_path / "twilio.jsonl"
    )
    console = Console(create_app(runtime=desk.runtime).test_client())
    assert console.login().status_code == 303
    return console


def test_without_development_mode_there_is_no_test_email_page(desk: Desk, console: Console) -> None:  # noqa: F811
    page = console.get("/dev/mail-in")
    assert page.status_code == 404 and "Development mode is off" in page.get_data(as_text=True)
    posted = console.post("/dev/mail-in", {"from": "dana@acme-dental.example", "subject": "x", "body": "y"})
    assert posted.status_code == 404
    with desk.runtime.sessions() as s:
        assert s.scalars(select(InboundMail)).all() == []


def test_a_typed_test_email_becomes_one_p3_ticket_and_one_confirmation(
    desk: Desk,  # noqa: F811
    users: dict[str, str],
    tmp_path: Path,
) -> None:
    console = _dev_console(desk, tmp_path)
    form = console.get("/dev/mail-in").get_data(as_text=True)
    assert "Send a test email to the helpdesk" in form and 'name="eml"' in form
    assert "Send a test email" in console.get("/queue").get_data(as_text=True)  # linked from the banner
    assert Console(console.client.application.test_client()).post("/dev/mail-in", {}).status_code in (400, 401)
    bad = console.post("/dev/mail-in", {"from": "Dana", "subject": "Printer", "body": "offline"})
    assert bad.status_code == 400 and "From needs an email address" in bad.get_data(as_text=True)
    sent = console.post(
        "/dev/mail-in",
        {"from": "Dana Whitfield <dana@acme-dental.example>", "subject": "Scanner jammed", "body": "Tray 2 again."},
    )
    assert sent.status_code == 303
    desk.run_jobs()
    (ticket,) = desk.tickets()
    assert (ticket.priority, ticket.source, ticket.summary) == ("P3", "email", "Scanner jammed")
    assert "Tray 2 again." in (ticket.description or "") and ticket.contact_id is not None
    (confirmation,) = desk.sent()
    assert confirmation["To"] == "dana@acme-dental.example"
    assert confirmation["Subject"] == f"[#{ticket.number}] New ticket created: Scanner jammed"
    with desk.runtime.sessions() as s:
        (row,) = s.scalars(select(InboundMail)).all()
        assert (row.via, row.state) == ("dev", "ticketed")


def test_an_uploaded_eml_and_the_mail_in_command_go_through_the_same_intake(
    desk: Desk,  # noqa: F811
    users: dict[str, str],
    tmp_path: Path,
    app: Flask,
) -> None:
    console = _dev_console(desk, tmp_path)
    with SAMPLE.open("rb") as f:
        uploaded = console.post("/dev/mail-in", {"eml": (f, "printer-offline.eml")}, content_type="multipart/form-data")
    assert uploaded.status_code == 303
    desk.run_jobs()
    (ticket,) = desk.tickets()
    assert ticket.summary == "Front desk printer offline" and "Patients’ forms" in (ticket.description or "")
    assert len(desk.sent()) == 1
    cli = app.test_cli_runner()
    again = cli.invoke(args=["mail", "in", str(SAMPLE)])
    assert again.exit_code == 0 and "stored before" in again.output  # one row per Message-ID, whichever way
    other = tmp_path / "other.eml"
    other.write_bytes(SAMPLE.read_bytes().replace(b"sample-printer-offline", b"sample-two").replace(b"Front", b"Back"))
    result = cli.invoke(args=["mail", "in", str(other)])
    assert result.exit_code == 0, result.output
    desk.run_jobs()
    assert [t.summary for t in desk.tickets()] == ["Front desk printer offline", "Back desk printer offline"]
    assert len(desk.sent()) == 2
    with desk.runtime.sessions() as s:
        assert sorted(s.scalars(select(InboundMail.via)).all()) == ["cli", "dev"]
