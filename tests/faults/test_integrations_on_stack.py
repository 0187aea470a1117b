"""The integrations through the real processes (gunicorn, worker, pager, sweeper, Redis, the Twilio stand-in):
a voicemail, an email, a portal ticket and a critical alert each reach a Standard Webhooks receiver (signatures
checked with the ``standardwebhooks`` package's own verifier) and the ConnectWise stand-in exactly once, with the
worker SIGKILLed once and Redis stopped and restarted once on the way; a status set in ConnectWise comes back to
our ticket, and the P1 alert pages on-call.

The stack is one of its own (not the fault suite's shared one): its processes need the ConnectWise file and
development mode (webhooks over http to this machine) in their environment from the start. It runs on PostgreSQL
(through the fault suite's proxy) and on SQLite.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import mailbox
import re
import secrets
import shutil
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select
from standardwebhooks import Webhook, WebhookVerificationError

from integrations import webhooks
from integrations.psa_models import PsaOperation
from integrations.webhook_models import WebhookDelivery
from ivr.simulate import CallPlan
from testing.connectwise_standin import ConnectWiseStandIn
from testing.connectwise_standin import running as connectwise_running
from testing.stack import (
    ONCALL_NUMBERS,
    PUBLIC,
    Caller,
    Database,
    RedisServer,
    Stack,
    build_env,
    postgres_available,
)
from testing.stack import wait_until as _wait_until
from testing.twilio_server import TwilioTestServer, free_port
from tests.conftest import unavailable
from tests.faults.conftest import new_number
from tests.inbox import fixtures
from ticketing import alerts
from ticketing.db import transaction
from ticketing.models import Client, Contact, InboundMail, Ticket

pytestmark = pytest.mark.slow

MAILGUN_KEY = "key-integrations-" + "7" * 24
CREDENTIALS = {
    "company": "itechsol",
    "public_key": "pubK3yStack1234",
    "private_key": "pr1vK3yStackSecret9876",
    "client_id": "0b6f3c2e-9d41-4a7e-8c55-2f1e7d3a9b60",
}
BOARD = 7
CALLBACK_SECRET = "cb-Stack-" + "9f" * 8
CONTACT_EMAIL = "rita@pismo-title.example"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_LINK = re.compile(r"https?://\S+/portal/sign-in/link\?token=([A-Za-z0-9_-]+)")


def wait_until(check: Any, timeout: float, what: str, stack: Stack | None = None, every: float = 0.2) -> Any:
    """testing.stack.wait_until, with the processes' logs in the failure."""
    try:
        return _wait_until(check, timeout, what, every=every)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{stack.logs() if stack else ''}") from None


# --- a Standard Webhooks receiver --------------------------------------------------------------------------


@dataclass
class Receiver:
    """A real HTTP server that checks every POST as a receiver does, with standardwebhooks' verifier, when it
    arrives (the timestamp must be fresh); it answers the first attempt of each ``webhook-id`` 503 and the next
    ones 204, so every delivery is sent again with the same id. A request that fails the check gets 400."""

    url: str = ""
    secret: str = ""
    got: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    created: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))  # ticket -> webhook-ids
    refused: list[str] = field(default_factory=list)  # why requests failed the check
    lock: threading.Lock = field(default_factory=threading.Lock)

    def receive(self, headers: dict[str, str], body: bytes) -> int:
        """One request: its answer's status."""
        try:
            payload = Webhook(self.secret).verify(body, headers)
        except WebhookVerificationError as exc:
            with self.lock:
                self.refused.append(str(exc))
            return 400
        with self.lock:
            first = all(h.get("webhook-id") != headers.get("webhook-id") for h, _ in self.got)
            self.got.append((headers, body))
            if payload["type"] == "ticket.created":
                self.created[int(payload["data"]["ticket"])].add(headers["webhook-id"])
        return 503 if first else 204

    def verified(self) -> dict[int, set[str]]:
        """The verified ``ticket.created`` deliveries: ticket -> webhook-ids."""
        with self.lock:
            assert not self.refused, self.refused
            return {number: set(ids) for number, ids in self.created.items()}


@contextlib.contextmanager
def receiving() -> Iterator[Receiver]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server name
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(receiver.receive({k.lower(): v for k, v in self.headers.items()}, body))
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


# --- the stack with its integrations ------------------------------------------------------------------------


