"""Hand outbox messages to RQ: right after a webhook answers, and from the sweeper."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from redis.exceptions import RedisError
from rq import Queue, Retry
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
    # Claim a batch in one statement, so concurrent dispatchers never enqueue the same message twice
    # (the outer "dispatched_at IS NULL" is checked again on the row a concurrent claim may have taken).
    table = OutboxMessage.__table__
    pending = select(table.c.id).where(table.c.dispatched_at.is_(None)).order_by(table.c.id).limit(limit)
    with runtime.engine.begin() as conn:
        claimed = conn.execute(
            update(table)
            .where(table.c.id.in_(pending.scalar_subquery()), table.c.dispatched_at.is_(None))
            .values(dispatched_at=now, attempts=table.c.attempts + 1)
            .returning(table.c.id, table.c.kind, table.c.key, table.c.payload)
        ).all()
    if not claimed:
        return 0
    queue = runtime.queue()
    jobs = [
        Queue.prepare_data(
            JOBS[kind],
            kwargs=payload,
            job_id=job_id_for(key),
            timeout=job_timeout(kind, runtime.settings),
            result_ttl=3600,
            failure_ttl=30 * 86400,
            # Retry intervals fire only with `rq worker --with-scheduler` (our worker runs it).
            retry=Retry(
                max=len(runtime.settings.job_retry_intervals), interval=list(runtime.settings.job_retry_intervals)
            ),
        )
        for _row_id, kind, key, payload in claimed
    ]
    try:
        queue.enqueue_many(jobs)  # one Redis pipeline for the whole batch
    except (RedisError, OSError) as exc:
        with runtime.engine.begin() as conn:
            conn.execute(
                update(table)
                .where(table.c.id.in_([row[0] for row in claimed]))
                .values(dispatched_at=None, last_error=f"{type(exc).__name__}: {exc}"[:500])
            )
        log.warning("redis unavailable, %d jobs stay in the outbox: %s", len(claimed), type(exc).__name__)
        return 0
    return len(jobs)


def dispatch_soon(runtime: Runtime) -> None:
    """Best-effort dispatch; the sweeper retries whatever fails."""
    try:
        dispatch_pending(runtime, limit=50)
    except Exception:  # noqa: BLE001 - nothing may reach the caller from here; the sweeper retries
        log.exception("outbox dispatch failed")


class Dispatcher:
    """One background thread per process that hands the outbox to Redis when kicked.

    Webhooks kick it after answering; kicks that arrive while it works coalesce
    into one more pass, so a burst of calls costs a few batched passes.
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def kick(self) -> None:
        """Ask for a dispatch pass soon."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="outbox-dispatcher", daemon=True)
                self._thread.start()
        self._wake.set()

    def _loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            dispatch_soon(self.runtime)


def job_id_for(key: str) -> str:
    """The RQ job id of an outbox key (one job per key)."""
    return key.replace(":", "-")
