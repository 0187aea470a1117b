"""The per-process runtime: settings, policy, database sessions, Redis and the clock.

Built once per process (the web app factory, the RQ worker, the sweeper), never
at import time; jobs look it up with ``current()``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from rq import Queue
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from settings import Settings, load_settings
from ticketing.db import make_engine, make_session_factory
from ticketing.policy import SupportPolicy, load_policy

Clock = Callable[[], datetime]
QUEUE_NAME = "supportline"
# Pages, acknowledgement follow-ups and escalation steps: a queue of their own, served first by every
# worker and only by the pager process, so a page never waits behind a transcription.
PAGING_QUEUE_NAME = "supportline-paging"
# Second readings of transcripts (the number pass): served after the main queue, so a first
# transcript, an SMS or a mail never waits behind one; the pager never serves it.
REFINE_QUEUE_NAME = "supportline-refine"
# The caller's "new ticket created" SMS: served right after pages, by every worker and by the pager, so it
# never waits behind a transcription (a Spanish one takes the worker most of a minute).
TEXTS_QUEUE_NAME = "supportline-texts"


def system_clock() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


@dataclass
class Runtime:
    """Everything an adapter needs to do its work, built from Settings."""

    settings: Settings
    policy: SupportPolicy
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Clock = system_clock
    redis_timeout: float | None = None
    _redis: Redis | None = field(default=None, repr=False)
    cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def redis(self) -> Redis:
        """The Redis connection (lazily connected)."""
        if self._redis is None:
            self._redis = Redis.from_url(
                self.settings.redis_url,
                socket_timeout=self.redis_timeout,
                socket_connect_timeout=self.redis_timeout,
            )
        return self._redis

    def queue(self) -> Queue:
        """The job queue of this service (transcriptions, confirmation SMS)."""
        return Queue(QUEUE_NAME, connection=self.redis)

    def paging_queue(self) -> Queue:
        """The paging queue: pages, escalation steps, transcript and repeat-call follow-ups."""
        return Queue(PAGING_QUEUE_NAME, connection=self.redis)

    def texts_queue(self) -> Queue:
        """The queue of the callers' confirmation SMS, served right after the paging queue."""
        return Queue(TEXTS_QUEUE_NAME, connection=self.redis)

    def refine_queue(self) -> Queue:
        """The queue of second readings (a transcript's number pass), served last."""
        return Queue(REFINE_QUEUE_NAME, connection=self.redis)

    def queues(self) -> list[Queue]:
        """Every queue, in the order a worker serves them: paging, callers' texts, main, then second readings."""
        return [self.paging_queue(), self.texts_queue(), self.queue(), self.refine_queue()]

    def now(self) -> datetime:
        """The current time, from the injected clock."""
        return self.clock()

    def close(self) -> None:
        """Release connections and the mail-parsing child (tests, shutdown)."""
        sandbox = self.cache.pop("mail-sandbox", None)
        if sandbox is not None:
            sandbox.close()
        if self._redis is not None:
            self._redis.close()
            self._redis = None
        self.engine.dispose()


def build_runtime(
    settings: Settings | None = None, *, clock: Clock | None = None, redis_timeout: float | None = None
) -> Runtime:
    """Build a runtime; raises ConfigError/PolicyError on broken configuration."""
    s = settings or load_settings()
    policy = load_policy(s.policy_file)
    engine = make_engine(s.database_url)
    if s.dev_mode and s.allow_simulated_time:
        from runtime.devclock import SharedOffsetClock

        clock = SharedOffsetClock(clock or system_clock, s.redis_url)
    return Runtime(
        settings=s,
        policy=policy,
        engine=engine,
        sessions=make_session_factory(engine),
        clock=clock or system_clock,
        redis_timeout=redis_timeout,
    )


_current: Runtime | None = None


def current() -> Runtime:
    """This process's runtime, built from the environment on first use."""
    global _current
    if _current is None:
        _current = build_runtime()
    return _current


def install(runtime: Runtime | None) -> None:
    """Make ``runtime`` this process's runtime (worker start-up, tests)."""
    global _current
    _current = runtime
