"""Load test: N concurrent simulated calls end to end, each leaving a real voicemail.

    .venv/bin/python -m bench.load [--calls 50] [--database postgresql|sqlite] [--rq-workers 1]
                                   [--speech-seconds 10] [--pace 0] [--prism] [--out bench/results/load.txt]

Starts the production shape on this machine (loopback only): gunicorn (2
workers), ``python -m workers.worker`` (one or more), ``python -m workers.sweeper``,
a private Redis, PostgreSQL (a fresh schema of database ``test``) or SQLite, the
Twilio REST test server (confirmation SMS and the recordings' media).
Every call is placed at once from its own number by the call simulator (signed
as Twilio signs), takes the voicemail route and leaves the same spoken message
(espeak-ng + sox, 8 kHz, generated once). Reports: tickets per call (must be
exactly one each), webhook latency p50/p99/max per endpoint, the time until
every transcription is done (queue drain) and the confirmation SMS sent. The
numbers are appended as one block to the results file.

Bounded: at most --calls calls (default 50) and --timeout seconds (default 300)
for the drain; every process is stopped at the end, also on failure.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import zlib
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import requests
from sqlalchemy import func, select

from bench.common import percentile
from ivr.simulate import CallPlan, CallResult
from testing.stack import (
    PUBLIC,
    ROOT,
    Caller,
    Database,
    Exchange,
    RedisServer,
    Stack,
    build_env,
    make_voicemail,
    postgres_available,
    spoken_ticket,
    wait_until,
)
from testing.twilio_server import PrismMock, TwilioTestServer, free_port
from ticketing.models import AuditEntry

SPEECH = (
    "Hi, this is Jordan from Harbor Veterinary.",
    "The front desk computer will not print invoices.",
    "Please call me back at 805 555 0123. Thank you.",
    "Also, the card reader at the second register shows a network error since this morning.",
    "We restarted it twice and checked the cable, but nothing changed.",
    "Our office manager says the backup light on the server has been amber since yesterday.",
    "We close at six today and open again at eight tomorrow morning.",
    "If I do not pick up, please ask for Sam at the front desk.",
)
ENDPOINTS = ("/twilio/voice", "/twilio/voice/menu", "/twilio/voice/recording-status", "/twilio/voice/recorded")


def voicemail(seconds: float) -> bytes:
    """A spoken message of about ``seconds`` (as many sentences of SPEECH as it takes, none repeated); cached.

    Distinct sentences, not one said over and over: Whisper decodes repeated text much more
    slowly (its repetition checks make it decode again), which no real voicemail would show.
    """
    cache = ROOT / "var" / "load-audio"
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"voicemail-{seconds:g}s-{zlib.crc32(' '.join(SPEECH).encode()):08x}.wav"
    if not path.exists():
        for count in range(1, len(SPEECH) + 1):
            audio = make_voicemail(" ".join(SPEECH[:count]), path)
            if len(audio) / 16000 >= seconds - 1:  # 8 kHz, 16 bit
                break
    return path.read_bytes()


def endpoint(ex: Exchange) -> str:
    """The webhook's path, without its query."""
    return ex.url.split("?", 1)[0]


