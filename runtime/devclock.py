"""Development mode's one simulated clock, shared by the web, worker and sweeper processes through Redis.

With ``DEV_MODE`` and ``ALLOW_SIMULATED_TIME``, a simulated call (``python -m ivr.simulate --at ...``, ``make demo``)
moves the whole development service to the call's time: the web process records the offset of the call's time
from the real clock, and every process's clock is the real time plus that offset. So the ticket opens, the
after-hours rotation is paged, the engineer acknowledges and the timeline reads in the order it happened at the
simulated time. Never used in production (``DEV_MODE`` is off there, and the simulator's header is ignored).

``bin/supportline time show`` prints the offset in force and ``bin/supportline time reset`` removes it (the real
clock again); while one is set, every console page shows a "SIMULATED <time>" banner.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from redis import Redis
from redis.exceptions import RedisError

OFFSET_KEY = "supportline:dev:clock-offset-seconds"


class SharedOffsetClock:
    """The real clock plus the offset last set by a simulated call (0 when none, or when Redis is unreachable)."""

    def __init__(self, real: Callable[[], datetime], redis_url: str) -> None:
        self.real = real
        self.redis = Redis.from_url(redis_url, socket_timeout=0.3, socket_connect_timeout=0.3)
        self._last = 0.0

    def offset(self) -> timedelta:
        """The offset now in force."""
        try:
            raw = self.redis.get(OFFSET_KEY)
            self._last = float(raw) if raw is not None else 0.0
        except (RedisError, ValueError):
            pass
        return timedelta(seconds=self._last)

    def simulating(self) -> bool:
        """Whether a simulated call has moved the clock (an offset is set); False when Redis is unreachable."""
        try:
            return self.redis.get(OFFSET_KEY) is not None
        except RedisError:
            return False

    def reset(self) -> bool:
        """Back to the real clock for every process; whether an offset was set."""
        removed = bool(self.redis.delete(OFFSET_KEY))
        self._last = 0.0
        return removed

    def __call__(self) -> datetime:
        return self.real() + self.offset()

    def move_to(self, at: datetime) -> None:
        """Make ``at`` the present for every process (a simulated call came in at ``at``)."""
        seconds = (at - self.real()).total_seconds()
        if abs(seconds - self._last) < 1:
            return
        try:
            self.redis.set(OFFSET_KEY, f"{seconds:.3f}")
            self._last = seconds
        except RedisError:
            pass
