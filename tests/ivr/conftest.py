"""P1 paging end to end: a live supportline, the call simulator, the Twilio REST test server, real Redis and jobs."""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from flask import Flask
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select
from werkzeug.serving import make_server

import runtime as rt
from ivr.simulate import CallPlan, CallResult, TwilioSimulator, new_sid
from runtime import Runtime, build_runtime
from settings import Settings
from testing.twilio_server import RecordedRequest, TwilioTestServer
from tests.conftest import FixedClock
from ticketing.models import AuditEntry, Base, Escalation, Page, Ticket
from web.app import create_app
from workers.dispatch import dispatch_pending
from workers.paging import sweep_escalations

PUBLIC = "https://support.example.com"
DANA = "+18055550142"  # the caller
ANA, BEN, CAT, DEV, FAY = (f"+1805555017{n}" for n in range(1, 6))
NAMES = {ANA: "ana", BEN: "ben", CAT: "cat", DEV: "dev", FAY: "fay"}

ONCALL = """
timezone = "America/Los_Angeles"

[people.ana]
name = "Ana Ortiz"
mobile = "+18055550171"
[people.ben]
name = "Ben Okafor"
mobile = "+18055550172"
[people.cat]
name = "Cat Nguyen"
mobile = "+18055550173"
[people.dev]
name = "Dev Shah"
mobile = "+18055550174"
[people.fay]
name = "Fay Brooks"
mobile = "+18055550175"

[teams.ert]
name = "Emergency response team"
members = ["ana", "ben"]

[schedules.after-hours]
rotation = "weekly"
handoff = "08:00"
start = 2026-11-16
members = ["cat", "dev"]

[policies.business-hours]
rounds = 1
fallback = "fay"
steps = [{ team = "ert", wait_minutes = 5 }]

[policies.after-hours]
rounds = 2
fallback = "fay"
steps = [{ schedule = "after-hours", wait_minutes = 5 }, { person = "ben", wait_minutes = 5 }]
"""


def release_timers(queue: Queue, now: datetime) -> int:
    """What `rq worker --with-scheduler` does, on the test clock: move scheduled jobs due by ``now`` to the queue."""
    registry = ScheduledJobRegistry(queue=queue)
    ids = registry.get_jobs_to_schedule(int(now.timestamp()))
    for job in Job.fetch_many(ids, connection=queue.connection):
        if job is not None:
            queue._enqueue_job(job)
    for job_id in ids:
        registry.remove(job_id)
    return len(ids)


class NoMedia:
    """The simulated callers hang up at the beep, so no recording media is ever served."""

    def add_recording(self, recording_sid: str, wav_bytes: bytes) -> None:
        raise AssertionError("these tests leave no recordings")

    def recording_url(self, recording_sid: str) -> str:
        raise AssertionError("these tests leave no recordings")


