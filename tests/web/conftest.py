"""Console and API fixtures: an app on the test databases, signed-in clients, API tokens, tickets, a live server + Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server
from werkzeug.test import TestResponse

from runtime import Runtime, build_runtime
from settings import ROOT, Settings
from testing.database import migrate  # noqa: F401
from tests.conftest import CHROMIUM, CHROMIUM_ARGS, REDIS_URL, FixedClock, pacific, unavailable  # noqa: F401
from ticketing import accounts, lifecycle
from ticketing.db import transaction
from ticketing.models import Base, Ticket, TranscriptionState, User
from web.app import create_app

PASSWORD = "correct horse battery"
ARTIFACTS = ROOT / "test-artifacts"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def app(runtime: Runtime, redis_url: str) -> Flask:
    """The web app on the test database (SQLite and PostgreSQL) with the fixed clock.

    Jobs are not handed to Redis after responses: tests look at the outbox themselves. Redis starts
    empty, so one test's API rate-limit counts never reach the next.
    """
    runtime.settings = runtime.settings.with_overrides(dispatch_after_response=False)
    return create_app(runtime=runtime)


@pytest.fixture(scope="session")
def password_hash() -> str:
    """PASSWORD hashed once per session (scrypt takes a fifth of a second on purpose)."""
    return accounts.hash_password(PASSWORD)


@pytest.fixture
def users(runtime: Runtime, password_hash: str) -> dict[str, str]:
    """A coordinator (dana), an engineer (eli) and an admin (ada), all with PASSWORD."""
    with transaction(runtime.sessions) as s:
        for username, role, name in (
            ("dana", accounts.COORDINATOR, "Dana Reyes"),
            ("eli", accounts.ENGINEER, "Eli Novak"),
            ("ada", accounts.ADMIN, "Ada Brooks"),
        ):
            s.add(
                User(
                    username=username,
                    display_name=name,
                    role=role,
                    password_hash=password_hash,
                    active=True,
                    created_at=runtime.now(),
                    failed_logins=0,
                )
            )
    return {"dana": "Dana Reyes", "eli": "Eli Novak", "ada": "Ada Brooks"}


@dataclass
class Console:
    """A browser-like test client: signs in with the CSRF token of the form, and posts forms with it."""

    client: FlaskClient
    token: str | None = field(default=None)

    def csrf(self, path: str = "/login") -> str:
        """The CSRF token of the form at ``path``."""
        match = _CSRF.search(self.client.get(path, follow_redirects=True).get_data(as_text=True))
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def login(self, username: str = "dana", password: str = PASSWORD, next: str = "") -> TestResponse:
        """Sign in through the form."""
        response = self.client.post(
            "/login", data={"csrf_token": self.csrf(), "username": username, "password": password, "next": next}
        )
        self.token = None
        return response

    def logout(self) -> TestResponse:
        """Sign out through the top bar's form."""
        response = self.client.post("/logout", data={"csrf_token": self.csrf("/queue")})
        self.token = None
        return response

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> TestResponse:
        """Post a console form with this session's CSRF token."""
        if self.token is None:
            self.token = self.csrf("/queue")
        return self.client.post(path, data={"csrf_token": self.token, **(data or {})}, **kwargs)

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        """GET a console page."""
        return self.client.get(path, **kwargs)


@pytest.fixture
def console(app: Flask, users: dict[str, str]) -> Console:
    """Signed in as dana, the coordinator."""
    c = Console(app.test_client())
    assert c.login().status_code == 303
    return c


@pytest.fixture
def anonymous(app: Flask) -> Console:
    """Nobody signed in."""
    return Console(app.test_client())


@pytest.fixture
def api_token(runtime: Runtime) -> str:
    """A live API token (read and write) for the 'psa' integration."""
    with transaction(runtime.sessions) as s:
        _row, token = accounts.create_api_token(s, "psa", now=runtime.now(), created_by="tests")
    return token


