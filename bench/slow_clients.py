"""Signed calls while slow clients hold connections open: p50/p99/max and how many missed Twilio's 15 s.

    .venv/bin/python -m bench.slow_clients [--slow 50] [--calls 100] [--rate 5] [--workers 2]
                                           [--worker-class gevent|gthread|sync] [--threads 8]
                                           [--out bench/results/slow-clients.txt]

Starts gunicorn as production runs it (``gunicorn.conf.py``; ``--worker-class``
overrides it, to compare) against a fresh SQLite database and a private Redis,
opens ``--slow`` connections that each send a webhook one byte every 2 s, from
its first byte (a slow or hostile client), and offers ``--calls`` signed
``POST /twilio/voice`` requests at ``--rate`` per second meanwhile. Each call's
latency counts from its due time to the end of its answer; one that takes 15 s
or more is a call Twilio would have given up on.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, offer, percentile, start_web
from bench.webhooks import ACCOUNT, PUBLIC, TOKEN, Call, request_for
from testing.stack import RedisServer
from testing.twilio_server import free_port

TWILIO_TIMEOUT = 15.0


SLOW_REQUEST = (
    b"POST /twilio/voice HTTP/1.1\r\nHost: x\r\nX-Twilio-Signature: c2xvdw==\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 4000\r\n\r\n" + b"a" * 4000
)


async def slow_client(port: int, stop: asyncio.Event) -> None:
    """A webhook sent one byte every 2 s from its first byte (headers and body), until told to stop."""
    try:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for i in range(len(SLOW_REQUEST)):
            if stop.is_set():
                break
            writer.write(SLOW_REQUEST[i : i + 1])
            await writer.drain()
            try:
                await asyncio.wait_for(stop.wait(), 2.0)
            except TimeoutError:
                pass
        writer.close()
    except OSError:
        pass


async def run(port: int, slow: int, calls: int, rate: float) -> tuple[list[float], int]:
    stop = asyncio.Event()
    slow_tasks = [asyncio.create_task(slow_client(port, stop)) for _ in range(slow)]
    await asyncio.sleep(3.0)  # every slow connection open and trickling before the first call
    host = f"127.0.0.1:{port}"
    payloads = [
        request_for("incoming", Call("CA" + secrets.token_hex(16), f"+1805555{i:04d}", ""), host) for i in range(calls)
    ]
    result = await offer(port, payloads, rate, answered=b"<Say", timeout=60)
    stop.set()
    await asyncio.gather(*slow_tasks)
    return result


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--slow", type=int, default=50)
    p.add_argument("--calls", type=int, default=100)
    p.add_argument("--rate", type=float, default=5.0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--worker-class", default="", help="override gunicorn.conf.py's worker class")
    p.add_argument("--threads", type=int, default=0, help="gthread only: threads per worker")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "slow-clients.txt"))
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-slow-"))
    redis = RedisServer(tmp)
    redis.start()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}",
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_ACCOUNT_SID": ACCOUNT,
        "PUBLIC_BASE_URL": PUBLIC,
        "REDIS_URL": redis.url,
        "COORDINATOR_NUMBERS": "",
        "CALLER_RATE_LIMIT": "100000",
        "RECORDINGS_DIR": str(tmp / "rec"),
    }
    extra = ["--worker-class", args.worker_class] if args.worker_class else []
    extra += ["--threads", str(args.threads)] if args.threads else []
    port = free_port()
    server, _base = start_web(env, port, args.workers, extra)
    load = os.getloadavg()[0]
    try:
        latencies, errors = asyncio.run(run(port, args.slow, args.calls, args.rate))
    finally:
        server.terminate()
        server.wait(20)
        redis.stop()
    late = sum(t >= TWILIO_TIMEOUT for t in latencies)
    line = (
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} worker-class={args.worker_class or 'gunicorn.conf.py'}"
        f"{f' threads={args.threads}' if args.threads else ''} workers={args.workers} slow={args.slow} "
        f"calls={len(latencies)} at {args.rate:g}/s errors={errors} over-15s={late} "
        f"p50={percentile(latencies, 50) * 1000:.0f}ms p99={percentile(latencies, 99) * 1000:.0f}ms "
        f"max={max(latencies) * 1000:.0f}ms (SQLite, {os.cpu_count()} cores, load average {load:.1f} at start)"
    )
    print(line)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as f:
        f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
