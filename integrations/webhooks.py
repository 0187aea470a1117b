"""Signed outbound webhooks (Standard Webhooks): endpoints, events read from the audit log, deliveries in order.

Events come out of the domain through the ticket audit log only: ``collect`` reads it with a cursor of its own
and ``events_of`` (a pure function) maps an audit action to the events it means. Each event is fanned out to
the enabled endpoints that asked for its type, as one delivery each with a fixed ``webhook-id``. ``post_due``
records an outbox job for each delivery due at the head of its lane (an endpoint and a ticket: a later event of
a ticket waits for the earlier one); the job (``workers.table``) signs and posts it with ``attempt``.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import secrets
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from integrations.webhook_models import WebhookCursor, WebhookDelivery, WebhookEndpoint, WebhookEvent
from ticketing import outbox
from ticketing.errors import DomainError
from ticketing.models import OPEN_STATUSES, AuditEntry, Milestone, Ticket, User

log = logging.getLogger(__name__)

EVENTS = (
    "ticket.created",
    "ticket.updated",
    "ticket.transcribed",
    "ticket.client_message",
    "page.sent",
    "page.acknowledged",
    "paging.nobody_reached",
    "sla.breached",
)
CURSOR = "webhooks"
RETRY_WINDOW = timedelta(hours=24)  # a delivery is tried for this long; an endpoint failing this long is disabled
BACKOFF = (5, 30, 120, 600, 1800, 3600, 7200, 14400)  # seconds before attempt 2, 3, ...; then every 4 hours
SETTLE = timedelta(seconds=60)  # how long a missing audit id may still commit (PostgreSQL ids commit out of order)
RESPONSE_BYTES = 4096  # read no more of an endpoint's answer
TIMEOUT = (3.05, 10.0)  # connect, read (seconds)
ROTATION_OVERLAP = timedelta(hours=24)
SECRET_PREFIX = "whsec_"
ADMIN = "admin"


class WebhookError(DomainError):
    """A refused endpoint: a bad URL, an unknown event, no such endpoint."""


# --- endpoints -----------------------------------------------------------------------------------------------


def new_secret() -> str:
    """A fresh signing secret, as Standard Webhooks spells it: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def check_url(url: str, *, dev_mode: bool) -> str:
    """The URL an endpoint may have: https (http to this machine in development mode), no credentials, no CR/LF.

    Outside development mode a host that is or resolves to a private, loopback or link-local address is refused.
    """
    url = url.strip()
    if not url or len(url) > 500:
        raise WebhookError("the URL is empty or longer than 500 characters")
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise WebhookError("the URL holds spaces or control characters (CR/LF)")
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port  # raises for a port past 65535 or not a number
    except ValueError:
        raise WebhookError("the URL's port is not a port number (1-65535)") from None
    if port == 0:
        raise WebhookError("the URL's port is not a port number (1-65535)")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise WebhookError("the URL may not carry a user name or password")
    if not host:
        raise WebhookError("the URL has no host")
    local = host in ("localhost", "127.0.0.1", "::1")
    if parts.scheme == "http" and not (dev_mode and local):
        raise WebhookError("the URL must use https (http only to localhost in development mode)")
    if parts.scheme not in ("https", "http"):
        raise WebhookError("the URL must use https")
    if not dev_mode:
        refused = private_address(host, port or 443)
        if refused:
            raise WebhookError(f"the URL's host is a private or loopback address ({refused})")
    return url


