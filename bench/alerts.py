"""Monitoring alert → first page: a critical Events API v2 trigger until the page request reaches Twilio.

    .venv/bin/python -m bench.alerts [--runs 30] [--busy-runs 5 --busy-seconds 60] [--database-url URL] [--no-prism]

The production shape on this machine, as ``bench.paging``: gunicorn (2 workers), the Procfile's ``worker``
(Whisper model loaded) and ``pager`` (``--paging-only``), a private redis-server and the Twilio REST test
server. Each run posts a critical trigger with a fresh dedup key, as a monitoring tool would; the clock
stops when the test server receives the first page request (SMS or call). ``--busy-runs``: as many runs
again, each sent while the worker is transcribing a ``--busy-seconds`` voicemail. Target: p99 ≤ 2 s.
Prints p50/p99/max and appends to bench/results/alerts.txt.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from redis import Redis

from bench.common import ROOT, percentile, start_web
from bench.paging import ONCALL, PUBLIC, busy_worker, is_page, long_voicemail, still_transcribing
from testing.twilio_server import PrismMock, PrismUnavailable, TwilioTestServer, free_port
from ticketing import alerts
from ticketing.db import make_engine, make_session_factory, transaction
from ticketing.models import Client

ENQUEUE = "/integrations/events/v2/enqueue"


def routing_key(database_url: str) -> str:
    """A client and a routing key for the benchmark's monitoring tool."""
    engine = make_engine(database_url)
    try:
        with transaction(make_session_factory(engine)) as s:
            client = Client(name=f"Bench Client {secrets.token_hex(3)}")
            s.add(client)
            s.flush()
            from datetime import UTC, datetime

            _, key = alerts.issue_key(s, client=client.id, name="bench", actor="bench", now=datetime.now(UTC))
        return key
    finally:
        engine.dispose()


def one_run(base: str, twilio: TwilioTestServer, session: requests.Session, key: str, wait: float = 10.0) -> float:
    """One critical alert; returns the ms from sending it to Twilio receiving the first page request."""
    seen = {id(r) for r in twilio.requests}
    event = {
        "routing_key": key,
        "event_action": "trigger",
        "dedup_key": secrets.token_hex(16),
        "payload": {"summary": "Core switch unreachable", "source": "bench-monitor", "severity": "critical"},
    }
    started = time.perf_counter()
    response = session.post(base + ENQUEUE, json=event, timeout=10)
    assert response.status_code == 202, response.text
    twilio.wait_for(lambda r: id(r) not in seen and is_page(r), timeout=wait)
    elapsed = (time.perf_counter() - started) * 1000
    # The tool sees the problem fixed: resolving ends the escalation, so no run's repeat pages load the next.
    done = {"routing_key": key, "event_action": "resolve", "dedup_key": event["dedup_key"]}
    assert session.post(base + ENQUEUE, json=done, timeout=10).status_code == 202
    return elapsed


def main() -> int:
    """Run the benchmark and append to bench/results/alerts.txt."""
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--pause", type=float, default=0.2, help="seconds between runs")
    p.add_argument("--database-url", default="")
    p.add_argument("--no-prism", action="store_true", help="do not validate requests against Twilio's spec")
    p.add_argument("--busy-runs", type=int, default=5, help="runs with the worker transcribing a long voicemail")
    p.add_argument("--busy-seconds", type=float, default=60.0, help="length of that voicemail")
    args = p.parse_args()
    from testing.stack import RedisServer

    load = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="bench-alerts-"))
    db = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    oncall = tmp / "oncall.toml"
    oncall.write_text(ONCALL)
    prism: PrismMock | None = None
    if not args.no_prism:
        try:
            prism = PrismMock().start()
        except PrismUnavailable as error:
            print(f"Prism unavailable ({error}); running without it", file=sys.stderr)
    twilio = TwilioTestServer(prism_url=prism.url if prism else None).start()
    redis_server = RedisServer(tmp)
    redis_server.start()
    redis = Redis.from_url(redis_server.url)
    wav = long_voicemail(args.busy_seconds, tmp) if args.busy_runs else b""
    env = {
        **os.environ,
        "DATABASE_URL": db,
        "REDIS_URL": redis_server.url,
        "CONFIRMATION_SMS": "false",
        "PUBLIC_BASE_URL": PUBLIC,
        "ONCALL_FILE": str(oncall),
        "TWILIO_API_BASE_URL": twilio.base_url,
        "TWILIO_ACCOUNT_SID": twilio.account_sid,
        "TWILIO_AUTH_TOKEN": twilio.auth_token,
        "CALLER_RATE_LIMIT": "100000",
        "ALERT_RATE_LIMIT": "100000/minute",
        "RECORDINGS_DIR": str(tmp / "rec"),
    }
    web, base = start_web(env, free_port())
    key = routing_key(db)
    command = [sys.executable, "-m", "workers.worker"]
    worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pager = subprocess.Popen(
        [*command, "--paging-only"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 90
    while not any(k for k in redis.keys("supportline:worker-alive:*") if b'"model": null' not in (redis.get(k) or b"")):
        if time.monotonic() > deadline:
            raise AssertionError("the worker never loaded its model")
        time.sleep(0.2)
    lines: list[str] = []
    try:
        session = requests.Session()
        for _ in range(args.warmup):
            one_run(base, twilio, session, key)
        quiet: list[float] = []
        for _ in range(args.runs):
            time.sleep(args.pause)
            quiet.append(one_run(base, twilio, session, key))
        busy: list[float] = []
        overlapped = 0
        for i in range(args.busy_runs):
            recording = busy_worker(base, twilio, twilio, wav, i, redis)
            time.sleep(0.5)  # well into the transcription
            busy.append(one_run(base, twilio, session, key, wait=600))
            overlapped += still_transcribing(redis, recording)
            deadline = time.monotonic() + 600
            while still_transcribing(redis, recording) and time.monotonic() < deadline:
                time.sleep(0.2)
        lines = [
            f"# critical alert → first page, {os.cpu_count()} cores (load average {load:.1f} at start),"
            f" {db.split(':')[0]}, gunicorn (2 workers) + worker + pager + private redis-server,"
            f" Twilio test server {'validated by Prism' if prism else 'without Prism'}; all on one machine",
            f"# from posting the Events API v2 trigger to Twilio receiving the page; {args.runs} runs after"
            f" {args.warmup} warm-up; busy: {args.busy_runs} runs while the worker transcribes a"
            f" {args.busy_seconds:g} s voicemail ({overlapped} overlapped it); target p99 ≤ 2000 ms",
            f"# command: python -m bench.alerts --runs {args.runs} --busy-runs {args.busy_runs}"
            f" --busy-seconds {args.busy_seconds:g}{' --no-prism' if args.no_prism else ''}",
        ]
        for label, values in (("first page, worker idle", quiet), ("first page, worker busy", busy)):
            if values:
                lines.append(
                    f"{label:<26} p50={statistics.median(values):.0f}ms p99={percentile(values, 99):.0f}ms "
                    f"max={max(values):.0f}ms mean={statistics.fmean(values):.0f}ms"
                )
        print("\n".join(lines), flush=True)
    finally:
        for process in (worker, pager, web):
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:  # a worker mid-transcription finishes its job first
                process.kill()
                process.wait(10)
        twilio.stop()
        if prism is not None:
            prism.stop()
        redis_server.stop()
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    with (results / "alerts.txt").open("a") as out:  # timestamped blocks, newest last
        out.write(f"\n## {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n" + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
