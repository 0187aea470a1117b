"""The README's first hour, as a new user follows it: a fresh clone, a plain shell (no activated virtualenv, no
`.venv/bin` on PATH, no settings but free ports), then every command of "Set up" and "Tickets" in their order:
`make run` (development mode), `make demo`, the console whose login `make run` printed, `/dev/outbox`, then each
`bin/supportline ...` line of the Tickets block, each with its outcome asserted; and the simulator examples of
"Trying it without Twilio".
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests

from settings import ROOT
from testing.twilio_server import free_port

pytestmark = pytest.mark.slow
LOGIN = re.compile(
    r"Console sign-in:\s+(?P<url>\S+)/login\s+\((?:first|development) admin: (?P<user>\S+) / (?P<pw>[^;,\s]+)"
)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
REQUIREMENTS = ("requirements.txt", "requirements-openai-whisper.txt", "requirements-whisper-base.txt")


@dataclass
class Clone:
    """A fresh clone of the project and the plain shell environment of its new user."""

    path: Path
    env: dict[str, str]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.env['PORT']}"

    def sh(self, line: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """One README line in a plain bash, in the clone."""
        return subprocess.run(
            ["bash", "-c", line], cwd=self.path, env=self.env, capture_output=True, text=True, timeout=timeout
        )


def _plain_path() -> str:
    """PATH without any virtualenv's bin folder."""
    keep = [p for p in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep) if p and "venv" not in p]
    return os.pathsep.join(keep or ["/usr/bin", "/bin"])


@pytest.fixture
def clone(tmp_path: Path) -> Iterator[Clone]:
    """`git clone` of the project; its virtualenv is the one already built (installing it is not under test here:
    the Makefile's stamp sees it up to date), everything else starts empty."""
    path = tmp_path / "supportline"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(path)], check=True)
    (path / ".venv").symlink_to((ROOT / ".venv").resolve())
    for name in (*REQUIREMENTS, "requirements-dev.txt"):
        os.utime(path / name, (0, 0))  # older than the virtualenv's stamp: nothing to install
    drop = ("TWILIO_", "DEV_", "ALLOW_SIMULATED", "REDIS_", "DATABASE_", "PUBLIC_BASE", "VIRTUAL_ENV", "PYTHON")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop) and k != "PATH"}
    env.update(
        PATH=_plain_path(),
        PORT=str(free_port()),
        DEV_TWILIO_PORT=str(free_port()),
        REDIS_PORT=str(free_port()),  # make run's private redis-server, on a port of its own
        WEB_CONCURRENCY="1",
    )
    yield Clone(path, env)
    pid = path / "var" / "redis" / "redis.pid"
    if pid.exists():
        try:
            os.kill(int(pid.read_text().strip()), signal.SIGTERM)
        except (ProcessLookupError, ValueError):
            pass


@pytest.fixture
def make_run(clone: Clone) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """`make run` in the background; stopped (its whole process group) afterwards."""
    log = clone.path.parent / "make-run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["make", "run"], cwd=clone.path, env=clone.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
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


def _section(readme: str, title: str) -> str:
    start = readme.index(f"\n## {title}\n")
    end = readme.find("\n## ", start + 1)
    return readme[start : end if end > 0 else None]


