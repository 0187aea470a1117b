"""Fixtures of the fault suite: one real stack for the whole suite, made healthy again before every test.

The stack (gunicorn, worker, sweeper, a private Redis, PostgreSQL through a proxy
the tests cut, the Twilio REST test server and the simulator's media server) is
started once, because starting it costs seconds; each test calls from numbers of
its own and looks only at its own tickets and pages, and the ``stack`` fixture
restarts whatever an earlier test broke.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from testing.stack import (
    LONG_MESSAGE,
    PUBLIC,
    SHORT_MESSAGE,
    Caller,
    Database,
    RedisServer,
    Stack,
    build_env,
    make_voicemail,
    postgres_available,
)
from testing.twilio_server import TwilioTestServer, free_port
from tests.conftest import unavailable

CALLER_RATE_LIMIT = 4
MAILGUN_KEY = "key-faults-" + "5" * 24  # the stack's Mailgun webhook signing key (tests/faults/test_hostile_mail.py)
_numbers = itertools.count(random.randrange(1000, 8000))


def new_number() -> str:
    """A caller number no other test of this session uses (the rate limit counts per number)."""
    return f"+1805556{next(_numbers):04d}"


@pytest.fixture(scope="session")
def audio(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Real spoken voicemails at 8 kHz: 'short' (~8 s) and 'long' (~45 s, so a test can kill the worker mid-way)."""
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            unavailable(f"{tool} (make test installs it)")
    d = tmp_path_factory.mktemp("fault-audio")
    return {
        "short": make_voicemail(SHORT_MESSAGE, d / "short.wav"),
        "long": make_voicemail(LONG_MESSAGE, d / "long.wav", speed=135),
    }


@pytest.fixture(scope="session")
def media(twilio_server: TwilioTestServer) -> TwilioTestServer:
    """Twilio's media URLs (Basic auth with the stack's account), served by the Twilio test server: the
    stack sends its credentials only to TWILIO_API_BASE_URL's own origin."""
    return twilio_server


@pytest.fixture(scope="session")
def fault_stack(tmp_path_factory: pytest.TempPathFactory, twilio_server: TwilioTestServer) -> Iterator[Stack]:
    """gunicorn + worker + sweeper + private Redis + PostgreSQL (through a proxy) + Twilio test server."""
    if shutil.which("redis-server") is None:
        unavailable("redis-server")
    if not postgres_available():
        unavailable("PostgreSQL at 127.0.0.1:5432 (database test)")
    tmp = tmp_path_factory.mktemp("fault-stack")
    redis = RedisServer(tmp)
    db: Database | None = None
    stack: Stack | None = None
    try:
        redis.start()
        db = Database("postgresql", tmp, f"faults_{os.getpid()}")
        assert db.proxy is not None
        env = build_env(
            tmp=tmp,
            database_url=db.stack_url,
            redis_url=redis.url,
            twilio={
                "TWILIO_API_BASE_URL": twilio_server.base_url,
                "TWILIO_ACCOUNT_SID": twilio_server.account_sid,
                "TWILIO_AUTH_TOKEN": twilio_server.auth_token,
            },
            extra={
                "CALLER_RATE_LIMIT": str(CALLER_RATE_LIMIT),
                "CALLER_RATE_WINDOW_SECONDS": "600",
                "MAILGUN_SIGNING_KEY": MAILGUN_KEY,
                "DEV_MAILBOX_DIR": str(tmp / "mail"),  # the notices to senders stay in the test's own Maildir
            },
        )
        stack = Stack(tmp=tmp, db=db, redis=redis, env=env, port=free_port())
        stack.start()
        yield stack
    finally:
        if stack is not None:
            stack.stop()
        redis.stop()
        with contextlib.suppress(Exception):
            unmount_recordings(tmp / "recordings")
        if db is not None:
            db.drop()


@pytest.fixture
def stack(fault_stack: Stack, twilio_api: TwilioTestServer) -> Iterator[Stack]:
    """The stack, healthy: Redis up, the database reachable, storage writable, a worker and its scheduler alive."""
    s = fault_stack
    s.redis.start()
    assert s.db.proxy is not None
    s.db.proxy.restore()
    unmount_recordings(s.recordings_dir)
    assert s.web is not None and s.web.alive(), s.logs()
    assert s.sweeper is not None and s.sweeper.alive(), s.logs()
    # RQ's scheduler process dies with the first Redis error and its worker restarts it only
    # every 10 minutes (see test_job_retries_fire_again_soon_after_redis_restarts): a test
    # after a Redis outage gets a fresh worker, so each test meets a healthy stack.
    s.ensure_worker()
    yield s
    s.db.proxy.restore()
    s.redis.start()


@pytest.fixture
def caller(stack: Stack, media: TwilioTestServer, twilio_api: TwilioTestServer) -> Caller:
    """Twilio's side of calls to the stack, signing every request; keeps every exchange."""
    return Caller(
        PUBLIC,
        server_base_url=stack.url,
        account_sid=twilio_api.account_sid,
        auth_token=twilio_api.auth_token,
        media=media,
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Attach the stack's process logs to a failing fault test."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and "stack" in getattr(item, "fixturenames", ()):
        stack = item.funcargs.get("stack")  # type: ignore[attr-defined]
        if isinstance(stack, Stack):
            report.sections.append(("stack processes", stack.logs()))


# --- a full recording disk -----------------------------------------------------------------------------------


def fill_recordings_disk(path: Path) -> str:
    """Make writes under RECORDINGS_DIR fail; returns how.

    A tiny tmpfs filled to the last byte gives the real ENOSPC ("No space left
    on device"). Where mount is not permitted (an unprivileged container), the
    directory is replaced by a plain file, so creating the recording fails with
    an OSError too (chmod would not do: the suite may run as root, who ignores it).
    """
    path.mkdir(parents=True, exist_ok=True)
    mounted = (
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(path)], capture_output=True).returncode
        == 0
    )
    if mounted:
        with contextlib.suppress(OSError), (path / "filler").open("wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
        return "tmpfs full (ENOSPC)"
    path.rename(path.with_name(path.name + ".away"))
    path.write_text("not a directory: writes under it fail\n")
    return "directory replaced by a file (ENOTDIR)"


def unmount_recordings(path: Path) -> None:
    """Undo fill_recordings_disk."""
    away = path.with_name(path.name + ".away")
    if path.is_file() and away.is_dir():
        path.unlink()
        away.rename(path)
        return
    if os.path.ismount(path):
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)
