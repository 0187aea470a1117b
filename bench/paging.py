"""P1 paging latency: caller presses 2 (the P1 ticket is created) → first page request reaches Twilio.

    .venv/bin/python -m bench.paging [--runs 50] [--database-url URL] [--no-prism]

Runs the production shape on this machine: gunicorn (2 workers) serving the
webhooks, an RQ worker with its scheduler (``python -m workers.worker``), Redis,
and the local Twilio REST test server (validated by Prism unless --no-prism) in
place of api.twilio.com. Each run posts a signed incoming call and then the
menu key 2, which creates the P1 ticket and requests the page; the clock stops
when the test server receives the first page request (SMS or call) and again
when it has both. Prints p50/p99/max and writes bench/results/paging.txt.
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
from twilio.request_validator import RequestValidator

from bench.common import ROOT, percentile, start_web
from tests.twilio_server import PrismMock, PrismUnavailable, RecordedRequest, TwilioTestServer, free_port

PUBLIC = "https://support.example.com"
REDIS_URL = "redis://127.0.0.1:6379/13"
ENGINEER = "+18055550181"
ONCALL = f"""
[people.eng]
name = "Bench Engineer"
mobile = "{ENGINEER}"

[teams.ert]
members = ["eng"]

[schedules.after-hours]
handoff = "08:00"
start = 2026-01-05
members = ["eng"]

[policies.business-hours]
fallback = "eng"
steps = [{{ team = "ert" }}]

[policies.after-hours]
fallback = "eng"
steps = [{{ schedule = "after-hours" }}]
"""


def is_page(request: RecordedRequest) -> bool:
    """A page request: an SMS or a call to the on-call engineer."""
    return (
        request.method == "POST"
        and request.path.endswith(("/Messages.json", "/Calls.json"))
        and request.param("To") == ENGINEER
    )


def one_run(
    base: str, twilio: TwilioTestServer, session: requests.Session, validator: RequestValidator, i: int
) -> tuple[float, float]:
    """One P1 call; returns (first page, both channels) latency in ms from the press-2 webhook."""
    call = "CA" + secrets.token_hex(16)
    params = {
        "CallSid": call,
        "AccountSid": twilio.account_sid,
        "From": f"+1805555{2000 + i:04d}",
        "To": "+18055922500",
        "CallStatus": "in-progress",
        "Direction": "inbound",
    }

    def post(path: str, extra: dict[str, str]) -> None:
        data = {**params, **extra}
        signature = validator.compute_signature(PUBLIC + path, data)
        response = session.post(base + path, data=data, headers={"X-Twilio-Signature": signature}, timeout=10)
        response.raise_for_status()

    post("/twilio/voice", {})
    seen = {id(r) for r in twilio.requests}
    started = time.perf_counter()
    post("/twilio/voice/menu?attempt=1", {"Digits": "2"})
    twilio.wait_for(lambda r: id(r) not in seen and is_page(r), timeout=10)
    first = (time.perf_counter() - started) * 1000
    deadline = time.monotonic() + 10
    while sum(1 for r in twilio.requests if id(r) not in seen and is_page(r)) < 2:
        if time.monotonic() > deadline:
            raise AssertionError("the second page channel never arrived")
        time.sleep(0.001)
    both = (time.perf_counter() - started) * 1000
    return first, both


def main() -> int:
    """Run the benchmark and write bench/results/paging.txt."""
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--pause", type=float, default=0.2, help="seconds between runs")
    p.add_argument("--database-url", default="")
    p.add_argument("--no-prism", action="store_true", help="do not validate requests against Twilio's spec")
    args = p.parse_args()
    load = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="bench-paging-"))
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
    Redis.from_url(REDIS_URL).flushdb()
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": db,
        "REDIS_URL": REDIS_URL,
        "PUBLIC_BASE_URL": PUBLIC,
        "ONCALL_FILE": str(oncall),
        "TWILIO_API_BASE_URL": twilio.base_url,
        "TWILIO_ACCOUNT_SID": twilio.account_sid,
        "TWILIO_AUTH_TOKEN": twilio.auth_token,
        "CALLER_RATE_LIMIT": "100000",
        "RECORDINGS_DIR": str(tmp / "rec"),
    }
    web, base = start_web(env, port)
    command = [sys.executable, "-m", "workers.worker"]
    worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lines: list[str] = []
    try:
        session = requests.Session()
        validator = RequestValidator(twilio.auth_token)
        for i in range(args.warmup):
            one_run(base, twilio, session, validator, i)
        firsts: list[float] = []
        boths: list[float] = []
        for i in range(args.runs):
            time.sleep(args.pause)
            first, both = one_run(base, twilio, session, validator, args.warmup + i)
            firsts.append(first)
            boths.append(both)
        backend = db.split(":")[0]
        lines = [
            f"# P1 paging latency, {os.cpu_count()} cores (load average {load:.1f} at start), {backend},"
            " gunicorn (2 workers) + rq worker --with-scheduler + Redis,"
            f" Twilio test server {'validated by Prism' if prism else 'without Prism'}; all on one machine",
            f"# from the press-2 webhook (P1 ticket created, page requested) to Twilio receiving the page; {args.runs} runs after {args.warmup} warm-up",
            "# worker: python -m workers.worker (jobs run in the worker process, model loaded at start-up)",
            f"# command: python -m bench.paging --runs {args.runs}{' --no-prism' if args.no_prism else ''}",
        ]
        for label, values in (("first page request (SMS or call)", firsts), ("both channels requested", boths)):
            lines.append(
                f"{label:<34} p50={statistics.median(values):.0f}ms p99={percentile(values, 99):.0f}ms "
                f"max={max(values):.0f}ms mean={statistics.fmean(values):.0f}ms"
            )
        print("\n".join(lines), flush=True)
    finally:
        worker.terminate()
        web.terminate()
        worker.wait(10)
        web.wait(10)
        twilio.stop()
        if prism is not None:
            prism.stop()
        Redis.from_url(REDIS_URL).flushdb()
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    name = "paging" + ("" if db.startswith("sqlite") else "-postgresql")
    (results / f"{name}.txt").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
