"""Webhook latency under gunicorn: p50/p99 and requests/second at a fixed offered rate.

    .venv/bin/python -m bench.webhooks [--rate 100] [--seconds 20] [--database-url URL]

Starts gunicorn (2 workers) on a free port against a fresh database, then offers
signed Twilio requests at a fixed rate (open loop, so a slow server cannot slow
the offered load) to POST /twilio/voice (incoming call) and POST
/twilio/voice/recorded (recording complete: creates a ticket). Prints the
figures and writes them to bench/results/webhooks.txt.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "b" * 32
ACCOUNT = "AC" + "1" * 32
PUBLIC = "https://support.example.com"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def run(endpoint: str, base: str, rate: int, seconds: int) -> dict[str, float]:
    """Offer ``rate`` requests/second for ``seconds``; return latency figures in ms."""
    validator = RequestValidator(TOKEN)
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=64, pool_maxsize=64)
    session.mount("http://", adapter)
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()

    def one(i: int) -> None:
        nonlocal errors
        call = "CA" + secrets.token_hex(16)
        params = {"CallSid": call, "AccountSid": ACCOUNT, "From": f"+1805555{i % 10000:04d}", "To": "+18055922500", "CallStatus": "in-progress"}
        if endpoint == "recorded":
            rec = "RE" + secrets.token_hex(16)
            params.update(RecordingSid=rec, RecordingUrl=f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{rec}", RecordingDuration="42", Digits="#")
        path = "/twilio/voice" if endpoint == "voice" else "/twilio/voice/recorded"
        sig = validator.compute_signature(PUBLIC + path, params)
        t0 = time.perf_counter()
        try:
            r = session.post(base + path, data=params, headers={"X-Twilio-Signature": sig}, timeout=10)
            ok = r.status_code == 200 and "<Response>" in r.text
        except requests.RequestException:
            ok = False
        elapsed = (time.perf_counter() - t0) * 1000
        with lock:
            latencies.append(elapsed)
            if not ok:
                errors += 1

    total = rate * seconds
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=64) as pool:
        for i in range(total):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one, i)
    wall = time.perf_counter() - start
    return {
        "requests": total,
        "errors": errors,
        "rps": total / wall,
        "p50": statistics.median(latencies),
        "p99": percentile(latencies, 99),
        "max": max(latencies),
    }


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rate", default="50,100", help="offered requests/second, comma separated")
    p.add_argument("--seconds", type=int, default=20)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--database-url", default="")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    db = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    port = free_port()
    env = {**os.environ, "DATABASE_URL": db, "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_ACCOUNT_SID": ACCOUNT,
           "PUBLIC_BASE_URL": PUBLIC, "REDIS_URL": "redis://127.0.0.1:6379/14", "CONFIRMATION_SMS": "false",
           "CALLER_RATE_LIMIT": "100000", "RECORDINGS_DIR": str(tmp / "rec")}
    subprocess.run([str(ROOT / ".venv/bin/alembic"), "upgrade", "head"], cwd=ROOT, env=env, check=True, capture_output=True)
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/gunicorn"), "wsgi:app", "--bind", f"127.0.0.1:{port}", "--workers", str(args.workers), "--log-level", "warning"],
        cwd=ROOT, env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if requests.get(base + "/healthz", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        run("voice", base, 20, 2)  # warm up
        rates = [int(r) for r in str(args.rate).split(",")]
        load = os.getloadavg()[0]
        lines = [f"# webhook latency under gunicorn ({args.workers} workers), {os.cpu_count()} cores (load average {load:.1f} at start), {db.split(':')[0]}, load generator on the same machine",
                 f"# command: python -m bench.webhooks --rate {args.rate} --seconds {args.seconds}"]
        for rate in rates:
            for endpoint in ("voice", "recorded"):
                r = run(endpoint, base, rate, args.seconds)
                lines.append(
                    f"offered {rate:>3}/s  {'/twilio/voice' if endpoint == 'voice' else '/twilio/voice/recorded':<24} requests={r['requests']:.0f} "
                    f"errors={r['errors']:.0f} rps={r['rps']:.1f} p50={r['p50']:.1f}ms p99={r['p99']:.1f}ms max={r['max']:.1f}ms"
                )
                print(lines[-1], flush=True)
    finally:
        server.terminate()
        server.wait(10)
    out = "\n".join(lines)
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    name = "webhooks.txt" if db.startswith("sqlite") else "webhooks-postgresql.txt"
    (results / name).write_text(out + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