@dataclass
class Integrated:
    """The stack, the ConnectWise stand-in it is bridged to, and the webhook receiver it delivers to."""

    stack: Stack
    connectwise: ConnectWiseStandIn
    receiver: Receiver
    secret: str
    mail_dir: Path


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def integrated(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, twilio_server: TwilioTestServer
) -> Iterator[Integrated]:
    if shutil.which("redis-server") is None:
        unavailable("redis-server")
    if request.param == "postgresql" and not postgres_available():
        unavailable("PostgreSQL at 127.0.0.1:5432 (database test)")
    tmp = tmp_path_factory.mktemp(f"integrations-{request.param}")
    standin = ConnectWiseStandIn(**CREDENTIALS, board_id=BOARD)
    with connectwise_running(standin) as site, receiving() as receiver:
        config = tmp / "connectwise.toml"
        lines = [f'{k} = "{v}"' for k, v in CREDENTIALS.items()]
        lines += [f'site = "{site}"', f"board_id = {BOARD}", "default_company_id = 19297"]
        lines += [f'callback_secret = "{CALLBACK_SECRET}"', "[priorities]", *[f"P{n} = {n}" for n in range(1, 6)]]
        config.write_text("\n".join(lines) + "\n")
        redis = RedisServer(tmp)
        db: Database | None = None
        stack: Stack | None = None
        try:
            redis.start()
            db = Database(request.param, tmp, f"integrations_{secrets.token_hex(4)}")
            with transaction(db.sessions) as s:  # before any ticket: the cursor starts at the end of the log
                endpoint = webhooks.add_endpoint(
                    s, receiver.url, ["ticket.created"], now=datetime.now(UTC), dev_mode=True
                )
                secret = receiver.secret = endpoint.secret
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
                    "DEV_MODE": "true",  # webhooks may go over http to this machine
                    "CONNECTWISE_FILE": str(config),
                    "MAILGUN_SIGNING_KEY": MAILGUN_KEY,
                    "DEV_MAILBOX_DIR": str(tmp / "mail"),
                    "CONSOLE_SECURE_COOKIES": "false",  # the portal's cookie over the test's plain http
                },
            )
            stack = Stack(tmp=tmp, db=db, redis=redis, env=env, port=free_port())
            stack.start()
            yield Integrated(stack, standin, receiver, secret, tmp / "mail")
        finally:
            if stack is not None:
                stack.stop()
            redis.stop()
            if db is not None:
                db.drop()


# --- the four ways in ---------------------------------------------------------------------------------------


def voicemail(stack: Stack, twilio: TwilioTestServer, audio: bytes) -> tuple[str, int]:
    """A simulated call that leaves a voicemail; the caller's number and the ticket's number."""
    caller = Caller(
        PUBLIC,
        server_base_url=stack.url,
        account_sid=twilio.account_sid,
        auth_token=twilio.auth_token,
        media=twilio,
    )
    number = new_number()
    result = caller.call(number, CallPlan(keys=["1"], audio=audio))
    ticket = stack.ticket_of_call(result.call_sid)
    assert ticket is not None and ticket.number is not None, stack.logs()
    return number, ticket.number


