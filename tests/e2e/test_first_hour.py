"""The README's first hour, in its order: `make run` (development mode: no Twilio credentials), then `make demo`,
then the console whose login `make run` printed shows the demo's two tickets with transcripts and the P1 page.

Runs the real commands on free ports, with a database, Redis database and state folder of its own.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import requests

from settings import ROOT
from testing.twilio_server import free_port
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.slow
LOGIN = re.compile(
    r"Console sign-in:\s+(?P<url>\S+)/login\s+\((?:first|development) admin: (?P<user>\S+) / (?P<pw>[^;,\s]+)"
)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def first_hour_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a new user's shell (no Twilio credentials), pointed at private ports and storage."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "DEV_", "ALLOW_SIMULATED"))}
    env.update(
        PORT=str(free_port()),
        DEV_TWILIO_PORT=str(free_port()),
        DATABASE_URL=f"sqlite:///{tmp_path / 'supportline.db'}",
        REDIS_URL=REDIS_URL.rsplit("/", 1)[0] + "/13",
        DEV_STATE_DIR=str(tmp_path / "dev"),
        DEV_MAILBOX_DIR=str(tmp_path / "mail"),
        RECORDINGS_DIR=str(tmp_path / "recordings"),
        WEB_CONCURRENCY="1",
    )
    env.pop("PUBLIC_BASE_URL", None)
    return env


@pytest.fixture
def make_run(first_hour_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """`make run` in the background; stopped (its whole process group) afterwards."""
    import redis

    redis.Redis.from_url(first_hour_env["REDIS_URL"]).flushdb()
    log = tmp_path / "make-run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["make", "run"], cwd=ROOT, env=first_hour_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield proc, log
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_make_run_then_make_demo_then_the_console_shows_the_demo(
    make_run: tuple[subprocess.Popen[bytes], Path], first_hour_env: dict[str, str]
) -> None:
    proc, log = make_run
    base = f"http://127.0.0.1:{first_hour_env['PORT']}"
    deadline = time.monotonic() + 180
    while True:
        text = log.read_text(errors="replace")
        try:
            if LOGIN.search(text) and requests.get(base + "/healthz", timeout=1).ok:
                break
        except requests.RequestException:
            pass
        assert proc.poll() is None, f"make run stopped:\n{text[-3000:]}"
        assert time.monotonic() < deadline, f"make run did not come up:\n{text[-3000:]}"
        time.sleep(0.5)
    login = LOGIN.search(text)
    assert login is not None and login["url"] == base
    assert "Development mode (no Twilio credentials set)" in text
    assert f"http://127.0.0.1:{first_hour_env['DEV_TWILIO_PORT']}" in text
    assert "Redis:                                   " + first_hour_env["REDIS_URL"] in text

    demo = subprocess.run(
        ["make", "demo"], cwd=ROOT, env=first_hour_env, capture_output=True, text=True, timeout=300, check=False
    )
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "Using the supportline already answering" in demo.stdout
    assert "P1 CRITICAL" in demo.stdout and "escalation stopped" in demo.stdout

    # The console, signed in with the login make run printed.
    s = requests.Session()
    token = CSRF.search(s.get(base + "/login", timeout=5).text)
    assert token is not None
    signed_in = s.post(
        base + "/login",
        data={"csrf_token": token.group(1), "username": login["user"], "password": login["pw"]},
        timeout=10,
    )
    assert signed_in.ok and "/queue" in signed_in.url
    queue = s.get(base + "/queue", timeout=10).text
    assert "Development mode:" in queue
    numbers = [int(n) for n in re.findall(r'data-number="(\d+)"', queue)]
    assert len(numbers) == 2, numbers
    seen_p1 = False
    for number in numbers:
        page = s.get(f"{base}/tickets/{number}", timeout=10).text
        transcript = re.search(r'<blockquote class="transcript" id="transcript">([^<]+)</blockquote>', page)
        assert transcript is not None and len(transcript.group(1).split()) >= 5, number
        if '<span class="prio prio-p1"' in page:
            seen_p1 = True
            # Paged the after-hours rotation, acknowledged by the engineer's SMS, the timeline in order.
            assert "policy: after-hours" in page
            assert "acknowledged" in page
            # The stand-in reports its SMS delivered, as Twilio does: the page counts as delivered.
            assert re.search(r"[1-9] of \d+ pages? delivered", page), "no page counted as delivered"
            stamps = re.findall(r"<time>(\w{3} \w{3} \d+ \d\d:\d\d:\d\d)</time>", page)
            year = datetime.now().year
            times = [datetime.strptime(f"{year} {t}", "%Y %a %b %d %H:%M:%S") for t in stamps]
            assert times and times == sorted(times), stamps
    assert seen_p1
    sent = s.get(base + "/dev/outbox", timeout=10).text
    assert "P1 CRITICAL" in sent and f"{base}/tickets/" in sent

    # The README's simulator example, as written, against the same `make run`: no flags, no 60 s wait.
    readme = (ROOT / "README.md").read_text()
    example = re.search(r"(\.venv/bin/python -m ivr\.simulate [^\n]*\\\n[^\n]*)", readme)
    assert example is not None
    argv = example.group(1).replace("\\\n", " ").split()
    started = time.monotonic()
    sim = subprocess.run(argv, cwd=ROOT, env=first_hour_env, capture_output=True, text=True, timeout=120, check=False)
    assert sim.returncode == 0, sim.stdout + sim.stderr
    assert "ticket: " in sim.stdout and "the worker has the recording" in sim.stdout
    assert time.monotonic() - started < 45
    missing = subprocess.run(
        [*argv[:argv.index("--audio") + 1], "no-such-message.wav"],
        cwd=ROOT, env=first_hour_env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert missing.returncode != 0 and "no such file: no-such-message.wav" in missing.stderr
    assert "Traceback" not in missing.stderr
