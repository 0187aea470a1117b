"""Failed writes are visible: a database that refuses writes (SQLite on a full disk, PostgreSQL read-only) and a
full recordings disk, on the real database and real filesystems; refused sign-in link emails.

SQLite's full disk is real: the database lives on a small tmpfs filled to its last block. PostgreSQL's disk
cannot be filled here without filling the server's (shared) disk, so its connections are put in read-only mode
(``default_transaction_read_only``): the server itself then refuses every write, as it does a full disk's, with
an error the application did not make up.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from markupsafe import escape
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event, select, text

from runtime import Runtime
from settings import Settings
from testing.database import migrate
from testing.twilio_server import free_port
from tests.disks import files_under, fill, small_disk
from tests.web.conftest import Console
from tests.web.portal.conftest import EMAILS, PortalClient, run_link_jobs
from ticketing import accounts
from ticketing.db import transaction
from ticketing.models import PortalSignInEvent, Ticket, TicketAttachment, TicketMessage

Make = Callable[[str | None], PortalClient]
NUMBER = "805-592-2500"  # the support number of the settings (SUPPORT_NUMBER), as the policy writes it
OUTAGE = {
    "summary": "Nobody can open the patient records",
    "description": "The records server shows a red light since 9:40.",
    "affected": "everyone",
    "workaround": "no",
    "deadline": "no",
}


@pytest.fixture
def settings(settings: Settings, database_url: str, tmp_path: Path) -> Iterator[Settings]:
    """The test's settings, with an SQLite database on a small disk of its own (PostgreSQL as usual)."""
    # database_url named here too: pytest parametrizes an overridden fixture only by the names it sees
    if not database_url.startswith("sqlite"):
        yield settings
        return
    with small_disk(tmp_path / "database-disk", "6m") as disk:
        url = f"sqlite:///{disk / 'supportline.db'}"
        migrate(url)
        yield settings.with_overrides(database_url=url)


@pytest.fixture
def refuse_writes(portal_runtime: Runtime) -> Iterator[Callable[[], None]]:
    """Call it to make the database refuse writes: SQLite's disk filled, PostgreSQL's connections read-only."""
    engine = portal_runtime.engine
    undo: list[Callable[[], None]] = []

    def read_only(dbapi_connection: Any, _record: Any) -> None:
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET default_transaction_read_only = on")
        dbapi_connection.autocommit = autocommit

    def refuse() -> None:
        if engine.dialect.name == "sqlite":
            with engine.connect() as conn:
                # An empty write-ahead log: the next write must grow it, as on a disk that filled up over time.
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            filler = fill(Path(str(engine.url.database)).parent)
            undo.append(lambda: filler.unlink())
        else:
            event.listen(engine, "connect", read_only)
            engine.dispose()  # every connection from now on is a new, read-only one
            undo.append(lambda: (event.remove(engine, "connect", read_only), engine.dispose()))

    yield refuse
    for step in undo:
        step()


@pytest.fixture
def api_token(portal_runtime: Runtime) -> str:
    """A live API token."""
    with transaction(portal_runtime.sessions) as s:
        _row, token = accounts.create_api_token(s, "psa", now=portal_runtime.now(), created_by="tests")
    return token


def metric(client: Any, name: str, **labels: str) -> float | None:
    """One sample of /metrics."""
    body = client.get("/metrics").get_data(as_text=True)
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None


def tickets(runtime: Runtime) -> list[Ticket]:
    with runtime.sessions() as s:
        return list(s.scalars(select(Ticket)))


# --- the database refuses writes ---------------------------------------------------------------------------


def test_a_portal_p1_the_database_cannot_store_answers_503_with_the_support_number_and_what_was_typed(
    portal_client: Make, portal_runtime: Runtime, refuse_writes: Callable[[], None]
) -> None:
    dana = portal_client("dana")
    refuse_writes()
    page = dana.post("/portal/tickets/new", {**OUTAGE, "step": "submit"})
    body = page.get_data(as_text=True)
    assert page.status_code == 503 and page.mimetype == "text/html"
    assert f"call us at {NUMBER}" in body and "nothing you sent was saved" in body
    assert OUTAGE["summary"] in body and OUTAGE["description"] in body  # to copy, not lost
    assert page.headers["Retry-After"]
    assert tickets(portal_runtime) == []


def test_a_console_change_the_database_cannot_store_answers_503_saying_nothing_was_saved(
    portal_runtime: Runtime, console: Console, refuse_writes: Callable[[], None], client_ticket: Callable[..., int]
) -> None:
    number = client_ticket("dana")
    refuse_writes()
    page = console.post(f"/tickets/{number}/note", {"text": "Called back, left a voicemail"})
    body = page.get_data(as_text=True)
    assert page.status_code == 503 and page.mimetype == "text/html"
    assert "this change was not saved" in body and NUMBER in body
    assert "Called back, left a voicemail" in body


def test_the_api_answers_503_json_when_the_database_cannot_store_a_ticket(
    app: Flask, api_token: str, refuse_writes: Callable[[], None], portal_runtime: Runtime
) -> None:
    refuse_writes()
    response = app.test_client().post(
        "/api/tickets",
        json={"summary": "Server down", "priority": "P1"},
        headers={"Authorization": f"Bearer {api_token}"},
    )
    assert response.status_code == 503 and response.mimetype == "application/json"
    assert response.get_json()["support_number"] == NUMBER
    assert "refuses writes: nothing was changed" in response.get_json()["error"]
    assert tickets(portal_runtime) == []


