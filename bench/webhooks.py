"""Webhook latency under gunicorn: p50/p99 and requests/second at a fixed offered rate.

    .venv/bin/python -m bench.webhooks [--rate 50,100] [--seconds 15] [--workers 2] [--database-url URL]
                                       [--out bench/results/webhooks.txt]

Starts gunicorn on a free port against a fresh database and offers signed
Twilio requests at a fixed rate (open loop: every request has a due time, and
its latency counts from that due time, so neither a slow server nor a late
load generator can hide a delay). The requests are built and signed before
the clock starts; one asyncio loop sends them, so the load generator takes
about a millisecond of CPU per request from the cores it shares with the server.

For each rate, the phases follow a voicemail call in order:

1. ``POST /twilio/voice``: the call comes in (greeting and menu).
2. ``POST /twilio/voice/menu``: the caller stays on the line and reaches the
   voicemail prompt; the call's ticket is opened here.
3. ``POST /twilio/voice/recorded``: the recording is complete; the ticket gets
   it, the transcription and confirmation jobs are queued (and handed to Redis
   after the response).
4. ``POST /twilio/voice/recorded``, for calls whose earlier webhooks never
   arrived: the callback opens the ticket itself as well.

Prints the figures, with the CPU the server and the load generator used per
request, and appends them as one block to the results file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from sqlalchemy.engine import make_url
from twilio.request_validator import RequestValidator

from bench.common import ROOT, offer, percentile, start_web
from testing.stack import RedisServer
from testing.twilio_server import free_port

TOKEN = "b" * 32
ACCOUNT = "AC" + "1" * 32
PUBLIC = "https://support.example.com"
SUPPORT_NUMBER = "+18055922500"

PHASES = {
    "incoming": ("/twilio/voice", "POST /twilio/voice (greeting, menu)"),
    "menu": ("/twilio/voice/menu", "POST /twilio/voice/menu (voicemail prompt: opens the ticket)"),
    "recorded": ("/twilio/voice/recorded", "POST /twilio/voice/recorded (attaches the recording, queues jobs)"),
    "recorded-cold": (
        "/twilio/voice/recorded",
        "POST /twilio/voice/recorded, no earlier webhook (opens the ticket too)",
    ),
}


@dataclass
class Call:
    sid: str
    caller: str
    recording_sid: str


def signed_request(path: str, params: dict[str, str], host: str) -> bytes:
    """The raw HTTP request Twilio would send, signed as Twilio signs it."""
    body = urlencode(params).encode()
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + path, params)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nX-Twilio-Signature: {signature}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def request_for(phase: str, call: Call, host: str) -> bytes:
    params = {
        "CallSid": call.sid,
        "AccountSid": ACCOUNT,
        "From": call.caller,
        "To": SUPPORT_NUMBER,
        "CallStatus": "in-progress",
    }
    if phase == "menu":
        params["Digits"] = "1"  # no coordinator configured: voicemail, in and out of business hours
    if phase.startswith("recorded"):
        url = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{call.recording_sid}"
        params.update(RecordingSid=call.recording_sid, RecordingUrl=url, RecordingDuration="42", Digits="#")
    return signed_request(PHASES[phase][0], params, host)


def new_calls(n: int) -> list[Call]:
    return [
        Call("CA" + secrets.token_hex(16), f"+1805555{i % 10000:04d}", "RE" + secrets.token_hex(16)) for i in range(n)
    ]


def cpu_seconds(pids: list[int]) -> float:
    """User+system CPU of these processes so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def server_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children")
    return [master, *(int(p) for p in children.read_text().split())] if children.exists() else [master]


def measure(port: int, master: int, phase: str, calls: list[Call], rate: int) -> str:
    host = f"127.0.0.1:{port}"
    payloads = [request_for(phase, c, host) for c in calls]
    pids = server_pids(master)
    server0, gen0 = cpu_seconds(pids), time.process_time()
    t0 = time.perf_counter()
    seconds, errors = asyncio.run(offer(port, payloads, rate, answered=b"<Response>"))
    latencies = [x * 1000 for x in seconds]
    wall = time.perf_counter() - t0
    server_ms = (cpu_seconds(pids) - server0) * 1000 / len(payloads)
    gen_ms = (time.process_time() - gen0) * 1000 / len(payloads)
    return (
        f"{rate:>4}/s  {phase:<14} requests={len(payloads)} errors={errors} rps={len(payloads) / wall:.1f} "
        f"p50={percentile(latencies, 50):.1f}ms p99={percentile(latencies, 99):.1f}ms max={max(latencies):.1f}ms "
        f"server-cpu={server_ms:.1f}ms/req generator-cpu={gen_ms:.1f}ms/req"
    )


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rate", default="50,100", help="offered requests/second, comma separated")
    p.add_argument("--seconds", type=int, default=15)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--database-url", default="")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "webhooks.txt"))
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    db = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    port = free_port()
    redis = RedisServer(tmp)  # a private redis-server: the run's jobs can reach no other Redis user
    redis.start()
    env = {
        **os.environ,
        "DATABASE_URL": db,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_ACCOUNT_SID": ACCOUNT,
        "PUBLIC_BASE_URL": PUBLIC,
        "REDIS_URL": redis.url,
        "CONFIRMATION_SMS": "true",
        "COORDINATOR_NUMBERS": "",
        "CALLER_RATE_LIMIT": "100000",
        "RECORDINGS_DIR": str(tmp / "rec"),
    }
    server, base = start_web(env, port, args.workers)
    rates = [int(r) for r in str(args.rate).split(",")]
    load = os.getloadavg()[0]
    lines = [
        f"# webhook latency, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, gunicorn ({args.workers} workers as gunicorn.conf.py runs them), "
        f"{os.cpu_count()} cores, {db.split(':')[0]}, "
        f"load generator on the same cores; load average {load:.1f} at start",
        f"# command: python -m bench.webhooks --rate {args.rate} --seconds {args.seconds} --workers {args.workers}"
        + (
            f" --database-url {make_url(args.database_url).render_as_string(hide_password=True)}"
            if args.database_url
            else ""
        ),
        "# phases: " + "; ".join(f"{name} = {label}" for name, (_, label) in PHASES.items()),
    ]
    for line in lines:
        print(line, flush=True)
    try:
        warm = new_calls(40)  # a few calls through every phase first: both workers load and compile what they use
        for phase in PHASES:
            measure(port, server.pid, phase, warm if phase != "recorded-cold" else new_calls(40), 20)
        for rate in rates:
            calls = new_calls(rate * args.seconds)
            for phase in ("incoming", "menu", "recorded"):
                lines.append(measure(port, server.pid, phase, calls, rate))
                print(lines[-1], flush=True)
            lines.append(measure(port, server.pid, "recorded-cold", new_calls(rate * args.seconds), rate))
            print(lines[-1], flush=True)
    finally:
        server.terminate()
        server.wait(10)
        redis.stop()  # with the jobs queued by the run: no worker takes them here
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as f:
        f.write(("\n" if out.stat().st_size else "") + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