def main(argv: list[str] | None = None) -> int:
    """Run the load test and write the results."""
    p = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=50, help="simultaneous calls (at most 200)")
    p.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    p.add_argument("--rq-workers", type=int, default=1, help="worker processes")
    p.add_argument("--web-workers", type=int, default=2, help="gunicorn workers")
    p.add_argument("--speech-seconds", type=float, default=10, help="length of the voicemail")
    p.add_argument(
        "--pace",
        type=float,
        default=0.0,
        help="mean seconds between a call's webhooks, jittered +-50%% (0: back to back, a burst)",
    )
    p.add_argument("--ramp", type=float, default=0.0, help="spread the call starts over this many seconds (0: at once)")
    p.add_argument("--prism", action="store_true", help="validate the SMS requests with Prism (costs CPU)")
    p.add_argument("--timeout", type=float, default=300, help="seconds to wait for the queue to drain")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "load.txt"))
    args = p.parse_args(argv)
    calls = max(1, min(args.calls, 200))
    if args.database == "postgresql" and not postgres_available():
        print("PostgreSQL at 127.0.0.1:5432 is not available; use --database sqlite", file=sys.stderr)
        return 2

    audio = voicemail(args.speech_seconds)
    tmp = Path(tempfile.mkdtemp(prefix="bench-load-"))
    load_at_start = os.getloadavg()[0]
    prism = PrismMock().start() if args.prism else None
    twilio = TwilioTestServer(prism_url=prism.url if prism else None).start()
    media = twilio  # it serves the recordings too: credentials go only to TWILIO_API_BASE_URL's origin
    redis = RedisServer(tmp)
    db: Database | None = None
    stack: Stack | None = None
    lines: list[str] = []
    try:
        redis.start()
        db = Database(args.database, tmp, f"load_{os.getpid()}")
        env = build_env(
            tmp=tmp,
            database_url=db.stack_url,
            redis_url=redis.url,
            twilio={
                "TWILIO_API_BASE_URL": twilio.base_url,
                "TWILIO_ACCOUNT_SID": twilio.account_sid,
                "TWILIO_AUTH_TOKEN": twilio.auth_token,
            },
            extra={"CALLER_RATE_LIMIT": "1000", "LOG_FORMAT": "text"},
        )
        stack = Stack(tmp=tmp, db=db, redis=redis, env=env, port=free_port())
        stack.start(web_workers=args.web_workers)
        for _ in range(args.rq_workers - 1):
            stack.start_worker(scheduler=False)  # one scheduler per queue: the first worker's

        http = requests.Session()
        http.mount("http://", requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=calls + 8))
        caller = Caller(
            PUBLIC,
            server_base_url=stack.url,
            account_sid=twilio.account_sid,
            auth_token=twilio.auth_token,
            media=media,
            http=http,
        )
        if args.pace:
            original = caller.post
            jitter = random.Random(7)

            def paced(url: str, params: dict[str, str], **kw: object) -> str:
                time.sleep(args.pace * jitter.uniform(0.5, 1.5))  # the caller listening, keying, speaking
                return original(url, params, **kw)  # type: ignore[arg-type]

            caller.post = paced  # type: ignore[method-assign]
        # Warm both gunicorn workers (imports, connection pools) outside the measurement.
        for i in range(4):
            caller.call(f"+1805557{9000 + i:04d}", CallPlan(keys=["1"], audio=None))
        warm = set(e.call_sid for e in caller.exchanges)

        numbers = [f"+1805557{i:04d}" for i in range(calls)]
        gate = threading.Barrier(calls)
        errors: list[str] = []

        def one(number: str) -> CallResult | None:
            gate.wait()
            if args.ramp:
                time.sleep(args.ramp * numbers.index(number) / calls)
            try:
                return caller.call(number, CallPlan(keys=["1"], audio=audio))
            except Exception as exc:  # noqa: BLE001 - count it, keep the others going
                errors.append(f"{number}: {exc!r}")
                return None

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=calls) as pool:
            results = list(pool.map(one, numbers))
        calls_done = time.perf_counter() - started
        placed = [r for r in results if r is not None]

        def transcribed() -> int:
            tickets = stack.tickets_of_calls([r.call_sid for r in placed])
            return sum(1 for t in tickets if t.transcription_state in ("done", "no_speech", "failed"))

        wait_until(lambda: transcribed() == len(placed), args.timeout, "every transcription", every=0.5)
        drained = time.perf_counter() - started
        wait_until(lambda: len([m for m in twilio.messages() if m.status == 201]) >= len(placed), 60, "every SMS")
        sms_done = time.perf_counter() - started

        tickets = stack.tickets_of_calls([r.call_sid for r in placed])
        per_call: dict[str, int] = defaultdict(int)
        for t in tickets:
            per_call[t.call_sid or ""] += 1
        spoken_ok = sum(
            1
            for r in placed
            if (t := next((t for t in tickets if t.call_sid == r.call_sid), None)) is not None
            and spoken_ticket(caller.exchanges_of(r.call_sid)) == t.number
        )
        states = defaultdict(int)
        for t in tickets:
            states[t.transcription_state] += 1
        exactly_one = sum(1 for r in placed if per_call[r.call_sid] == 1)
        sms = defaultdict(int)
        for m in twilio.messages():
            if m.status == 201:
                sms[m.param("To")] += 1

        with stack.session() as s:
            first, last = s.execute(
                select(
                    func.min(AuditEntry.at).filter(AuditEntry.action == "recording attached"),
                    func.max(AuditEntry.at).filter(AuditEntry.action == "transcribed"),
                ).where(AuditEntry.ticket_id.in_([t.id for t in tickets]))
            ).one()
        throughput = len(placed) / max((last - first).total_seconds(), 1e-9) * 60

        measured = [e for e in caller.exchanges if e.call_sid not in warm]
        by_endpoint: dict[str, list[Exchange]] = defaultdict(list)
        for e in measured:
            by_endpoint[endpoint(e)].append(e)
        bad = [e for e in measured if e.status >= 500]
        audio_seconds = len(audio) / 16000

        backend = args.database
        lines = [
            f"# load test, {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, {os.cpu_count()} cores (load average "
            f"{load_at_start:.1f} at start), {backend}; gunicorn ({args.web_workers} worker(s)) + {args.rq_workers} "
            f"rq worker(s) (faster-whisper, default model) + sweeper + Redis; Twilio test server "
            f"{'validated by Prism' if prism else 'without Prism'}; load generator on the same machine",
            f"# {calls} calls, each a {audio_seconds:.0f} s voicemail, "
            + (f"started over {args.ramp:g} s" if args.ramp else "all started at once")
            + (
                f", {args.pace:g} s (+-50%) between a call's webhooks"
                if args.pace
                else ", webhooks back to back (a burst: a real call spends ~30 s between its first and last webhook)"
            ),
            f"# command: python -m bench.load --calls {calls} --database {backend} --rq-workers {args.rq_workers}"
            f" --speech-seconds {args.speech_seconds:g}"
            + (f" --pace {args.pace:g}" if args.pace else "")
            + (f" --ramp {args.ramp:g}" if args.ramp else "")
            + (f" --web-workers {args.web_workers}" if args.web_workers != 2 else "")
            + (" --prism" if args.prism else ""),
            f"calls: {len(placed)}/{calls} completed, {len(errors)} failed; exactly one ticket: {exactly_one}/{calls}; "
            f"ticket number read back: {spoken_ok}/{calls}; tickets in all: {len(tickets)}; HTTP 5xx: {len(bad)}",
            f"transcriptions: {dict(states)}; confirmation SMS: {sum(sms.values())} to {len(sms)} numbers "
            f"(max {max(sms.values(), default=0)} per number)",
            f"all calls ended {calls_done:.1f} s after the first began; queue drained (every transcript on its "
            f"ticket) at {drained:.1f} s, {drained - calls_done:.1f} s after the last call ended; SMS done at "
            f"{sms_done:.1f} s",
            f"transcription throughput: {throughput:.1f} voicemails/min ({throughput * audio_seconds / 60:.1f} s of "
            f"audio per second) from the first recording attached to the last transcript",
        ]
        for name in [*ENDPOINTS, *sorted(set(by_endpoint) - set(ENDPOINTS))]:
            if name not in by_endpoint:
                continue
            ms = [e.seconds * 1000 for e in by_endpoint[name]]
            lines.append(
                f"{name:<34} n={len(ms):<4} p50={statistics.median(ms):6.1f}ms p99={percentile(ms, 99):7.1f}ms "
                f"max={max(ms):7.1f}ms  (target p99 < 100 ms: {'met' if percentile(ms, 99) < 100 else 'NOT met'})"
            )
        all_ms = [e.seconds * 1000 for e in measured]
        lines.append(
            f"{'all webhooks':<34} n={len(all_ms):<4} p50={statistics.median(all_ms):6.1f}ms "
            f"p99={percentile(all_ms, 99):7.1f}ms max={max(all_ms):7.1f}ms"
        )
        for line in errors[:5]:
            lines.append(f"error: {line}")
        print("\n".join(lines), flush=True)
        ok = exactly_one == calls and not bad and not errors
    except BaseException:
        if stack is not None:
            print(stack.logs(), file=sys.stderr)
        raise
    finally:
        if stack is not None:
            stack.stop()
        redis.stop()
        twilio.stop()
        if prism is not None:
            prism.stop()
        if db is not None:
            db.drop()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as f:
        f.write("\n".join(lines) + "\n\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
