"""Shared fixtures: a real database (SQLite and PostgreSQL), real Redis, a settable clock."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as email_policy
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from runtime import Runtime, build_runtime
from settings import Settings
from testing.database import migrate
from ticketing.db import normalize_url
from ticketing.models import Base

pytest_plugins = ["tests.plugins.twilio_api"]

IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _private_redis() -> str:
    """A redis-server of this test session's own on a free port, so two runs on one machine never share jobs."""
    if shutil.which("redis-server") is None:
        # Without the binary (make test installs it) fall back to the system Redis, a database by process id.
        return f"redis://127.0.0.1:6379/{1 + os.getpid() % 15}"
    from testing.twilio_server import free_port

    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    atexit.register(process.kill)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return f"redis://127.0.0.1:{port}/0"
        time.sleep(0.05)
    raise RuntimeError(f"redis-server did not start on port {port}")


# TEST_REDIS_URL names a server to use instead (its database is flushed by every test).
REDIS_URL = os.environ.get("TEST_REDIS_URL") or _private_redis()
LA = ZoneInfo("America/Los_Angeles")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]


def unavailable(what: str) -> None:
    """Skip locally, but fail under CI: a missing service must never pass silently there."""
    if IN_CI:
        pytest.fail(f"{what} is not available, and CI=true requires it")
    pytest.skip(f"{what} is not available")


class FixedClock:
    """A clock the test sets and advances by hand."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def set(self, at: datetime | str) -> None:
        """Jump to ``at`` (a datetime, or 'YYYY-MM-DD HH:MM' Pacific)."""
        self.at = pacific(at) if isinstance(at, str) else at

    def advance(self, **delta: float) -> None:
        """Move forward by a timedelta's keyword arguments."""
        self.at = self.at + timedelta(**delta)


def pacific(text: str) -> datetime:
    """'YYYY-MM-DD HH:MM' Pacific time as an aware datetime."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=LA)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Each database test runs on an SQLite file and on the real PostgreSQL server."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'supportline.db'}"
    else:
        # A schema of its own per test session, so parallel runs on one server never collide.
        schema = f"test_{os.getpid()}"
        base = normalize_url(POSTGRES_URL)
        engine = create_engine(base)
        try:
            with engine.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
                conn.execute(text(f"CREATE SCHEMA {schema}"))
        except OperationalError:
            engine.dispose()
            unavailable(f"PostgreSQL at {POSTGRES_URL}")
        url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    migrate(url)
    yield url
    if request.param == "postgresql":
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        engine.dispose()


@pytest.fixture
def clock() -> FixedClock:
    """Wednesday 2026-11-18 10:00 Pacific: business hours."""
    return FixedClock(pacific("2026-11-18 10:00"))


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Settings for a test: real databases, a test Redis database, temporary storage."""
    return Settings(
        database_url=database_url,
        redis_url=REDIS_URL,
        public_base_url="https://support.example.com",
        recordings_dir=tmp_path / "recordings",
        twilio_account_sid="AC" + "0" * 31 + "1",
        twilio_auth_token="f" * 32,
        twilio_api_base_url="http://127.0.0.1:9",  # nothing listens: tests that send start a server
        coordinator_numbers=("+18055550999",),
        secret_key="test-secret",
        dev_mailbox_dir=tmp_path / "mail",  # outgoing mail of a test stays in its own Maildir
    )


@pytest.fixture
def runtime(settings: Settings, clock: FixedClock) -> Iterator[Runtime]:
    """A runtime on the test database, emptied after the test."""
    rt = build_runtime(settings, clock=clock)
    yield rt
    with rt.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    rt.close()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A clean database on the real Redis server."""
    from redis import Redis
    from redis.exceptions import ConnectionError as RedisConnectionError

    client = Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    except RedisConnectionError:
        unavailable(f"Redis at {REDIS_URL}")
    yield REDIS_URL
    client.flushdb()
    client.close()


@pytest.fixture
def utc_now(clock: FixedClock) -> datetime:
    """The fixed clock's time in UTC."""
    return clock().astimezone(UTC)


# One browser for the whole test session: Playwright's sync API allows one instance per thread, so the
# console and portal browser tests share this fixture.
@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright; under CI=true its absence fails."""
    if not CHROMIUM.exists():
        unavailable(f"Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright (pip install -r requirements-dev.txt)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class SmtpInbox(Message):
    """Keeps every message a real SMTP server (aiosmtpd) accepts, parsed with email.policy.default."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[EmailMessage] = []

    def handle_message(self, message) -> None:  # type: ignore[no-untyped-def]
        self.messages.append(BytesParser(policy=email_policy).parsebytes(message.as_bytes()))


@pytest.fixture
def smtp_server() -> Iterator[tuple[Controller, SmtpInbox]]:
    """A real SMTP server on a free port and what it received."""
    from testing.twilio_server import free_port

    inbox = SmtpInbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()
