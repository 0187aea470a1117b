"""Rate limits of the JSON API, counted in Redis so every web process shares them.

Two limits, each a moving window (the ``limits`` library's Lua scripts: one atomic step per request):
requests per token (``API_RATE_LIMIT``), and failed authentications per client address
(``API_AUTH_FAILURE_LIMIT``: a wrong, revoked or missing token). An address over the second limit is
refused before its token is even looked at, so guessing tokens costs a window per few guesses and a
valid token found mid-flood is not confirmed. The address is the one the app already trusts:
``request.remote_addr`` after ProxyFix (``TRUSTED_PROXY_HOPS``).

When Redis cannot be reached the API still answers (logged): an integration syncing tickets matters
more than the limit for the seconds Redis is away, and the web tier never hangs on it (0.5 s timeouts,
met once per request: after the first failure the request's other counts are skipped).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from flask import g
from limits import RateLimitItem, parse
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError

from runtime import Runtime

log = logging.getLogger(__name__)
PER_TOKEN = "api-token"
AUTH_FAILURES = "api-auth-failures"


@dataclass(frozen=True)
class Verdict:
    """Whether a request may go on, and what its window has left."""

    allowed: bool
    limit: RateLimitItem
    remaining: int
    reset_in: int  # whole seconds until the window has room again (at least 1 when refused)

    @property
    def described(self) -> str:
        """'300 per 1 minute'."""
        return str(self.limit)


def _limiter(runtime: Runtime) -> MovingWindowRateLimiter:
    """The runtime's limiter, on its Redis connection pool (and so its timeouts)."""
    limiter = runtime.cache.get("api-limiter")
    if limiter is None:
        storage = RedisStorage(runtime.settings.redis_url, connection_pool=runtime.redis.connection_pool)
        limiter = runtime.cache["api-limiter"] = MovingWindowRateLimiter(storage)
    return limiter  # type: ignore[no-any-return]


def _verdict(limiter: MovingWindowRateLimiter, item: RateLimitItem, allowed: bool, *key: str) -> Verdict:
    stats = limiter.get_window_stats(item, *key)
    wait = math.ceil(stats.reset_time - time.time())
    reset_in = max(0, wait) if allowed else max(1, wait)
    return Verdict(allowed=allowed, limit=item, remaining=stats.remaining, reset_in=reset_in)


def _unlimited(item: RateLimitItem) -> Verdict:
    return Verdict(allowed=True, limit=item, remaining=item.amount, reset_in=0)


def _unavailable(exc: RedisError | None = None) -> bool:
    """True once Redis has failed during this request (recording ``exc``, the failure, when given)."""
    if exc is not None:
        log.warning("API rate limits not counted (Redis unavailable): %s", exc)
        g.api_limits_unavailable = True
    return bool(g.get("api_limits_unavailable"))


def address_refused(runtime: Runtime, address: str) -> Verdict | None:
    """A verdict refusing ``address`` while it is over the failed-authentication limit, else None."""
    item = parse(runtime.settings.api_auth_failure_limit)
    if _unavailable():
        return None
    try:
        limiter = _limiter(runtime)
        if limiter.test(item, AUTH_FAILURES, address):
            return None
        return _verdict(limiter, item, False, AUTH_FAILURES, address)
    except RedisError as exc:
        _unavailable(exc)
        return None


def authentication_failed(runtime: Runtime, address: str) -> Verdict:
    """Count a failed authentication from ``address``; refused once it goes over the limit."""
    return _hit(runtime, parse(runtime.settings.api_auth_failure_limit), AUTH_FAILURES, address)


def token_request(runtime: Runtime, token_key: str) -> Verdict:
    """Count a request made with a token (``token_key`` names it, never the token itself)."""
    return _hit(runtime, parse(runtime.settings.api_rate_limit), PER_TOKEN, token_key)


def _hit(runtime: Runtime, item: RateLimitItem, *key: str) -> Verdict:
    """Count one more against ``item`` for ``key``; while Redis is unavailable nothing is counted or refused."""
    if _unavailable():
        return _unlimited(item)
    try:
        limiter = _limiter(runtime)
        return _verdict(limiter, item, limiter.hit(item, *key), *key)
    except RedisError as exc:
        _unavailable(exc)
        return _unlimited(item)
