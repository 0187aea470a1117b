"""What the benchmarks share: a nearest-rank percentile, gunicorn started as the Procfile runs it, and an
open-loop sender of prepared requests at a fixed rate."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


async def offer(
    port: int, payloads: list[bytes], rate: float, *, answered: bytes, timeout: float | None = None
) -> tuple[list[float], int]:
    """Send ``payloads`` at ``rate``/s; each latency (s) runs from the request's due time to the end of its response.

    A response counts as an error unless it is a 200 holding ``answered``; ``timeout`` bounds the wait for it.
    """
    latencies: list[float] = []
    errors = 0

    async def one(data: bytes, due: float) -> None:
        nonlocal errors
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(data)
            response = await asyncio.wait_for(reader.read(), timeout)
            writer.close()
            ok = response.startswith(b"HTTP/1.1 200") and answered in response
        except OSError:  # TimeoutError included
            ok = False
        latencies.append(time.perf_counter() - due)
        errors += not ok

    start = time.perf_counter() + 0.05
    tasks = []
    for i, data in enumerate(payloads):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(data, due)))
    await asyncio.gather(*tasks)
    return latencies, errors


def start_web(
    env: Mapping[str, str], port: int, workers: int = 2, extra: list[str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """Migrate the database, start gunicorn on ``port`` and wait for /healthz; returns the process and base URL.

    gunicorn reads the repository's ``gunicorn.conf.py`` as in production; ``extra`` options override it.
    """
    subprocess.run(
        [str(ROOT / ".venv/bin/alembic"), "upgrade", "head"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    command = [str(ROOT / ".venv/bin/gunicorn"), "--config", str(ROOT / "gunicorn.conf.py"), "wsgi:app", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
               "--log-level", "warning", *(extra or [])]  # fmt: skip
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if requests.get(base + "/healthz", timeout=1).ok:
                break
        except requests.RequestException:
            time.sleep(0.1)
    return server, base