def addresses(host: str, port: int) -> list[str]:
    """The addresses ``host`` is or resolves to, IPv4 first (none when it does not resolve)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    found = list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))
    return sorted(found, key=lambda a: ":" in a)


def private_address(host: str, port: int) -> str | None:
    """The first private, loopback, link-local or reserved address ``host`` is or resolves to, else None."""
    for text in addresses(host, port):
        address = ipaddress.ip_address(text)
        if not address.is_global or address.is_multicast:
            return text
    return None


def check_events(events: list[str]) -> list[str]:
    """The events asked for, each known, without repeats."""
    wanted = [e.strip() for e in events if e.strip()]
    unknown = sorted(set(wanted) - set(EVENTS))
    if unknown:
        raise WebhookError(f"unknown events: {', '.join(unknown)} (known: {', '.join(EVENTS)})")
    if not wanted:
        raise WebhookError("choose at least one event")
    return [e for e in EVENTS if e in wanted]


def add_endpoint(
    session: Session,
    url: str,
    events: list[str],
    *,
    now: datetime,
    dev_mode: bool,
    include_pii: bool = False,
    description: str = "",
    by: str = "",
) -> WebhookEndpoint:
    """Register an endpoint; its ``secret`` is shown to the admin once, now."""
    if any(ord(c) < 32 for c in description):
        raise WebhookError("the description holds control characters")
    endpoint = WebhookEndpoint(
        url=check_url(url, dev_mode=dev_mode),
        events=check_events(events),
        secret=new_secret(),
        include_pii=include_pii,
        enabled=True,
        description=description.strip()[:200],
        created_at=now,
        created_by=by[:120],
    )
    session.add(endpoint)
    session.flush()
    _cursor(session)  # events are read from the first endpoint's registration on
    return endpoint


def get_endpoint(session: Session, endpoint_id: int) -> WebhookEndpoint:
    """The endpoint, or WebhookError."""
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise WebhookError(f"no webhook endpoint {endpoint_id}")
    return endpoint


def disable(session: Session, endpoint: WebhookEndpoint, *, now: datetime, reason: str) -> None:
    """Stop sending to ``endpoint``; its pending deliveries fail (each can be sent again)."""
    endpoint.enabled = False
    endpoint.disabled_at = now
    endpoint.disabled_reason = reason
    for delivery in session.scalars(
        select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.state == "pending")
    ):
        delivery.state = "failed"
        delivery.last_error = f"endpoint disabled: {reason}"[:1000]


def enable(endpoint: WebhookEndpoint) -> None:
    """Send to ``endpoint`` again, with a fresh failure window."""
    endpoint.enabled = True
    endpoint.disabled_at = None
    endpoint.disabled_reason = None
    endpoint.failing_since = None


def rotate(endpoint: WebhookEndpoint, *, now: datetime, overlap: timedelta = ROTATION_OVERLAP) -> str:
    """A new secret; the old one signs too (a second signature) until ``now + overlap``. Returns the new secret."""
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_until = now + overlap
    endpoint.secret = new_secret()
    return endpoint.secret


def send_again(session: Session, delivery_id: int, *, now: datetime) -> WebhookDelivery:
    """Try a delivery again (same ``webhook-id``), for a fresh window; its endpoint must be enabled."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise WebhookError(f"no delivery {delivery_id}")
    if not delivery.endpoint.enabled:
        raise WebhookError("the endpoint is disabled: enable it first")
    delivery.state = "pending"
    delivery.next_attempt_at = now
    delivery.retry_until = now + RETRY_WINDOW
    return delivery


# --- events out of the audit log --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """What an audit entry means to a subscriber: a type, data anyone may see, data only opt-in endpoints see."""

    type: str
    data: dict[str, Any]
    private: tuple[str, ...] = ()  # names of the ticket's personal fields to add for endpoints with include_pii


def _change(field: str, detail: dict[str, Any]) -> Event:
    return Event("ticket.updated", {"changes": {field: {"old": detail.get("from"), "new": detail.get("to")}}})


def events_of(action: str, detail: dict[str, Any]) -> list[Event]:
    """The webhook events an audit entry means (none for most actions)."""
    if action == "created":
        fields = ("priority", "source", "client")
        return [Event("ticket.created", {k: detail.get(k) for k in fields}, private=("caller_number",))]
    if action in ("priority changed", "status changed", "assigned"):
        return [_change({"priority changed": "priority", "status changed": "status"}.get(action, "assignee"), detail)]
    if action == "waiting on client":
        return [
            Event("ticket.updated", {"changes": {"status": {"old": detail.get("from"), "new": "waiting on client"}}})
        ]
    if action == "transcribed":
        data = {k: detail.get(k) for k in ("language", "confidence", "engine")}
        return [Event("ticket.transcribed", data, private=("transcript", "caller_number"))]
    if action == "client message":
        data = {k: detail.get(k) for k in ("channel", "subject", "automatic")}
        return [Event("ticket.client_message", data, private=("from",))]
    if action == "paged":
        return [Event("page.sent", {k: detail.get(k) for k in ("position", "target", "people", "channels", "cycle")})]
    if action == "acknowledged":
        return [Event("page.acknowledged", {k: detail.get(k) for k in ("via", "person", "after_seconds")})]
    if action == "nobody reached":
        return [Event("paging.nobody_reached", {"pages": detail.get("pages")})]
    return []


