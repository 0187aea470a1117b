"""Hand outbox messages to RQ: right after a webhook answers, and from the sweeper."""

from __future__ import annotations

import logging
from datetime import timedelta

from redis.exceptions import RedisError
from rq import Retry
from sqlalchemy import select, update

from settings import Settings
from ticketing import outbox
from ticketing.models import OutboxMessage
from workers.runtime import Runtime

log = logging.getLogger(__name__)

# kind -> job function
JOBS: dict[str, str] = {
    outbox.TRANSCRIBE: "workers.jobs.transcribe_recording",
    outbox.CONFIRM: "workers.jobs.send_confirmation",
    outbox.PAGE: "workers.jobs.page_on_call",
    outbox.TRANSCRIPT_READY: "workers.jobs.transcript_ready",
}
RETRY = Retry(max=3, interval=[10, 30, 90])  # fires only with `rq worker --with-scheduler`


def job_timeout(kind: str, settings: Settings) -> int:
    """Seconds a job may run. Transcription is sized from measured speed, not RQ's 180 s default:
    the bundled model runs at about 0.1x real time on 2 cores, so allow 0.5x the longest message plus load time."""
    if kind == outbox.TRANSCRIBE:
        return 60 + settings.voicemail_max_seconds // 2
    return 60


# A claimed message whose enqueue never completed (process died) is claimed again after this.
CLAIM_TIMEOUT = timedelta(minutes=2)


def dispatch_pending(runtime: Runtime, limit: int = 100) -> int:
    """Enqueue undispatched outbox messages; returns how many went to Redis."""
    now = runtime.now()
    with runtime.sessions() as s:
        rows = s.execute(
            select(OutboxMessage.id, OutboxMessage.kind, OutboxMessage.key, OutboxMessage.payload)
            .where(OutboxMessage.dispatched_at.is_(None))
            .order_by(OutboxMessage.id)
            .limit(limit)
        ).all()
    sent = 0
    queue = runtime.queue()
    for row_id, kind, key, payload in rows:
        # Claim first, so concurrent dispatchers never enqueue the same message twice.
        with runtime.sessions.begin() as s:
            claimed = s.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row_id, OutboxMessage.dispatched_at.is_(None))
                .values(dispatched_at=now, attempts=OutboxMessage.attempts + 1)
            ).rowcount
        if not claimed:
            continue
        try:
            queue.enqueue(
                JOBS[kind],
                job_id=job_id_for(key),
                job_timeout=job_timeout(kind, runtime.settings),
                result_ttl=3600,
                failure_ttl=30 * 86400,
                retry=RETRY,
                kwargs=payload,
            )
            sent += 1
        except (RedisError, OSError) as exc:
            with runtime.sessions.begin() as s:
                s.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == row_id)
                    .values(dispatched_at=None, last_error=f"{type(exc).__name__}: {exc}"[:500])
                )
            log.warning("redis unavailable, %s stays in the outbox: %s", key, type(exc).__name__)
            break
    return sent


def dispatch_soon(runtime: Runtime) -> None:
    """Best-effort dispatch after a webhook's response; the sweeper retries whatever fails."""
    try:
        dispatch_pending(runtime, limit=20)
    except Exception:  # noqa: BLE001 - after the response nothing may reach the caller; the sweeper retries
        log.exception("outbox dispatch after response failed")


def job_id_for(key: str) -> str:
    """The RQ job id of an outbox key (one job per key)."""
    return key.replace(":", "-")
