"""Hand outbox messages to RQ, each to its job in ``workers.table``: right after a response, after a job, and from the sweeper."""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError
from rq import Queue, Retry
from rq.job import Callback, Job
from sqlalchemy import select, update
from sqlalchemy.orm import Session

import runtime as rt
from runtime import Runtime
from settings import Settings
from ticketing import outbox
from ticketing.models import OutboxMessage
from workers.table import job_for

if TYPE_CHECKING:
    from flask import Response

log = logging.getLogger(__name__)


def job_timeout(kind: str, settings: Settings) -> int:
    """Seconds a job may run. Transcription is sized from measured speed, not RQ's 180 s default:
    the bundled model runs at about 0.1x real time on 2 cores, so allow 0.5x the longest message plus load time."""
    if kind in (outbox.TRANSCRIBE, outbox.TRANSLATE, outbox.REFINE):
        return 60 + settings.voicemail_max_seconds // 2
    return 60


# (row id, kind, key, payload) of a claimed message
Claimed = tuple[int, str, str, dict[str, Any]]


def dispatch_pending(runtime: Runtime, limit: int = 100) -> int:
    """Enqueue undispatched outbox messages; returns how many went to Redis."""
    return enqueue_claimed(runtime, claim_pending(runtime, limit))


def claim_pending(runtime: Runtime, limit: int) -> list[Claimed]:
    """Claim up to ``limit`` undispatched messages, oldest first.

    One statement, so concurrent dispatchers never enqueue the same message twice (the
    outer "dispatched_at IS NULL" is checked again on a row a concurrent claim may have taken).
    """
    table = OutboxMessage.__table__
    pending = select(table.c.id).where(table.c.dispatched_at.is_(None)).order_by(table.c.id).limit(limit)
    with runtime.engine.begin() as conn:
        rows = conn.execute(
            update(table)
            .where(table.c.id.in_(pending.scalar_subquery()), table.c.dispatched_at.is_(None))
            .values(dispatched_at=runtime.now(), attempts=table.c.attempts + 1)
            .returning(table.c.id, table.c.kind, table.c.key, table.c.payload)
        ).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def claim_written(session: Session, now: datetime) -> list[OutboxMessage]:
    """Claim, in the transaction that writes them, the messages ``ticketing.outbox.post`` recorded in ``session``.

    The process that commits them hands them to Redis itself (``Dispatcher.send``), so the
    happy path costs no second write; should it die first, the sweeper finds the claimed
    message without a job and dispatches it again.
    """
    messages = [m for m in outbox.written(session) if m.dispatched_at is None]
    for message in messages:
        message.dispatched_at = now
        message.attempts = (message.attempts or 0) + 1
    return messages


def claim_for_response(session: Session, runtime: Runtime) -> list[OutboxMessage]:
    """``claim_written`` when this process hands messages over after its response (else the sweeper does)."""
    return claim_written(session, runtime.now()) if runtime.settings.dispatch_after_response else []


def enqueue_claimed(runtime: Runtime, claimed: list[Claimed]) -> int:
    """Hand claimed messages to RQ in one pipeline; on a Redis error, release them for the sweeper."""
    if not claimed:
        return 0
    jobs = [
        Queue.prepare_data(
            job_for(kind).function,
            kwargs=payload,
            job_id=job_id_for(key),
            timeout=job_timeout(kind, runtime.settings),
            result_ttl=3600,
            failure_ttl=30 * 86400,
            # Retry intervals fire only with `rq worker --with-scheduler` (our worker runs it).
            retry=Retry(
                max=len(runtime.settings.job_retry_intervals), interval=list(runtime.settings.job_retry_intervals)
            ),
            on_success=Callback(hand_off_follow_ups),
        )
        for _row_id, kind, key, payload in claimed
    ]
    queues = [job_for(kind).queue for _row_id, kind, _key, _payload in claimed]
    try:
        # One Redis pipeline per queue: pages on the paging queue, second readings on theirs, the rest on the main one.
        for queue in runtime.queues():
            batch = [job for job, name in zip(jobs, queues, strict=True) if name == queue.name]
            if batch:
                queue.enqueue_many(batch)
    except (RedisError, OSError) as exc:
        table = OutboxMessage.__table__
        with runtime.engine.begin() as conn:
            conn.execute(
                update(table)
                .where(table.c.id.in_([row[0] for row in claimed]))
                # A hand-over Redis refused is no attempt: an outage must not use up OUTBOX_MAX_ATTEMPTS.
                .values(
                    dispatched_at=None,
                    attempts=table.c.attempts - 1,
                    last_error=f"{type(exc).__name__}: {exc}"[:500],
                )
            )
        log.warning("redis unavailable, %d jobs stay in the outbox: %s", len(claimed), type(exc).__name__)
        return 0
    return len(jobs)