def email(stack: Stack) -> int:
    """A message through the Mailgun webhook, signed as Mailgun signs it; its stored row."""
    raw = fixtures.multipart_alternative(mid=f"<stack-{uuid.uuid4().hex}@acme-dental.example>")
    timestamp, token = str(int(time.time())), uuid.uuid4().hex
    signature = hmac.new(MAILGUN_KEY.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    form = {"timestamp": timestamp, "token": token, "signature": signature, "recipient": "help@itech.example",
            "body-mime": raw.decode("latin-1")}  # fmt: skip
    response = requests.post(stack.url + "/mail/inbound/mailgun", data=form, timeout=30)
    assert response.status_code == 200, response.text[:300]
    return int(response.json()["stored"])


def ticket_of_mail(stack: Stack, row_id: int) -> int | None:
    with stack.session() as s:
        return s.scalar(
            select(Ticket.number).join(InboundMail, InboundMail.ticket_id == Ticket.id).where(InboundMail.id == row_id)
        )


def portal_ticket(stack: Stack, mail_dir: Path) -> int:
    """A contact signs in by the emailed link and submits the portal's form, all through gunicorn."""
    with transaction(stack.db.sessions) as s:
        client = Client(name=f"Pismo Title {secrets.token_hex(4)}")
        s.add(client)
        s.flush()
        s.add(Contact(client=client, name="Rita Vance", email=CONTACT_EMAIL, primary=True))
    web = requests.Session()

    def csrf(path: str) -> str:
        page = web.get(stack.url + path, timeout=30)
        match = _CSRF.search(page.text)
        assert match, f"no CSRF token on {path}: {page.status_code}"
        return match.group(1)

    answer = web.post(stack.url + "/portal/sign-in", data={"csrf_token": csrf("/portal/sign-in"),
                                                           "email": CONTACT_EMAIL}, timeout=30)  # fmt: skip
    assert answer.status_code == 200, answer.text[:300]

    def link_token() -> str | None:
        for message in mailbox.Maildir(mail_dir, create=True):
            if CONTACT_EMAIL in str(message["To"]).lower():
                found = _LINK.findall(message.get_payload(decode=True).decode())
                if found:
                    return found[-1]
        return None

    token = wait_until(link_token, 30, "the sign-in link's email", stack)
    confirm = f"/portal/sign-in/link?token={token}"
    answer = web.post(stack.url + "/portal/sign-in/link", data={"csrf_token": csrf(confirm), "token": token},
                      allow_redirects=False, timeout=30)  # fmt: skip
    assert answer.status_code == 303, answer.text[:300]
    form = {"csrf_token": csrf("/portal/tickets/new"), "step": "submit", "summary": "Escrow share unreachable",
            "description": "Nobody at the front desk can open the escrow folder.", "affected": "me",
            "workaround": "yes", "deadline": "no"}  # fmt: skip
    answer = web.post(stack.url + "/portal/tickets/new", data=form, allow_redirects=False, timeout=30)
    assert answer.status_code == 303, answer.text[:500]
    match = re.search(r"/portal/tickets/(\d+)", answer.headers["Location"])
    assert match, answer.headers["Location"]
    return int(match.group(1))


def critical_alert(stack: Stack) -> int:
    """A critical alert in PagerDuty's Events API v2 shape; the ticket it opened."""
    with transaction(stack.db.sessions) as s:
        client = Client(name=f"Stack Alerts {secrets.token_hex(4)}")
        s.add(client)
        s.flush()
        _, key = alerts.issue_key(s, client=client.id, name="RMM", actor="test", now=datetime.now(UTC))
        client_id = client.id
    event = {"routing_key": key, "event_action": "trigger", "dedup_key": f"core-{uuid.uuid4().hex[:8]}",
             "payload": {"summary": "Core switch unreachable", "source": "prtg", "severity": "critical"}}  # fmt: skip
    answer = requests.post(stack.url + "/integrations/events/v2/enqueue", json=event, timeout=30)
    assert answer.status_code == 202, answer.text[:300]
    with stack.session() as s:
        numbers = s.scalars(select(Ticket.number).where(Ticket.client_id == client_id)).all()
    assert len(numbers) == 1
    return int(numbers[0] or 0)


# --- what came out ------------------------------------------------------------------------------------------


def connectwise_tickets(standin: ConnectWiseStandIn) -> dict[int, list[int]]:
    """Our ticket number -> the ConnectWise ticket ids whose summary starts with it."""
    found: dict[int, list[int]] = defaultdict(list)
    for t in standin.created():
        match = re.match(r"#(\d+) ", t["summary"])
        if match:
            found[int(match.group(1))].append(int(t["id"]))
    return found


def test_four_sources_reach_the_webhook_and_connectwise_once_through_a_worker_kill_and_a_redis_restart(
    integrated: Integrated, twilio_server: TwilioTestServer, audio: dict[str, bytes]
) -> None:
    stack, standin, receiver = integrated.stack, integrated.connectwise, integrated.receiver
    twilio_server.reset()
    stack.ensure_worker()

    # A voicemail and an email, then the worker is killed while it transcribes the voicemail.
    caller_number, by_phone = voicemail(stack, twilio_server, audio["long"])
    mail_row = email(stack)
    wait_until(lambda: "audio stored" in stack.audit(by_phone), 30, "the worker to start transcribing", stack)
    killed = stack.worker
    assert killed is not None
    killed.kill9()
    stack.start_worker(scheduler=False)  # the dead worker's scheduler lock outlives it by a minute
    by_mail = wait_until(lambda: ticket_of_mail(stack, mail_row), 60, "the email's ticket", stack)

    # A portal ticket, then Redis goes away (empty on return) while a critical alert comes in.
    by_portal = portal_ticket(stack, integrated.mail_dir)
    stack.redis.stop()
    by_alert = critical_alert(stack)
    stack.redis.start()
    stack.ensure_worker()  # RQ's scheduler died with Redis: as the fault suite, a worker with a live one
    ours = {"voicemail": by_phone, "email": by_mail, "portal": by_portal, "alert": by_alert}
    assert len(set(ours.values())) == 4, ours

    def all_out() -> bool:
        hooks, psa = receiver.verified(), connectwise_tickets(standin)
        return all(hooks.get(n) and psa.get(n) for n in ours.values())

    wait_until(all_out, 120, f"every ticket {ours} at the webhook receiver and in ConnectWise", stack)
    stack.wait_transcribed(stack.tickets_of_caller(caller_number)[0].call_sid or "", timeout=120)

    # Everything in flight settled: each delivery done, no job left for these tickets.
    def settled() -> bool:
        with stack.session() as s:
            states = s.scalars(select(WebhookDelivery.state)).all()
        return bool(states) and all(state == "delivered" for state in states) and not stack.jobs_in_progress()

    wait_until(settled, 60, "every webhook delivery to be delivered", stack)

    def bridged() -> bool:
        with stack.session() as s:
            ops = s.scalars(
                select(PsaOperation.state).join(Ticket, Ticket.id == PsaOperation.ticket_id)
                .where(Ticket.number.in_(ours.values()))
            ).all()  # fmt: skip
        return len(ops) >= 5 and all(state == "done" for state in ops)  # 4 creates and the transcript's note

    wait_until(bridged, 60, "every ConnectWise operation of the four tickets to be done", stack)
    hooks, psa = receiver.verified(), connectwise_tickets(standin)
    for source, number in ours.items():
        assert len(hooks[number]) == 1, f"{source} ticket {number}: webhook-ids {hooks[number]}"
        assert len(psa[number]) == 1, f"{source} ticket {number}: ConnectWise tickets {psa[number]}"
    assert sorted(hooks) == sorted(ours.values())  # nothing else was announced
    ids = [h["webhook-id"] for h, _ in receiver.got]
    assert all(ids.count(i) >= 2 for i in ids)  # every delivery answered 503 once, then sent again with its id
    headers, body = receiver.got[0]
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):  # a body changed on the way
        Webhook(integrated.secret).verify(body.replace(b"ticket.created", b"ticket.updated"), headers)
    with stack.session() as s:
        sources = dict(s.execute(select(Ticket.number, Ticket.source).where(Ticket.number.in_(ours.values()))).all())
    announced = {json.loads(body)["data"]["ticket"]: json.loads(body)["data"]["source"] for _, body in receiver.got}
    assert announced == sources  # each ticket announced with its own source

    # A technician moves the portal ticket along in ConnectWise; its callback brings the status back.
    external = psa[by_portal][0]
    standin.set_status(external, "In Progress")
    answer = requests.post(stack.url + f"/integrations/connectwise/callback/{CALLBACK_SECRET}",
                           json={"ID": external, "Type": "ticket", "Action": "updated"}, timeout=30)  # fmt: skip
    assert answer.status_code == 200, answer.text[:300]
    with stack.session() as s:
        assert s.scalar(select(Ticket.status).where(Ticket.number == by_portal)) == "in progress"
    assert "status changed" in stack.audit(by_portal)
    # A stranger's guess at the callback URL changes nothing.
    wrong = requests.post(stack.url + "/integrations/connectwise/callback/not-the-secret", json={"ID": external},
                          timeout=30)  # fmt: skip
    assert wrong.status_code == 404

    # The P1 alert paged on-call at the Twilio stand-in (after Redis came back, from the outbox).
    def paged() -> bool:
        to_first = [r for r in twilio_server.requests if r.method == "POST" and r.path.endswith(
            ("/Messages.json", "/Calls.json")) and r.param("To") == ONCALL_NUMBERS["first"] and r.status in (200, 201)]  # fmt: skip
        return bool(to_first) and any(p.state == "sent" for p in stack.pages(by_alert))

    wait_until(paged, 30, f"ticket {by_alert}'s page to on-call", stack)