@pytest.fixture
def open_ticket(runtime: Runtime) -> Callable[..., int]:
    """Open a ticket at a Pacific time ('YYYY-MM-DD HH:MM', default now); returns its number."""

    def make(at: str | None = None, *, priority: str = "P3", source: str = "phone", **kwargs: Any) -> int:
        when = pacific(at) if at else runtime.now()
        kwargs.setdefault("summary", f"{priority} {source} request")
        with transaction(runtime.sessions) as s:
            t = lifecycle.open_ticket(
                s, policy=runtime.policy, now=when, priority=priority, source=source, actor="tests", **kwargs
            )
            return int(t.number or 0)

    return make


def ticket(runtime: Runtime, number: int) -> Ticket:
    """A fresh copy of a ticket with its milestones and audit log loaded."""
    with runtime.sessions() as s:
        t = lifecycle.get_ticket(s, number)
        _ = list(t.milestones), list(t.audit), list(t.pauses)
        return t


def due_times(runtime: Runtime, number: int) -> dict[str, datetime | None]:
    """A ticket's milestone due times."""
    return {m.name: m.due_at for m in ticket(runtime, number).milestones}


@pytest.fixture(scope="session")
def voicemail_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real spoken voicemail: 8 kHz mono 16-bit WAV made with espeak-ng and sox."""
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            unavailable(tool)
    d = tmp_path_factory.mktemp("voicemail")
    raw, out = d / "raw.wav", d / "voicemail.wav"
    text = (
        "Hi, this is Dana from Acme Dental. Our file server is down and nobody in the office can work. "
        "Please call me back at 805 555 0142."
    )
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(raw), text], check=True, capture_output=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(out)], check=True, capture_output=True)
    return out


def attach_voicemail(runtime: Runtime, number: int, wav: Path, *, transcript: str | None = None, **fields: Any) -> Path:
    """Give a ticket a stored recording (copied into the recordings folder) and, optionally, a transcript."""
    recordings = Path(runtime.settings.recordings_dir)
    recordings.mkdir(parents=True, exist_ok=True)
    sid = f"RE{number:032x}"
    stored = recordings / f"{sid}.wav"
    shutil.copyfile(wav, stored)
    with transaction(runtime.sessions) as s:
        t = lifecycle.get_ticket(s, number)
        t.recording_sid = sid
        t.recording_url = f"https://api.twilio.com/2010-04-01/Accounts/AC/Recordings/{sid}"
        t.recording_duration = 9
        t.audio_path = str(stored)
        t.transcription_state = TranscriptionState.DONE.value if transcript else TranscriptionState.PENDING.value
        t.transcription_requested_at = runtime.now()
        t.transcript = transcript
        for key, value in fields.items():
            setattr(t, key, value)
    return stored


# --- a live server for the browser (SQLite only: one database is enough to drive a browser) -------------


@pytest.fixture(scope="session")
def browser_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An SQLite database for the browser tests, migrated once."""
    url = f"sqlite:///{tmp_path_factory.mktemp('browser-db') / 'console.db'}"
    migrate(url)
    return url


@pytest.fixture
def browser_runtime(browser_database: str, tmp_path: Path) -> Iterator[Runtime]:
    """A runtime on the browser database with the fixed clock, emptied afterwards."""
    clock = FixedClock(pacific("2026-11-18 10:00"))
    s = Settings(
        database_url=browser_database,
        redis_url=REDIS_URL,
        public_base_url="https://support.example.com",
        recordings_dir=tmp_path / "recordings",
        secret_key="browser-test-secret",
        dispatch_after_response=False,
    )
    rt = build_runtime(s, clock=clock)
    yield rt
    with rt.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    rt.close()


@pytest.fixture
def live_console(browser_runtime: Runtime) -> Iterator[str]:
    """The app served over real HTTP on a free port; yields its base URL."""
    app = create_app(runtime=browser_runtime)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) and page, 1440x900."""
    context = chromium.new_context(viewport={"width": 1440, "height": 900}, locale="en-US")
    context.set_default_timeout(10_000)
    pg = context.new_page()
    yield pg
    context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go (gitignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def at(runtime: Runtime, delta: timedelta) -> datetime:
    """The fixed clock's time plus ``delta``."""
    return runtime.now() + delta