def _private(name: str, ticket: Ticket, detail: dict[str, Any]) -> Any:
    if name == "from":
        return detail.get("from")
    return getattr(ticket, name)


def _cursor(session: Session) -> WebhookCursor:
    cursor = session.get(WebhookCursor, CURSOR, with_for_update=True)
    if cursor is None:
        # The first pass starts at the end of the log: subscribers get what happens from now on.
        start = session.scalar(select(func.max(AuditEntry.id))) or 0
        cursor = WebhookCursor(name=CURSOR, position=start, seen=[])
        session.add(cursor)
        session.flush()
    return cursor


def collect(session: Session, now: datetime, limit: int = 500) -> int:
    """Record the events of audit entries not read yet, and of SLA milestones newly breached; returns how many.

    Audit ids are taken in order but may commit out of order (PostgreSQL), so the cursor keeps ``position`` (every
    id up to it is read) and the ids ``seen`` above it; a missing id is waited for SETTLE before it is passed over.
    """
    cursor = _cursor(session)
    seen = set(cursor.seen or [])
    rows = session.execute(
        select(AuditEntry.id, AuditEntry.ticket_id, AuditEntry.action, AuditEntry.detail, AuditEntry.at)
        .where(AuditEntry.id > cursor.position)
        .order_by(AuditEntry.id)
        .limit(limit + len(seen))
    ).all()
    recorded = 0
    for entry_id, ticket_id, action, detail, at in rows:
        if entry_id in seen:
            continue
        seen.add(entry_id)
        found = events_of(action, detail or {})
        if not found:
            continue
        ticket = session.get(Ticket, ticket_id)
        if ticket is None or ticket.number is None:
            continue
        for n, event in enumerate(found):
            private = {name: _private(name, ticket, detail or {}) for name in event.private}
            data = {"ticket": ticket.number, "priority": ticket.priority, "status": ticket.status, **event.data}
            recorded += _record(session, f"audit:{entry_id}:{n}", event.type, ticket.number, at, data, private, now)
    recorded += _breaches(session, now)
    _advance(cursor, seen, now)
    return recorded


def _advance(cursor: WebhookCursor, seen: set[int], now: datetime) -> None:
    while seen:
        while cursor.position + 1 in seen:
            cursor.position += 1
            seen.discard(cursor.position)
        if not seen:
            break
        if cursor.gap_since is None:
            cursor.gap_since = now
        if now - cursor.gap_since < SETTLE:
            break
        cursor.position = min(seen) - 1  # the missing ids never committed (a rolled-back transaction)
        cursor.gap_since = None
    if not seen:
        cursor.gap_since = None
    cursor.seen = sorted(seen)


def _breaches(session: Session, now: datetime) -> int:
    wanted = session.scalars(select(WebhookEndpoint.events).where(WebhookEndpoint.enabled.is_(True))).all()
    if not any("sla.breached" in (events or []) for events in wanted):
        return 0
    since = now - timedelta(days=7)
    known = set(
        session.scalars(select(WebhookEvent.key).where(WebhookEvent.type == "sla.breached", WebhookEvent.at > since))
    )
    recorded = 0
    rows = session.execute(
        select(Milestone, Ticket)
        .join(Ticket, Milestone.ticket_id == Ticket.id)
        .where(
            Milestone.due_at.is_not(None),
            Milestone.due_at <= now,
            Milestone.due_at > since,
            Milestone.met_at.is_(None),
            Ticket.status.in_(list(OPEN_STATUSES)),
            Ticket.paused_at.is_(None),
        )
    ).all()
    for milestone, ticket in rows:
        if ticket.number is None or milestone.due_at is None:
            continue
        key = f"sla:{ticket.id}:{milestone.name}:{milestone.due_at.isoformat()}"
        if key in known:
            continue
        data = {
            "ticket": ticket.number,
            "priority": ticket.priority,
            "status": ticket.status,
            "milestone": milestone.name,
            "due_at": milestone.due_at.astimezone(UTC).isoformat(),
        }
        recorded += _record(session, key, "sla.breached", ticket.number, milestone.due_at, data, {}, now)
    return recorded