@dataclass
class Desk:
    """The running support line with its worker, the caller's phone company and the engineers' phones."""

    runtime: Runtime
    app: Flask
    sim: TwilioSimulator
    twilio: TwilioTestServer
    clock: FixedClock
    answered: list[str] = field(default_factory=list)

    # -- the caller -------------------------------------------------------------------------------------

    def p1_call(self, caller: str = DANA) -> CallResult:
        """A caller presses 2 and hangs up at the beep: a P1 ticket exists and paging is requested."""
        return self.sim.call(caller, CallPlan(keys=["2"], audio=None))

    def ticket_of(self, call: CallResult) -> int:
        """The ticket number created for a call."""
        with self.runtime.sessions() as s:
            number = s.scalar(select(Ticket.number).where(Ticket.call_sid == call.call_sid))
        assert number is not None
        return int(number)

    # -- the worker -------------------------------------------------------------------------------------

    def work(self) -> None:
        """Hand the outbox to Redis, fire timers due on the test clock, run every queued job (in-process)."""
        rt.install(self.runtime)
        try:
            dispatch_pending(self.runtime)
            queues = self.runtime.queues()
            for queue in queues:
                release_timers(queue, self.clock())
            SimpleWorker(queues, connection=self.runtime.redis).work(burst=True)
        finally:
            rt.install(None)

    def sweep(self) -> int:
        """One pass of the paging sweeper."""
        return sweep_escalations(self.runtime)

    def scheduled(self) -> list[str]:
        """Job ids of the timers waiting in RQ's scheduler."""
        return [j for q in self.runtime.queues() for j in ScheduledJobRegistry(queue=q).get_job_ids()]

    # -- the engineers' phones --------------------------------------------------------------------------

    def sent(self) -> list[tuple[str, str]]:
        """(person, channel) of every page request Twilio received, in order."""
        out = []
        for r in self.twilio.requests:
            if r.method == "POST" and r.path.endswith(("/Messages.json", "/Calls.json")):
                out.append(
                    (
                        NAMES.get(r.param("To") or "", r.param("To") or "?"),
                        "sms" if r.path.endswith("/Messages.json") else "call",
                    )
                )
        return out

    def call_to(self, number: str) -> RecordedRequest:
        """The latest page call placed to ``number``."""
        calls = self.twilio.calls(to=number)
        assert calls, f"no call to {number}"
        return calls[-1]

    def answer(self, call: RecordedRequest, keys: list[str], *, answered_by: str = "human") -> list[str]:
        """Answer a page call as Twilio would (TwiML from its Url), pressing ``keys``; returns what was heard."""
        params = {
            "CallSid": new_sid("CA"),
            "AccountSid": self.twilio.account_sid,
            "From": call.param("From") or "",
            "To": call.param("To") or "",
            "CallStatus": "in-progress",
            "Direction": "outbound-api",
            "AnsweredBy": answered_by,
        }
        heard: list[str] = []
        url = call.param("Url") or ""
        keys = list(keys)
        for _ in range(10):
            root = ET.fromstring(self.sim.post(url, params))
            nxt = None
            for verb in root:
                if verb.tag == "Say":
                    heard.append(verb.text or "")
                elif verb.tag == "Gather":
                    heard.extend(say.text or "" for say in verb.iter("Say"))
                    key = keys.pop(0) if keys else ""
                    if key:
                        nxt = (verb.get("action", ""), {"Digits": key})
                        break
                elif verb.tag == "Redirect":
                    nxt = (verb.text or "", dict(parse_qsl(urlsplit(verb.text or "").query)))
                    break
                elif verb.tag == "Dial":
                    number = verb.find("Number")
                    heard.append(f"<dial {number.text if number is not None else ''} from {verb.get('callerId')}>")
                    nxt = (verb.get("action", ""), {"DialCallStatus": "completed", "DialCallDuration": "42"})
                    break
                elif verb.tag == "Hangup":
                    break
            if nxt is None:
                break
            url, extra = nxt
            params = {**params, **extra}
        self.answered.extend(heard)
        return heard

    def status_callback(self, request: RecordedRequest, status: str, **extra: str) -> int:
        """Twilio's status callback for a page SMS or call."""
        field_name = "MessageStatus" if request.path.endswith("/Messages.json") else "CallStatus"
        sid_name = "MessageSid" if field_name == "MessageStatus" else "CallSid"
        params = {
            sid_name: new_sid("SM" if sid_name == "MessageSid" else "CA"),
            "AccountSid": self.twilio.account_sid,
            field_name: status,
            **extra,
        }
        response = self.sim.http.post(
            self.sim.server + (request.param("StatusCallback") or "")[len(PUBLIC) :],
            data=params,
            headers={
                "X-Twilio-Signature": self.sim.validator.compute_signature(
                    request.param("StatusCallback") or "", params
                )
            },
            timeout=10,
        )
        return response.status_code

    def text(self, sender: str, body: str) -> str:
        """An SMS to the support number; returns the reply's text."""
        doc = self.sim.post(
            "/twilio/sms",
            {
                "MessageSid": new_sid("SM"),
                "AccountSid": self.twilio.account_sid,
                "From": sender,
                "To": "+18055922500",
                "Body": body,
            },
        )
        return " ".join(m.text or "" for m in ET.fromstring(doc).iter("Message"))

    # -- the database -----------------------------------------------------------------------------------

    def escalation(self, number: int) -> Escalation:
        """The ticket's escalation row."""
        with self.runtime.sessions() as s:
            e = s.scalar(select(Escalation).join(Ticket).where(Ticket.number == number))
            assert e is not None
            return e

    def pages(self, number: int) -> list[Page]:
        """The ticket's page rows."""
        with self.runtime.sessions() as s:
            return list(
                s.scalars(select(Page).join(Escalation).join(Ticket).where(Ticket.number == number).order_by(Page.id))
            )

    def actions(self, number: int) -> list[str]:
        """The ticket's audit log actions, in order."""
        with self.runtime.sessions() as s:
            return list(
                s.scalars(select(AuditEntry.action).join(Ticket).where(Ticket.number == number).order_by(AuditEntry.id))
            )


@pytest.fixture
def oncall_file(tmp_path: Path) -> Path:
    """The test on-call file: team ert (ana, ben) in business hours; rotation cat/dev then ben after hours; fay last."""
    path = tmp_path / "oncall.toml"
    path.write_text(ONCALL)
    return path


@pytest.fixture
def paging_redis(redis_url: str) -> str:
    """The test session's own redis-server (tests/conftest.py), emptied around each test: no other run shares it."""
    return redis_url


@pytest.fixture
def paging_settings(settings: Settings, twilio_api: TwilioTestServer, paging_redis: str, oncall_file: Path) -> Settings:
    """Settings pointing at the Twilio test server, the test Redis and the test on-call file."""
    return settings.with_overrides(
        **twilio_api.settings_overrides(),
        redis_url=paging_redis,
        oncall_file=oncall_file,
        public_base_url=PUBLIC,
        dispatch_after_response=False,
    )


@pytest.fixture
def desk(paging_settings: Settings, clock: FixedClock, twilio_api: TwilioTestServer) -> Iterator[Desk]:
    """supportline over real HTTP (behind a pretend TLS proxy at PUBLIC), on the test clock."""
    runtime = build_runtime(paging_settings, clock=clock)
    app = create_app(runtime=runtime)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    sim = TwilioSimulator(
        PUBLIC,
        server_base_url=f"http://127.0.0.1:{server.server_port}",
        account_sid=paging_settings.twilio_account_sid,
        auth_token=paging_settings.twilio_auth_token,
        media=NoMedia(),
    )
    yield Desk(runtime=runtime, app=app, sim=sim, twilio=twilio_api, clock=clock)
    server.shutdown()
    with runtime.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    runtime.close()
