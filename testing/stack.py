"""A real supportline stack on this machine, with handles to break each part of it.

gunicorn (2 workers), ``python -m workers.worker`` and ``python -m workers.sweeper``
run as subprocesses, each in a process group of its own, against:

- a private ``redis-server`` on a free port (``RedisServer.stop()/start()``; it
  keeps nothing on disk, so a restart comes back empty, the worst case);
- PostgreSQL (a fresh schema of database ``test``) or SQLite, reached through a
  ``TcpProxy`` the test controls: ``cut()`` drops every connection and refuses
  new ones, as a database restart does, without touching the shared server;
- the Twilio REST test server and the simulator's media server (given by the caller).

The fault suite (tests/faults) and the load test (bench/load.py) both build on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import requests
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from ivr.simulate import TwilioSimulator
from testing.twilio_server import free_port
from ticketing.db import normalize_url
from ticketing.models import AuditEntry, Escalation, OutboxMessage, Page, Ticket

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = ROOT / ".venv" / "bin"
PUBLIC = "https://support.example.com"  # what Twilio calls; gunicorn sits "behind the TLS proxy"
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
SCHEDULER_LOCK = "rq:scheduler-lock:supportline"  # rq.scheduler.SCHEDULER_LOCKING_KEY_TEMPLATE % QUEUE_NAME
T = TypeVar("T")
# Deadlines stretch on a loaded machine: a wait returns as soon as its event happens, so a long deadline
# costs nothing when all is well and only decides how long a real failure takes to be reported.
TIME_SCALE = float(os.environ.get("TEST_TIME_SCALE", "3"))


def wait_until(check: Callable[[], T], timeout: float, what: str, every: float = 0.1) -> T:
    """Poll ``check`` until it returns something truthy; AssertionError naming ``what`` after ``timeout`` s.

    ``timeout`` is what a quiet machine needs; the deadline is ``TIME_SCALE`` times longer.
    """
    timeout *= TIME_SCALE
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - a part may be down on purpose while we poll
            last_error = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last error: {last_error!r})")
        time.sleep(every)


# --- processes ---------------------------------------------------------------------------------------------


class Process:
    """One subprocess in its own session (process group), logging to a file; killed as a group."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        log = self.log_path.open("ab")
        try:
            self.popen = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()

    @property
    def pid(self) -> int:
        """The process id (also its process group id)."""
        return self.popen.pid

    def alive(self) -> bool:
        """True while the process runs."""
        return self.popen.poll() is None

    def kill9(self) -> None:
        """SIGKILL the whole group at once, as the OOM killer or a lost container does."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.popen.wait(10)

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM the group, then SIGKILL whatever is left after ``grace`` seconds."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        # Children (RQ's scheduler, gunicorn's workers) may outlive their parent: the group goes too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the process's output."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


class RedisServer:
    """A private redis-server that tests stop and start; it keeps nothing on disk."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.log_dir = log_dir
        self.process: Process | None = None

    @property
    def url(self) -> str:
        """REDIS_URL for the stack."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start (or restart, empty) on the same port and wait until it answers."""
        if self.process is not None and self.process.alive():
            return
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = Process("redis", argv, os.environ, self.log_dir)
        wait_until(self.ping, 10, f"redis-server on port {self.port}", every=0.05)

    def stop(self) -> None:
        """Stop it; everything in it is lost."""
        if self.process is not None:
            self.process.kill9()
            self.process = None

    def ping(self) -> bool:
        """True when Redis answers."""
        from redis import Redis
        from redis.exceptions import RedisError

        client = Redis(port=self.port, socket_connect_timeout=0.3, socket_timeout=0.3)
        try:
            return bool(client.ping())
        except RedisError:
            return False
        finally:
            client.close()

    def client(self) -> Any:
        """A redis-py client (short timeouts)."""
        from redis import Redis

        return Redis(port=self.port, socket_connect_timeout=0.5, socket_timeout=0.5)


class TcpProxy:
    """A TCP forwarder to ``target`` that can be cut (all connections dropped, new ones refused) and restored."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)
        self._thread.start()
        self._server: asyncio.base_events.Server | None = None
        self._transports: set[asyncio.BaseTransport] = set()

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def restore(self) -> None:
        """Listen (again) on the same port."""
        self._call(self._listen())

    def cut(self) -> None:
        """Refuse new connections and reset every open one, as a database restart does."""
        self._call(self._cut())

    def close(self) -> None:
        """Cut and stop the proxy's thread."""
        with contextlib.suppress(Exception):
            self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for transport in list(self._transports):
            transport.abort()  # RST, not FIN: the client sees the connection die mid-stream
        self._transports.clear()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        pair = (client_writer.transport, upstream_writer.transport)
        self._transports.update(pair)

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                writer.close()

        await asyncio.gather(pipe(client_reader, upstream_writer), pipe(upstream_reader, client_writer))
        self._transports.difference_update(pair)