def _record(
    session: Session,
    key: str,
    type_: str,
    ticket: int | None,
    at: datetime,
    data: dict[str, Any],
    private: dict[str, Any],
    now: datetime,
) -> int:
    endpoints = [
        e
        for e in session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.enabled.is_(True)))
        if type_ in (e.events or [])
    ]
    if not endpoints or session.scalar(select(WebhookEvent.id).where(WebhookEvent.key == key)) is not None:
        return 0  # nobody wants it, or it is recorded already
    event = WebhookEvent(key=key, type=type_, ticket=ticket, at=at, data=data, private=private)
    session.add(event)
    session.flush()
    for endpoint in endpoints:
        session.add(
            WebhookDelivery(
                endpoint_id=endpoint.id,
                event_id=event.id,
                message_id=f"msg_{uuid.uuid4().hex}",
                ticket=ticket,
                created_at=now,
                retry_until=now + RETRY_WINDOW,
                state="pending",
                attempts=0,
                next_attempt_at=now,
            )
        )
    return 1


# --- deliveries --------------------------------------------------------------------------------------------------


def job_key(delivery: WebhookDelivery) -> str:
    """The outbox key of a delivery's next attempt (one job per attempt)."""
    return f"webhook:{delivery.id}:{delivery.attempts + 1}"


def _lane(delivery: WebhookDelivery) -> tuple[int, int]:
    return (delivery.endpoint_id, delivery.ticket if delivery.ticket is not None else -delivery.id)


def heads(session: Session, endpoint_id: int | None = None) -> list[WebhookDelivery]:
    """The first pending delivery of each lane (endpoint, ticket) of enabled endpoints: the only ones sent."""
    query = (
        select(WebhookDelivery)
        .join(WebhookEndpoint)
        .where(WebhookDelivery.state == "pending", WebhookEndpoint.enabled.is_(True))
        .order_by(WebhookDelivery.id)
        .limit(5000)
    )
    if endpoint_id is not None:
        query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
    first: dict[tuple[int, int], WebhookDelivery] = {}
    for delivery in session.scalars(query):
        first.setdefault(_lane(delivery), delivery)
    return list(first.values())


def post_due(session: Session, now: datetime, kind: str, endpoint_id: int | None = None) -> int:
    """Record an outbox job (of ``kind``) for each lane head that is due; returns how many were new."""
    posted = 0
    for delivery in heads(session, endpoint_id):
        if delivery.next_attempt_at is None or delivery.next_attempt_at <= now:
            payload = {"delivery": delivery.id, "attempt": delivery.attempts + 1}
            posted += outbox.post(session, kind, job_key(delivery), payload, now)
    return posted


def post_next_in_lane(session: Session, delivery: WebhookDelivery, now: datetime, kind: str) -> bool:
    """After ``delivery`` is done, record the job of the next pending delivery of its lane when it is due."""
    if delivery.ticket is None or delivery.state == "pending":
        return False
    following = session.scalars(
        select(WebhookDelivery)
        .where(
            WebhookDelivery.endpoint_id == delivery.endpoint_id,
            WebhookDelivery.ticket == delivery.ticket,
            WebhookDelivery.state == "pending",
        )
        .order_by(WebhookDelivery.id)
        .limit(1)
    ).first()
    if following is None or (following.next_attempt_at is not None and following.next_attempt_at > now):
        return False
    payload = {"delivery": following.id, "attempt": following.attempts + 1}
    return outbox.post(session, kind, job_key(following), payload, now)