def _wait_for(what: str, check, seconds: float) -> object:  # type: ignore[no-untyped-def]
    """Poll ``check`` until it returns something true; fail naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what}: not within {seconds:.0f} s"
        time.sleep(0.3)


def test_the_first_hour_from_a_fresh_clone_in_a_plain_shell(
    make_run: tuple[subprocess.Popen[bytes], Path], clone: Clone
) -> None:
    readme = (clone.path / "README.md").read_text()
    setup, tickets = _section(readme, "Set up"), _section(readme, "Tickets")
    assert "bin/supportline" in setup and "flask --app wsgi" not in tickets

    # Set up, 1: make run.
    proc, log = make_run
    base = clone.base
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
    assert f"http://127.0.0.1:{clone.env['DEV_TWILIO_PORT']}" in text
    assert f"Redis:                                   redis://127.0.0.1:{clone.env['REDIS_PORT']}/0" in text
    assert "pip install" not in text  # the virtualenv was up to date: nothing installed

    # Set up, 2: make demo.
    demo = clone.sh("make demo", timeout=300)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "Using the supportline already answering" in demo.stdout
    assert "P1 CRITICAL" in demo.stdout and "escalation stopped" in demo.stdout

    # Set up, 3: the console, signed in with the login make run printed.
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
    assert "Development mode:" in queue and "SIMULATED " in queue  # the demo's after-hours call moved the clock
    # The demo's four calls and the known incident's parent ticket (the callbacks list names call 1 again).
    numbers = sorted({int(n) for n in re.findall(r'data-number="(\d+)"', queue)})
    assert numbers == [400001, 400002, 400003, 400004, 400005], numbers
    assert "Callbacks" in queue  # call 1 kept its place in line
    seen_p1 = False
    for number in numbers:
        page = s.get(f"{base}/tickets/{number}", timeout=10).text
        if "Known incident:" in page and 'class="src src-manual"' in page:
            continue  # the parent ticket the coordinator's declaration opened: no recording of its own
        transcript = re.search(r'<blockquote class="transcript" id="transcript"[^>]*>([^<]+)</blockquote>', page)
        shown = re.search(r'<section[^>]*id="voicemail".*?</section>', page, re.S)
        assert transcript is not None and len(transcript.group(1).split()) >= 5, (number, shown and shown.group(0))
        if '<span class="prio prio-p1"' in page:
            seen_p1 = True
            assert "policy: after-hours" in page and "acknowledged" in page
            assert re.search(r"[1-9] of \d+ pages? delivered", page), "no page counted as delivered"
            stamps = re.findall(r"<time>(\w{3} \w{3} \d+ \d\d:\d\d:\d\d)</time>", page)
            year = datetime.now().year
            times = [datetime.strptime(f"{year} {t}", "%Y %a %b %d %H:%M:%S") for t in stamps]
            assert times and times == sorted(times), stamps
    assert seen_p1
    sent = s.get(base + "/dev/outbox", timeout=10).text
    assert "P1 CRITICAL" in sent and f"{base}/tickets/" in sent
    assert re.search(r'<pre class="wrap mail-body">[^<]*(<a href="http)?', sent), "no mail body shown"

    # Tickets: every line of the README's block, in order, in a plain shell.
    block = re.search(r"```sh\n(.*?)```", tickets, re.S)
    assert block is not None
    lines = [line for line in block.group(1).splitlines() if line.strip()]
    assert all(line.startswith("bin/supportline ") for line in lines), lines
    results: dict[str, subprocess.CompletedProcess[str]] = {}
    for line in lines:
        words = shlex.split(line, comments=True)
        key = " ".join(words[1:3])
        result = results[key] = clone.sh(line)
        assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr
        if key == "mail in":
            # The worker makes the email a ticket at once: no waiting for the sweeper's minutes.
            started = time.monotonic()
            _wait_for(
                "the mailed ticket in the queue",
                lambda: "Front desk printer offline" in clone.sh("bin/supportline ticket list").stdout,
                30,
            )
            assert time.monotonic() - started < 30
    assert "0 added, 0 updated, 3 unchanged" in results["directory import"].stdout  # the demo imported it first
    assert "stored; the worker turns it into a ticket" in results["mail in"].stdout
    assert re.match(r"ticket 4000\d\d opened", results["ticket open"].stdout)
    assert "400001" in results["ticket list"].stdout
    assert "ticket 400001 is now P1" in results["ticket priority"].stdout
    assert "is bouncing" in results["mail bounce"].stdout
    assert "marked deliverable again" in results["ticket mail-deliverable"].stdout
    assert "contact Luis Ortega disabled" in results["directory disable"].stdout
    shown = results["time show"].stdout
    assert shown.startswith("SIMULATED "), shown
    listing = clone.sh("bin/supportline directory list").stdout
    assert len(re.findall(r"^  #", listing, re.M)) == 3 and "DISABLED" in listing
    # The command line reads the console's clock: the same simulated minute.
    banner = re.search(r'data-simulated="([^"]+)"', s.get(base + "/queue", timeout=10).text)
    assert banner is not None
    console_now = datetime.fromisoformat(banner.group(1)).astimezone(ZoneInfo("America/Los_Angeles"))
    cli_now = datetime.strptime(" ".join(shown.split()[2:4]), "%Y-%m-%d %H:%M:%S")
    assert abs((console_now.replace(tzinfo=None) - cli_now).total_seconds()) < 120, (banner.group(1), shown)

    # Trying it without Twilio: the simulator examples as written, against the same `make run`.
    trying = _section(readme, "Trying it without Twilio")
    example = re.search(r"(\.venv/bin/python -m ivr\.simulate [^\n]*\\\n[^\n]*)", trying)
    assert example is not None
    argv = shlex.split(example.group(1).replace("\\\n", " "))
    started = time.monotonic()
    sim = subprocess.run(argv, cwd=clone.path, env=clone.env, capture_output=True, text=True, timeout=120)
    assert sim.returncode == 0, sim.stdout + sim.stderr
    assert "ticket: " in sim.stdout and "the worker has the recording" in sim.stdout
    assert time.monotonic() - started < 45
    accept = re.search(r"`(--press 1 --coordinator accept --at \"[^\"]+\")`", trying)
    assert accept is not None
    answered = subprocess.run(
        [".venv/bin/python", "-m", "ivr.simulate", *shlex.split(accept.group(1))],
        cwd=clone.path, env=clone.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert answered.returncode == 0, answered.stdout + answered.stderr
    assert "coordinator: accept" in answered.stdout and "coordinator hears:" in answered.stdout
    missing = subprocess.run(
        [*argv[: argv.index("--audio") + 1], "no-such-message.wav"],
        cwd=clone.path, env=clone.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert missing.returncode != 0 and "no such file: no-such-message.wav" in missing.stderr
    assert "Traceback" not in missing.stderr

    # The documented way back to the real clock.
    reset = clone.sh("bin/supportline time reset")
    assert reset.returncode == 0 and "the real clock again" in reset.stdout
    assert "no simulated time set" in clone.sh("bin/supportline time show").stdout
    assert "SIMULATED " not in s.get(base + "/queue", timeout=10).text


def test_bin_supportline_without_the_virtualenv_says_how_to_make_it(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    shutil.copy(ROOT / "bin" / "supportline", tmp_path / "bin" / "supportline")
    result = subprocess.run(
        [str(tmp_path / "bin" / "supportline"), "ticket", "list"],
        cwd=tmp_path, env={"PATH": _plain_path()}, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2 and "no virtualenv" in result.stderr and "make run" in result.stderr


@pytest.mark.parametrize("live", [True, False])
def test_bin_supportline_takes_run_env_only_while_its_service_runs(tmp_path: Path, live: bool) -> None:
    state = tmp_path / "dev"
    state.mkdir()
    gone = subprocess.Popen(["true"])
    gone.wait()
    pid = os.getpid() if live else gone.pid
    (state / "run.env").write_text(
        f"# written by scripts/run.sh\nRUN_PID={pid}\nDATABASE_URL=sqlite:///from-run-env.db\nEMPTY=\n"
    )
    env = {"PATH": _plain_path(), "DEV_STATE_DIR": str(state), "DATABASE_URL": "sqlite:///from-shell.db"}
    result = subprocess.run(
        [str(ROOT / "bin" / "supportline"), "shell"],
        input="import os; print('DB=' + os.environ['DATABASE_URL'], 'EMPTY' in os.environ)\n",
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    expected = "DB=sqlite:///from-run-env.db False" if live else "DB=sqlite:///from-shell.db False"
    assert expected in result.stdout


def test_bin_supportline_without_a_running_service_never_uses_another_programs_redis(tmp_path: Path) -> None:
    env = {"PATH": _plain_path(), "DEV_STATE_DIR": str(tmp_path / "none"), "REDIS_PORT": "6391"}
    result = subprocess.run(
        [str(ROOT / "bin" / "supportline"), "shell"],
        input="import os; print('REDIS=' + os.environ['REDIS_URL'])\n",
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "REDIS=redis://127.0.0.1:6391/0" in result.stdout
