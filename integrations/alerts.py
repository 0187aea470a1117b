"""Monitoring and RMM alerts through the PagerDuty Events API v2: one event in, the Events API's answer out.

The web view hands the raw body here inside its transaction; this checks it, finds the routing key's
client, counts the key's rate in Redis and calls the domain (``ticketing.alerts``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from limits import parse as parse_rate
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError
from sqlalchemy.orm import Session

from integrations import events_api
from runtime import Runtime
from ticketing import alerts

log = logging.getLogger(__name__)
RATE_KEY = "alert-key"


@dataclass(frozen=True)
class Answer:
    """The HTTP status and JSON body to answer an event with."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)


def too_large() -> Answer:
    """The answer to a body over the Events API's 512 KiB."""
    return Answer(413, events_api.invalid([f"Request body exceeds {events_api.MAX_BODY_BYTES} bytes"]))


def _no_constant(name: str) -> Any:
    """NaN, Infinity and -Infinity are not JSON (RFC 8259): refused like any other invalid body."""
    raise ValueError(f"{name} is not a JSON value")


def enqueue(session: Session, runtime: Runtime, raw: bytes) -> Answer:
    """Check one event and apply it to its client's ticket; leaves the commit to the caller."""
    if len(raw) > events_api.MAX_BODY_BYTES:
        return too_large()
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: nested past the parser's depth
        return Answer(400, events_api.invalid(["Request body is not valid JSON"]))
    event, errors = events_api.parse(body)
    if event is None:
        return Answer(400, events_api.invalid(errors))
    key = alerts.key_for(session, event.routing_key)
    if key is None:
        return Answer(400, events_api.invalid([events_api.UNKNOWN_KEY]))
    if not _within_rate(runtime, key.id):
        return Answer(429, {"status": "throttle event", "message": "Requests for this routing key are throttled"})
    dedup = event.dedup_key or alerts.new_dedup_key()
    outcome = alerts.receive(
        session,
        key,
        action=event.action,
        dedup_key=dedup,
        summary=event.summary,
        source=event.source,
        severity=event.severity,
        details=event.details,
        policy=runtime.policy,
        priorities=dict(runtime.settings.alert_priorities),
        now=runtime.now(),
    )
    log.info("alert %s for key %s: %s ticket %s", event.action, key.prefix, outcome.result, outcome.ticket)
    return Answer(202, events_api.accepted(outcome.dedup_key))


def _within_rate(runtime: Runtime, key_id: int) -> bool:
    """Count one event against its key's rate (a moving window in Redis); Redis away counts nothing."""
    limiter = runtime.cache.get("alert-limiter")
    try:
        if limiter is None:
            storage = RedisStorage(runtime.settings.redis_url, connection_pool=runtime.redis.connection_pool)
            limiter = runtime.cache["alert-limiter"] = MovingWindowRateLimiter(storage)
        return bool(limiter.hit(parse_rate(runtime.settings.alert_rate_limit), RATE_KEY, str(key_id)))
    except RedisError as exc:
        # An alert that may page someone matters more than its rate for the seconds Redis is away.
        log.warning("alert rate not counted (Redis unavailable): %s", exc)
        return True