def payload_of(delivery: WebhookDelivery) -> bytes:
    """The body: the Standard Webhooks envelope; personal data only for an endpoint that opted in."""
    event = delivery.event
    data = dict(event.data)
    if delivery.endpoint.include_pii:
        data.update(event.private or {})
    body = {"type": event.type, "timestamp": event.at.astimezone(UTC).isoformat(), "data": data}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def signature(endpoint: WebhookEndpoint, message_id: str, sent_at: datetime, body: bytes, now: datetime) -> str:
    """``webhook-signature``: ``v1,...`` by the current secret, and by the previous one during a rotation's overlap."""
    text = body.decode()
    signatures = [Webhook(endpoint.secret).sign(message_id, sent_at, text)]
    if endpoint.previous_secret and endpoint.previous_until is not None and now < endpoint.previous_until:
        signatures.append(Webhook(endpoint.previous_secret).sign(message_id, sent_at, text))
    return " ".join(signatures)


@dataclass(frozen=True)
class Request:
    """An attempt ready to go: where, what and the headers (taken from the database before any network I/O)."""

    url: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Outcome:
    """What an attempt got: an HTTP status (or None) and an error (None on a 2xx)."""

    status: int | None
    error: str | None


def prepare(delivery: WebhookDelivery, now: datetime, sent_at: datetime) -> Request:
    """Sign the delivery's body for an attempt at ``sent_at`` (the receiver's clock checks it: the real time)."""
    body = payload_of(delivery)
    headers = {
        "content-type": "application/json",
        "user-agent": "supportline-webhooks/1",
        "webhook-id": delivery.message_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signature(delivery.endpoint, delivery.message_id, sent_at, body, now),
    }
    return Request(delivery.endpoint.url, body, headers)


class PinnedAdapter(HTTPAdapter):
    """Connect to the address that was checked, not to whatever the name resolves to a moment later (DNS
    rebinding); TLS still checks the certificate against the URL's host name (SNI and hostname check)."""

    def __init__(self, address: str) -> None:
        super().__init__(max_retries=0)
        self.address = f"[{address}]" if ":" in address else address

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: bool | str, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The pool of the pinned address, verifying TLS for the URL's own host name."""
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        name = host_params["host"]
        host_params = {**host_params, "host": self.address}
        if host_params["scheme"] == "https":
            pool_kwargs = {**pool_kwargs, "server_hostname": name, "assert_hostname": name}
        return host_params, pool_kwargs