class Dispatcher:
    """One background thread per process that hands outbox messages to Redis after a response.

    ``send`` takes messages the request already claimed in its own transaction;
    ``kick`` asks for a pass over whatever is undispatched. Work that arrives while
    the thread is busy coalesces into its next batch. When Redis refuses a batch, the
    messages go back to the outbox and the next request's pass takes them again, so a
    Redis blip delays them by one call rather than until the sweeper's next pass.
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._claimed: list[Claimed] = []
        self._kicked = False

    def send(self, messages: list[OutboxMessage]) -> None:
        """Enqueue these committed, claimed messages soon (and any backlog Redis refused before)."""
        rows = [(m.id, m.kind, m.key, m.payload) for m in messages]
        with self._lock:
            if not rows and not self._kicked:
                return
            self._claimed.extend(rows)
        self._start()

    def kick(self) -> None:
        """Ask for a dispatch pass soon."""
        with self._lock:
            self._kicked = True
        self._start()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="outbox-dispatcher", daemon=True)
                self._thread.start()
        self._wake.set()

    def _loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                claimed, self._claimed = self._claimed, []
                kicked, self._kicked = self._kicked, False
            try:
                if kicked:
                    claimed += claim_pending(self.runtime, limit=50)
                if claimed and not enqueue_claimed(self.runtime, claimed):
                    with self._lock:
                        self._kicked = True  # released to the outbox: the next request's pass tries again
            except Exception:  # noqa: BLE001 - nothing may reach the caller from here; the sweeper retries
                log.exception("outbox dispatch failed")


def dispatcher_for(runtime: Runtime) -> Dispatcher:
    """The process's one dispatcher (created on first use)."""
    dispatcher = runtime.cache.get("dispatcher")
    if dispatcher is None:
        dispatcher = runtime.cache.setdefault("dispatcher", Dispatcher(runtime))
    return dispatcher  # type: ignore[no-any-return]


def job_id_for(key: str) -> str:
    """The RQ job id of an outbox key (one job per key)."""
    return key.replace(":", "-")


def hand_off_follow_ups(job: Job, connection: object, result: object) -> None:
    """RQ success callback: the messages a job recorded (a page's follow-up, a second reading, a notice) go to
    Redis as soon as it committed, not at the sweeper's next pass. Never fails the job: the sweeper retries."""
    try:
        dispatch_pending(rt.current(), limit=50)
    except Exception:  # noqa: BLE001 - the job itself succeeded; its follow-ups stay in the outbox for the sweeper
        log.exception("follow-ups of job %s not handed to Redis", job.id)


def hand_off_after_response(response: Response, runtime: Runtime, claimed: list[OutboxMessage] | None = None) -> None:
    """Once the client has the answer, this process hands outbox messages to Redis (one background thread).

    ``claimed``: the messages the request claimed in its own transaction (``claim_written``); without them,
    a pass over whatever is undispatched. Off when ``DISPATCH_AFTER_RESPONSE`` is false (the sweeper does it).
    """
    if not runtime.settings.dispatch_after_response:
        return
    dispatcher = dispatcher_for(runtime)
    if claimed is None:
        response.call_on_close(dispatcher.kick)
    else:
        response.call_on_close(lambda: dispatcher.send(claimed))  # with none claimed: only a refused backlog