def test_readiness_and_dependency_up_say_the_database_refuses_writes_while_it_still_answers_reads(
    app: Flask, refuse_writes: Callable[[], None]
) -> None:
    client = app.test_client()
    before = client.get("/readyz").get_json()
    assert "database" not in before.get("failing", {})
    assert metric(client, "supportline_dependency_up", dependency="database") == 1
    refuse_writes()
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.get_json()["failing"]["database"] == "refuses writes"
    assert metric(client, "supportline_dependency_up", dependency="database") == 0
    assert metric(client, "supportline_calls_total", outcome="received") == 0  # reads still work: a whole scrape
    assert client.get("/healthz").status_code == 200


def test_every_api_error_is_json(
    app: Flask, api_token: str, portal_runtime: Runtime, client_ticket: Callable[..., int]
) -> None:
    client_ticket("dana")
    client = app.test_client()
    auth = {"Authorization": f"Bearer {api_token}"}
    for method, path, status in [
        ("GET", "/api/no-such-thing", 404),
        ("GET", "/api/tickets/999999", 404),
        ("DELETE", "/api/tickets", 405),
        ("PUT", "/api/tickets/1", 405),
        ("GET", "/api/tickets", 401),
    ]:
        response = client.open(path, method=method, headers=auth if status != 401 else {})
        assert (response.status_code, response.mimetype) == (status, "application/json"), (method, path)
        assert response.get_json()["error"]
    # A server error (a table the code expects is gone): JSON as well, and no traceback.
    with portal_runtime.engine.begin() as conn:
        conn.execute(text("ALTER TABLE milestones RENAME TO milestones_away"))
    try:
        broken = client.get("/api/tickets", headers=auth)
    finally:
        with portal_runtime.engine.begin() as conn:
            conn.execute(text("ALTER TABLE milestones_away RENAME TO milestones"))
    assert broken.status_code in (500, 503) and broken.mimetype == "application/json"
    assert "Traceback" not in broken.get_data(as_text=True)


# --- a full recordings disk ---------------------------------------------------------------------------------


@pytest.fixture
def full_recordings_disk(portal_runtime: Runtime) -> Iterator[Path]:
    """RECORDINGS_DIR on a small tmpfs with no block left."""
    with small_disk(portal_runtime.settings.recordings_dir, "1m") as disk:
        filler = fill(disk)
        yield disk
        filler.unlink()


def test_a_portal_reply_with_a_file_on_a_full_disk_keeps_the_message_says_the_file_failed_and_leaves_no_partial_file(
    portal_client: Make, portal_runtime: Runtime, client_ticket: Callable[..., int], full_recordings_disk: Path
) -> None:
    number = client_ticket("dana")
    dana = portal_client("dana")
    response = dana.post(
        f"/portal/tickets/{number}/reply",
        {"text": "Here is the error log you asked for", "attachments": (io.BytesIO(b"E" * 20000), "error.log")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Your message was sent, but the files could not be stored: our disk is full" in body
    with portal_runtime.sessions() as s:
        messages = [m.body for m in s.scalars(select(TicketMessage))]
        assert s.scalars(select(TicketAttachment)).all() == []
    assert "Here is the error log you asked for" in messages
    assert files_under(full_recordings_disk) == []  # no 0-byte or partial file left behind


def test_a_portal_p1_with_a_file_on_a_full_disk_still_opens_the_ticket_and_says_the_file_failed(
    portal_client: Make, portal_runtime: Runtime, full_recordings_disk: Path
) -> None:
    dana = portal_client("dana")
    response = dana.post(
        "/portal/tickets/new",
        {**OUTAGE, "step": "submit", "attachments": (io.BytesIO(b"P" * 30000), "screen.png")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert "Your ticket is submitted, but the files could not be stored: our disk is full" in response.get_data(
        as_text=True
    )
    (ticket,) = tickets(portal_runtime)
    assert ticket.priority == "P1" and ticket.summary == OUTAGE["summary"]
    assert files_under(full_recordings_disk) == []


# --- sign-in link emails the mail server refuses -------------------------------------------------------------


class Refusing:
    """An SMTP server's handler that refuses every recipient with the answer given."""

    def __init__(self, answer: str) -> None:
        self.answer = answer

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:  # noqa: N802
        return self.answer


@pytest.mark.parametrize(
    "answer", ["550 5.1.1 <dana@acme-dental.example>: Recipient address rejected", "451 4.7.1 Greylisted, try later"]
)
def test_a_sign_in_link_the_mail_server_refuses_is_counted_in_metrics_and_listed_on_the_mail_page(
    portal_client: Make, portal_runtime: Runtime, console: Console, app: Flask, answer: str
) -> None:
    controller = Controller(Refusing(answer), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        portal_runtime.settings = portal_runtime.settings.with_overrides(
            smtp_url=f"smtp+insecure://127.0.0.1:{controller.port}"
        )
        client = app.test_client()
        assert metric(client, "supportline_sign_in_link_failures_total") == 0
        assert portal_client(None).ask_link(EMAILS["dana"]).status_code == 200
        assert run_link_jobs(portal_runtime) == ["failed"]
    finally:
        controller.stop()
    assert metric(client, "supportline_sign_in_link_failures_total") == 1
    with portal_runtime.sessions() as s:
        (event_row,) = s.scalars(select(PortalSignInEvent).where(PortalSignInEvent.event == "send failed"))
    assert answer in event_row.detail["error"]  # the server's own words
    page = console.get("/mail").get_data(as_text=True)
    section = page[page.index('id="refused-sign-in-links"') :]
    assert EMAILS["dana"] in section and str(escape(answer.split(" ", 1)[1])) in section