# --- the database -------------------------------------------------------------------------------------------


class Database:
    """A fresh PostgreSQL schema (or SQLite file) migrated to head, reached by the stack through a TcpProxy."""

    def __init__(self, kind: str, tmp: Path, name: str) -> None:
        self.kind = kind
        self.proxy: TcpProxy | None = None
        if kind == "sqlite":
            self.direct_url = self.stack_url = f"sqlite:///{tmp / 'supportline.db'}"
            self.schema = None
        else:
            base = normalize_url(POSTGRES_URL)
            self.schema = re.sub(r"\W", "_", name)
            admin = create_engine(base)
            try:
                with admin.begin() as conn:
                    conn.execute(text(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE"))
                    conn.execute(text(f"CREATE SCHEMA {self.schema}"))
            finally:
                admin.dispose()
            options = f"options=-csearch_path%3D{self.schema}"
            sep = "&" if "?" in base else "?"
            self.direct_url = f"{base}{sep}{options}"
            host, port = _host_port(POSTGRES_URL)
            self.proxy = TcpProxy(host, port)
            self.proxy.restore()
            self.stack_url = self.direct_url.replace(f"@{host}:{port}/", f"@127.0.0.1:{self.proxy.port}/", 1)
            if self.stack_url == self.direct_url:
                raise RuntimeError(f"cannot route {POSTGRES_URL} through the proxy: write it as user@host:port/db")
        env = {**os.environ, "DATABASE_URL": self.direct_url}
        subprocess.run(
            [str(VENV_BIN / "alembic"), "upgrade", "head"], cwd=ROOT, env=env, check=True, capture_output=True
        )
        self.engine: Engine = create_engine(normalize_url(self.direct_url))
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def drop(self) -> None:
        """Remove the schema and close everything."""
        self.engine.dispose()
        if self.proxy is not None:
            self.proxy.close()
        if self.schema is not None:
            admin = create_engine(normalize_url(POSTGRES_URL))
            try:
                with admin.begin() as conn:
                    conn.execute(text(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE"))
            finally:
                admin.dispose()


def _host_port(url: str) -> tuple[str, int]:
    from sqlalchemy.engine import make_url

    parsed = make_url(normalize_url(url))
    return parsed.host or "127.0.0.1", int(parsed.port or 5432)


def postgres_available() -> bool:
    """True when the test PostgreSQL server answers."""
    engine = create_engine(normalize_url(POSTGRES_URL), connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - any failure means "not available"
        return False
    finally:
        engine.dispose()


# --- the stack ----------------------------------------------------------------------------------------------


ONCALL = """
timezone = "America/Los_Angeles"

[people.first]
name = "First Responder"
mobile = "+18055550171"

[people.second]
name = "Second Responder"
mobile = "+18055550172"

[people.boss]
name = "Service Delivery Manager"
mobile = "+18055550173"

[teams.first]
members = ["first"]

[teams.second]
members = ["second"]

[schedules.after-hours]
handoff = "08:00"
start = 2026-01-05
members = ["first"]

# Both policies page the same people, so assertions do not depend on the time of day:
# first (6 s) -> second (6 s) -> the fallback, then the escalation is exhausted.
[policies.business-hours]
rounds = 1
fallback = "boss"
steps = [{ team = "first", wait_minutes = 0.1 }, { team = "second", wait_minutes = 0.1 }]

[policies.after-hours]
rounds = 1
fallback = "boss"
steps = [{ schedule = "after-hours", wait_minutes = 0.1 }, { team = "second", wait_minutes = 0.1 }]

[routing]
business_hours = "business-hours"
after_hours = "after-hours"
"""
ONCALL_NUMBERS = {"first": "+18055550171", "second": "+18055550172", "boss": "+18055550173"}


@dataclass
class Stack:
    """The running processes, the parts tests break, and ways to look at the outcome."""

    tmp: Path
    db: Database
    redis: RedisServer
    env: dict[str, str]
    port: int
    web: Process | None = None
    worker: Process | None = None
    sweeper: Process | None = None
    pager: Process | None = None
    old_workers: list[Process] = field(default_factory=list)

    @property
    def url(self) -> str:
        """Where gunicorn listens."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def recordings_dir(self) -> Path:
        """RECORDINGS_DIR of the stack."""
        return Path(self.env["RECORDINGS_DIR"])

    # -- life cycle --

    def start(self, web_workers: int = 2) -> None:
        """Start web, worker and sweeper and wait until each is ready."""
        self.start_web(web_workers)
        self.start_worker()
        self.sweeper = Process("sweeper", [str(VENV_BIN / "python"), "-m", "workers.sweeper"], self.env, self.tmp)
        # The Procfile's pager: the paging queue only, so no page waits behind a transcription.
        self.pager = Process(
            "pager", [str(VENV_BIN / "python"), "-m", "workers.worker", "--paging-only"], self.env, self.tmp
        )

    def start_web(self, web_workers: int = 2) -> None:
        """gunicorn as the Procfile runs it, on a free port."""
        argv = [
            str(VENV_BIN / "gunicorn"),
            "--config",
            str(ROOT / "gunicorn.conf.py"),  # gevent workers, as the Procfile runs them
            "wsgi:app",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(web_workers),
            "--timeout",
            "15",
            "--log-level",
            "warning",
        ]
        self.web = Process("web", argv, self.env, self.tmp)
        wait_until(lambda: requests.get(self.url + "/healthz", timeout=1).ok, 60, "gunicorn to answer /healthz")

    def start_worker(self, *, scheduler: bool = True) -> Process:
        """A new ``python -m workers.worker``; returns once its heartbeat shows it loaded the model
        (and, with ``scheduler``, once an RQ scheduler holds the queue's lock)."""
        before = set(self.alive_workers())
        self.worker = Process(
            f"worker-{len(self.old_workers) + 1}",
            [str(VENV_BIN / "python"), "-m", "workers.worker"],
            self.env,
            self.tmp,
        )
        self.old_workers.append(self.worker)
        wait_until(lambda: set(self.alive_workers()) - before, 90, "the worker's heartbeat (model loaded)")
        if scheduler:
            wait_until(self.scheduler_running, 10, "the worker's RQ scheduler")
        return self.worker

    def scheduler_running(self) -> bool:
        """True while some RQ scheduler holds the queue's lock (retries and timers fire only then)."""
        return bool(self.redis.client().exists(SCHEDULER_LOCK))

    def ensure_worker(self) -> None:
        """A live worker with a live scheduler: replace the worker when either is gone."""
        if self.worker is not None and self.worker.alive() and self.scheduler_running():
            return
        if self.worker is not None:
            self.worker.stop()
        self.start_worker()

    def alive_workers(self) -> list[str]:
        """Names of workers whose liveness key is in Redis."""
        keys = self.redis.client().keys("supportline:worker-alive:*")
        return sorted(k.decode().rsplit(":", 1)[-1] for k in keys)

    def jobs_in_progress(self) -> list[str]:
        """The RQ job ids the stack's workers are running now (the pager's included)."""
        from rq import Worker

        client = self.redis.client()
        return sorted(job for w in Worker.all(connection=client) if (job := w.get_current_job_id()))

    def stop(self) -> None:
        """Stop every process this stack started."""
        for process in (self.sweeper, self.pager, self.web, *self.old_workers):
            if process is not None:
                process.stop()

    def logs(self) -> str:
        """The tails of every process's log (for failure messages)."""
        parts = []
        for process in (self.web, self.sweeper, self.pager, *self.old_workers):
            if process is not None:
                parts.append(
                    f"--- {process.name} ({'alive' if process.alive() else 'exited'}) ---\n{process.log_tail()}"
                )
        return "\n".join(parts)

    # -- looking at the outcome --

    def session(self) -> Session:
        """A session on the stack's database (direct, never through the proxy)."""
        return self.db.sessions()

    def ticket_of_call(self, call_sid: str) -> Ticket | None:
        """The ticket of a call, if any."""
        with self.session() as s:
            return s.scalars(select(Ticket).where(Ticket.call_sid == call_sid)).first()

    def tickets_of_calls(self, call_sids: list[str]) -> list[Ticket]:
        """Every ticket of these calls."""
        with self.session() as s:
            return list(s.scalars(select(Ticket).where(Ticket.call_sid.in_(call_sids)).order_by(Ticket.id)).all())

    def tickets_of_caller(self, number: str) -> list[Ticket]:
        """Every ticket whose caller is ``number``."""
        with self.session() as s:
            return list(s.scalars(select(Ticket).where(Ticket.caller_number == number).order_by(Ticket.id)).all())

    def audit(self, ticket_number: int) -> list[str]:
        """The audit actions of a ticket, oldest first."""
        with self.session() as s:
            return list(
                s.scalars(
                    select(AuditEntry.action)
                    .join(Ticket, Ticket.id == AuditEntry.ticket_id)
                    .where(Ticket.number == ticket_number)
                    .order_by(AuditEntry.id)
                ).all()
            )

    def outbox(self, key: str) -> OutboxMessage | None:
        """The outbox message of a key."""
        with self.session() as s:
            return s.scalars(select(OutboxMessage).where(OutboxMessage.key == key)).first()

    def pages(self, ticket_number: int) -> list[Page]:
        """Every page of a ticket's escalation, oldest first."""
        with self.session() as s:
            return list(
                s.scalars(
                    select(Page)
                    .join(Escalation, Escalation.id == Page.escalation_id)
                    .join(Ticket, Ticket.id == Escalation.ticket_id)
                    .where(Ticket.number == ticket_number)
                    .order_by(Page.id)
                ).all()
            )

    def escalation(self, ticket_number: int) -> Escalation | None:
        """A ticket's escalation."""
        with self.session() as s:
            return s.scalars(
                select(Escalation).join(Ticket, Ticket.id == Escalation.ticket_id).where(Ticket.number == ticket_number)
            ).first()

    def wait_transcribed(self, call_sid: str, timeout: float = 60) -> Ticket:
        """Wait until the call's ticket has a transcript (or a final transcription state)."""

        def done() -> Ticket | None:
            t = self.ticket_of_call(call_sid)
            return t if t is not None and t.transcription_state in ("done", "no_speech", "failed") else None

        try:
            return wait_until(done, timeout, f"the transcription of call {call_sid}", every=0.2)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.logs()}") from None


def build_env(
    *, tmp: Path, database_url: str, redis_url: str, twilio: Mapping[str, str], extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of every stack process."""
    oncall = tmp / "oncall.toml"
    oncall.write_text(ONCALL)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "PUBLIC_BASE_URL": PUBLIC,
        "SECRET_KEY": "faults-" + "x" * 32,
        "ONCALL_FILE": str(oncall),
        "RECORDINGS_DIR": str(tmp / "recordings"),
        "COORDINATOR_NUMBERS": "",  # no coordinator to ring: every call reaches voicemail, at any hour
        "WORKER_HEARTBEAT_SECONDS": "1",
        "JOB_RETRY_INTERVALS": "1,1,1",
        "TRANSCRIPTION_PENDING_MINUTES": "1",
        # Paging: retries of a page Twilio failed every 1-2 s; no repeat cycles beyond the first-response target.
        "PAGING_RETRY_MAX_SECONDS": "2",
        "PAGING_HORIZON_MINUTES": "0",
        "ALLOW_SIMULATED_TIME": "false",
        "PYTHONUNBUFFERED": "1",
        **twilio,
        **(extra or {}),
    }
    env.pop("WEB_CONCURRENCY", None)
    return env


# --- the caller ---------------------------------------------------------------------------------------------


@dataclass
class Exchange:
    """One webhook request the simulated Twilio made, and what it got back."""

    url: str  # the path and query, as signed
    params: dict[str, str]
    status: int
    body: str
    seconds: float

    @property
    def call_sid(self) -> str:
        """The call the request was about."""
        return self.params.get("CallSid", "")


class Caller(TwilioSimulator):
    """The call simulator, keeping every request and answer so tests can check what the caller heard.

    ``before_post`` hooks run before each request with its path: a test breaks a
    part of the stack between two webhooks of a call with them.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.exchanges: list[Exchange] = []
        self.before_post: list[Callable[[str], None]] = []
        self._lock = threading.Lock()

    def send(self, public: str, target: str, params: dict[str, str], headers: dict[str, str]) -> requests.Response:
        """Run the ``before_post`` hooks, deliver the request and keep the exchange."""
        path = public[len(self.public) :]
        for hook in list(self.before_post):
            hook(path)
        started = time.perf_counter()
        response = super().send(public, target, params, headers)
        exchange = Exchange(path, params, response.status_code, response.text, time.perf_counter() - started)
        with self._lock:
            self.exchanges.append(exchange)
        return response

    def exchanges_of(self, call_sid: str) -> list[Exchange]:
        """Every exchange of one call, in order."""
        with self._lock:
            return [e for e in self.exchanges if e.call_sid == call_sid]

    def signed(self, url: str, params: Mapping[str, str]) -> Exchange:
        """POST one webhook by hand (a path or the public URL from TwiML); returns the exchange, even a failed one."""
        with contextlib.suppress(RuntimeError):
            self.post(url, params)
        return self.exchanges[-1]

    def replay(self, exchanges: list[Exchange]) -> list[Exchange]:
        """Deliver the same requests again (Twilio retries; at-least-once callbacks); returns the new exchanges."""
        again = []
        for ex in exchanges:
            with contextlib.suppress(RuntimeError):
                self.post(ex.url, ex.params)
            again.append(self.exchanges[-1])
        return again


def call_params(call_sid: str, caller: str, account_sid: str, **extra: str) -> dict[str, str]:
    """The parameters Twilio sends with every voice webhook of a call."""
    return {
        "CallSid": call_sid,
        "AccountSid": account_sid,
        "From": caller,
        "To": "+18055922500",
        "Caller": caller,
        "Called": "+18055922500",
        "CallStatus": "in-progress",
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
        **extra,
    }


def assert_caller_served(exchanges: list[Exchange]) -> None:
    """Every webhook answered 2xx (never a 5xx, never Twilio's 'application error'); every TwiML says something."""
    assert exchanges, "no webhook was requested"
    for ex in exchanges:
        if ex.url.startswith("/twilio/voice/recording-status") and ex.status == 503:
            continue  # a status callback nobody hears, refused so that Twilio delivers it again
        assert ex.status < 500, f"{ex.url} answered {ex.status}: {ex.body[:300]}"
        assert ex.status in (200, 204), f"{ex.url} answered {ex.status}: {ex.body[:300]}"
        if ex.status == 200 and ex.body.lstrip().startswith("<?xml"):
            root = ET.fromstring(ex.body)
            assert root.tag == "Response", ex.body
            assert any(el.tag == "Say" and (el.text or "").strip() for el in root.iter()), (
                f"{ex.url}: no <Say>: {ex.body}"
            )


def heard(exchanges: list[Exchange]) -> str:
    """Everything said in these answers, in order."""
    said: list[str] = []
    for ex in exchanges:
        if ex.status == 200 and ex.body.lstrip().startswith("<?xml"):
            said.extend((el.text or "") for el in ET.fromstring(ex.body).iter() if el.tag == "Say")
    return " ".join(said)


def spoken_ticket(exchanges: list[Exchange]) -> int | None:
    """The ticket number read to the caller, if any."""
    m = re.search(r"ticket number is ((?:\d ){5,}\d)", heard(exchanges))
    return int(m.group(1).replace(" ", "")) if m else None


# --- audio --------------------------------------------------------------------------------------------------

SHORT_MESSAGE = (
    "Hi, this is Dana from Acme Dental. Our file server is down and nobody in the office can work. "
    "Please call me back at 805 555 0142."
)
LONG_MESSAGE = " ".join(
    [
        "Hello, this is Marcus Bell calling from Pismo Title and Escrow.",
        "Since about eight this morning none of our closing officers can open the shared escrow folder,",
        "and the scanner in the back office keeps saying the network path is not available.",
        "We restarted the two workstations by the front desk and the main printer, but nothing changed.",
        "We have three closings scheduled this afternoon and we need the signed documents from that folder",
        "before two o'clock, so this is getting urgent for us.",
        "Our office manager Linda also says the backup drive light has been blinking amber since yesterday.",
        "Please call me back on my mobile at 805 555 0199, or at the front desk at 805 555 0100.",
        "Again, this is Marcus at Pismo Title. Thank you, and I hope to hear from you soon.",
    ]
)


def make_voicemail(text_: str, out: Path, speed: int = 150) -> bytes:
    """A spoken message as 8 kHz mono 16-bit telephone audio (espeak-ng + sox)."""
    raw = out.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-s", str(speed), "-w", str(raw), text_], check=True, capture_output=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(out)], check=True, capture_output=True)
    raw.unlink()
    return out.read_bytes()


@contextlib.contextmanager
def running(stack: Stack) -> Iterator[Stack]:
    """Start the stack's processes; stop every one of them however the block ends."""
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