def send(request: Request, *, dev_mode: bool) -> Outcome:
    """POST once: no redirects, timeouts, at most RESPONSE_BYTES of the answer read. The host is resolved
    here, at each attempt; outside development mode any private address refuses the attempt, and the connection
    goes to the address checked."""
    parts = urlsplit(request.url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    found = addresses(host, port)
    if not found:
        return Outcome(None, f"{host} does not resolve")
    if not dev_mode:
        refused = private_address(host, port)
        if refused:
            return Outcome(None, f"refused: {host} is a private or loopback address ({refused})")
    headers = {**request.headers, "host": parts.netloc}
    prepared = requests.Request("POST", request.url, data=request.body, headers=headers).prepare()
    # The adapter itself, not a requests Session: a Session reads a redirect's whole body (however large)
    # even when it follows no redirect, and takes proxies from the environment.
    adapter = PinnedAdapter(found[0])
    try:
        response = adapter.send(prepared, stream=True, timeout=TIMEOUT, verify=True, proxies={})
        try:
            answer = response.raw.read(RESPONSE_BYTES, decode_content=False) or b""
            status = response.status_code
        finally:
            response.close()
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        return Outcome(None, f"{type(exc).__name__}: {exc}"[:500])
    finally:
        adapter.close()
    if 200 <= status < 300:
        return Outcome(status, None)
    text = answer[:300].decode("utf-8", "replace").replace("\r", " ").replace("\n", " ")
    return Outcome(status, f"HTTP {status}: {text}".strip()[:500])


def backoff(attempts: int) -> timedelta:
    """The wait before the next attempt after ``attempts`` failed ones."""
    return timedelta(seconds=BACKOFF[min(attempts, len(BACKOFF)) - 1] if attempts else 0)


def record(session: Session, delivery: WebhookDelivery, outcome: Outcome, now: datetime) -> WebhookEndpoint | None:
    """Note an attempt's outcome; returns the endpoint when this failure disabled it (24 hours of failures)."""
    endpoint = delivery.endpoint
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.last_status = outcome.status
    delivery.last_error = outcome.error
    if outcome.error is None:
        delivery.state = "delivered"
        delivery.delivered_at = now
        delivery.next_attempt_at = None
        endpoint.failing_since = None
        return None
    endpoint.failing_since = endpoint.failing_since or now
    if now >= delivery.retry_until:
        delivery.state = "failed"
        delivery.next_attempt_at = None
    else:
        delivery.next_attempt_at = now + backoff(delivery.attempts)
    if endpoint.enabled and now - endpoint.failing_since >= RETRY_WINDOW:
        disable(session, endpoint, now=now, reason=f"failing since {endpoint.failing_since:%Y-%m-%d %H:%M} UTC")
        return endpoint
    return None


def is_head(session: Session, delivery: WebhookDelivery) -> bool:
    """No earlier delivery of the same lane is still pending."""
    query = select(WebhookDelivery.id).where(
        WebhookDelivery.endpoint_id == delivery.endpoint_id,
        WebhookDelivery.state == "pending",
        WebhookDelivery.id < delivery.id,
    )
    if delivery.ticket is None:
        return True
    return session.scalar(query.where(WebhookDelivery.ticket == delivery.ticket).limit(1)) is None


# --- the admins' alert -------------------------------------------------------------------------------------------


def admin_addresses(session: Session) -> list[str]:
    """The addresses of active admin accounts that have one."""
    return sorted(
        e
        for e in session.scalars(
            select(User.email).where(User.role == ADMIN, User.active.is_(True), User.email.is_not(None))
        )
        if e
    )


def disabled_alert(endpoint: WebhookEndpoint, *, to: list[str], mail_from: str, console_url: str) -> EmailMessage:
    """The email telling the admins an endpoint was disabled."""
    msg = EmailMessage()
    msg["From"] = mail_from
    msg["To"] = ", ".join(to)
    msg["Subject"] = f"Webhook endpoint {endpoint.id} disabled after 24 hours of failures"
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(
        f"The webhook endpoint {endpoint.url} failed every delivery for 24 hours and was disabled "
        f"({endpoint.disabled_reason}).\n\nIts deliveries and the Enable button: {console_url}\n"
    )
    return msg


def counts(session: Session) -> dict[str, int]:
    """For /metrics: endpoints disabled after failing, and deliveries pending and failed."""
    disabled = session.scalar(
        select(func.count()).select_from(WebhookEndpoint).where(WebhookEndpoint.disabled_reason.like("failing%"))
    )
    by_state = dict(
        session.execute(select(WebhookDelivery.state, func.count()).group_by(WebhookDelivery.state)).tuples().all()
    )
    return {
        "disabled": int(disabled or 0),
        "pending": int(by_state.get("pending", 0)),
        "failed": int(by_state.get("failed", 0)),
    }


def record_events(session: Session, now: datetime, kind: str) -> int:
    """The pass the sweeper runs: collect new events, then record jobs for the due deliveries."""
    if session.scalar(select(WebhookEndpoint.id).where(WebhookEndpoint.enabled.is_(True)).limit(1)) is None:
        cursor = session.get(WebhookCursor, CURSOR)
        if cursor is not None:  # nobody listens: what happens meanwhile is never sent to a later endpoint
            cursor.position = session.scalar(select(func.max(AuditEntry.id))) or 0
            cursor.seen = []
            cursor.gap_since = None
        return 0
    try:
        with session.begin_nested():
            collect(session, now)
    except IntegrityError:
        log.info("webhook events: another pass recorded them first")
    return post_due(session, now, kind)
