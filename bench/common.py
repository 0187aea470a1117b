"""What the benchmarks share: a nearest-rank percentile and gunicorn started as the Procfile runs it."""

from __future__ import annotations

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
