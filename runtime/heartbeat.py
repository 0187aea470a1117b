"""Worker heartbeats in Redis: a worker marks itself alive, so a job whose worker was killed outright is told
from a slow one (by the sweeper, the mail intake and readiness)."""

from __future__ import annotations

import json
import logging
import threading

from redis import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
ALIVE_KEY = "supportline:worker-alive:{}"


def alive_key(worker_name: str) -> str:
    """The Redis key that exists while the named worker is alive."""
    return ALIVE_KEY.format(worker_name)


def is_alive(redis: Redis, worker_name: str | None) -> bool:
    """True while the named worker keeps its heartbeat (unknown names count as alive)."""
    if not worker_name:
        return True
    return bool(redis.exists(alive_key(worker_name)))


def live_models(redis: Redis) -> list[str]:
    """The transcription models that live workers have loaded (for readiness checks)."""
    models = []
    for key in redis.scan_iter(match=ALIVE_KEY.format("*"), count=100):
        raw = redis.get(key)
        try:
            info = json.loads(raw) if raw else {}
        except ValueError:
            info = {}
        if info.get("model"):
            models.append(str(info["model"]))
    return models


def start_heartbeat(redis: Redis, worker_name: str, every: float, model: str | None = None) -> threading.Event:
    """Refresh this worker's liveness key (and loaded model) every ``every`` seconds; set the event to stop."""
    stop = threading.Event()
    ttl = max(1, int(every * 3))
    value = json.dumps({"model": model})

    def beat() -> None:
        while not stop.is_set():
            try:
                redis.set(alive_key(worker_name), value, ex=ttl)
            except RedisError as exc:
                log.warning("worker heartbeat failed: %s", type(exc).__name__)
            stop.wait(every)

    threading.Thread(target=beat, name="worker-heartbeat", daemon=True).start()
    return stop
