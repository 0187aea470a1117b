"""P1 paging latency: caller presses 2 (the P1 ticket is created) → first page request reaches Twilio.

    .venv/bin/python -m bench.paging [--runs 50] [--busy-runs 20 --busy-seconds 200] [--database-url URL] [--no-prism]

Runs the production shape on this machine: gunicorn (2 workers) serving the
webhooks, the Procfile's ``worker`` (RQ with its scheduler, the Whisper model
loaded) and ``pager`` (``--paging-only``), a private redis-server, and the local
Twilio REST test server (validated by Prism unless --no-prism) in place of
api.twilio.com. Each run posts a signed incoming call and then the menu key 2,
which creates the P1 ticket and requests the page; the clock stops when the test
server receives the first page request (SMS or call) and again when it has both.

``--busy-runs``: as many runs again, each pressed while the worker is transcribing
a ``--busy-seconds`` voicemail (espeak-ng speech; the run starts once the
transcription job has started and the figure counts only if it was still running
when the page arrived). ``--no-pager`` leaves the pager process out (the worker
serves the paging queue first, between jobs). Prints p50/p99/max and writes
bench/results/paging.txt.
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
from testing.twilio_server import PrismMock, PrismUnavailable, RecordedRequest, TwilioTestServer, free_port

PUBLIC = "https://support.example.com"
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
    base: str,
    twilio: TwilioTestServer,
    session: requests.Session,
    validator: RequestValidator,
    i: int,
    wait: float = 10.0,
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
    twilio.wait_for(lambda r: id(r) not in seen and is_page(r), timeout=wait)
    first = (time.perf_counter() - started) * 1000
    deadline = time.monotonic() + wait
    while sum(1 for r in twilio.requests if id(r) not in seen and is_page(r)) < 2:
        if time.monotonic() > deadline:
            raise AssertionError("the second page channel never arrived")
        time.sleep(0.001)
    both = (time.perf_counter() - started) * 1000
    return first, both


def long_voicemail(seconds: float, tmp: Path) -> bytes:
    """A spoken message of about ``seconds``: distinct sentences read by espeak-ng (cached under var/)."""
    from testing.stack import make_voicemail

    cache = ROOT / "var" / "bench-audio" / f"busy-{seconds:g}s.wav"
    if cache.exists():
        return cache.read_bytes()
    cache.parent.mkdir(parents=True, exist_ok=True)
    rooms = ["front desk", "server room", "second register", "back office", "lab", "reception", "warehouse"]
    words = " ".join(
        f"Item {n}: the computer in the {rooms[n % len(rooms)]} number {n + 3} shows error {100 + 7 * n} since "
        f"{(n % 12) + 1} o'clock, and restarting it {n % 4 + 1} times did not help."
        for n in range(int(seconds / 5) + 5)
    )
    audio = make_voicemail(words, tmp / "busy.wav")
    length = len(audio) / 16000  # 8 kHz, 16 bit
    if length > seconds * 1.1:  # trim to the length asked for (whole samples, WAV header rewritten)
        import wave

        with wave.open(str(tmp / "busy.wav"), "rb") as src:
            params, frames = src.getparams(), src.readframes(int(8000 * seconds))
        with wave.open(str(cache), "wb") as dst:
            dst.setparams(params)
            dst.writeframes(frames)
    else:
        cache.write_bytes(audio)
    return cache.read_bytes()


def busy_worker(base: str, twilio: TwilioTestServer, media: object, wav: bytes, i: int, redis: Redis) -> str:
    """Leave a long voicemail and wait until the worker has started transcribing it; returns its recording SID."""
    from ivr.simulate import CallPlan, TwilioSimulator

    sim = TwilioSimulator(
        PUBLIC, server_base_url=base, account_sid=twilio.account_sid, auth_token=twilio.auth_token, media=media
    )  # type: ignore[arg-type]
    result = sim.call(f"+1805555{5000 + i:04d}", CallPlan(keys=["1"], audio=wav))
    assert result.recording_sid is not None, result.lines
    job = f"transcribe-{result.recording_sid}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if still_transcribing(redis, result.recording_sid):
            return result.recording_sid
        time.sleep(0.01)
    from rq.job import Job

    outcome = Job.fetch(job, connection=redis).latest_result()
    raise AssertionError(f"the transcription never ran as a long job: {outcome and outcome.return_value}")


def still_transcribing(redis: Redis, recording_sid: str) -> bool:
    """True while the voicemail's transcription job is still running."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job, JobStatus

    try:
        return Job.fetch(f"transcribe-{recording_sid}", connection=redis).get_status() == JobStatus.STARTED
    except NoSuchJobError:
        return False


def main() -> int:
    """Run the benchmark and write bench/results/paging.txt."""
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--pause", type=float, default=0.2, help="seconds between runs")
    p.add_argument("--database-url", default="")
    p.add_argument("--no-prism", action="store_true", help="do not validate requests against Twilio's spec")
    p.add_argument("--busy-runs", type=int, default=0, help="runs with the worker transcribing a long voicemail")
    p.add_argument("--busy-seconds", type=float, default=200.0, help="length of that voicemail")
    p.add_argument("--no-pager", action="store_true", help="no pager process: the worker alone serves both queues")
    args = p.parse_args()
    from testing.stack import RedisServer

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
    redis_server = RedisServer(tmp)  # a private redis-server: never a shared one's database
    redis_server.start()
    redis = Redis.from_url(redis_server.url)
    media = twilio  # it serves the recordings too: credentials go only to TWILIO_API_BASE_URL's origin
    wav = b""
    if args.busy_runs:
        wav = long_voicemail(args.busy_seconds, tmp)
    port = free_port()
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
        "RECORDINGS_DIR": str(tmp / "rec"),
    }
    web, base = start_web(env, port)
    command = [sys.executable, "-m", "workers.worker"]
    worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pager = None
    if not args.no_pager:
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
        busy: list[float] = []
        overlapped = 0
        for i in range(args.busy_runs):
            recording = busy_worker(base, twilio, media, wav, i, redis)
            time.sleep(0.5)  # well into the transcription
            first, _both = one_run(base, twilio, session, validator, 1000 + i, wait=600)
            busy.append(first)
            if still_transcribing(redis, recording):
                overlapped += 1
            deadline = time.monotonic() + 600
            while still_transcribing(redis, recording) and time.monotonic() < deadline:
                time.sleep(0.2)
        backend = db.split(":")[0]
        layout = "worker only (serves the paging queue first)" if args.no_pager else "worker + pager (--paging-only)"
        lines = [
            f"# P1 paging latency, {os.cpu_count()} cores (load average {load:.1f} at start), {backend},"
            f" gunicorn (2 workers) + {layout} + private redis-server,"
            f" Twilio test server {'validated by Prism' if prism else 'without Prism'}; all on one machine",
            f"# from the press-2 webhook (P1 ticket created, page requested) to Twilio receiving the page; {args.runs} runs after {args.warmup} warm-up",
            "# worker: python -m workers.worker (jobs run in the worker process, model loaded at start-up)",
            f"# command: python -m bench.paging --runs {args.runs}{' --no-prism' if args.no_prism else ''}"
            + (f" --busy-runs {args.busy_runs} --busy-seconds {args.busy_seconds:g}" if args.busy_runs else "")
            + (" --no-pager" if args.no_pager else ""),
        ]
        series = [("first page request (SMS or call)", firsts), ("both channels requested", boths)]
        if args.busy_runs:
            lines.append(
                f"# busy: each press-2 while the worker transcribes a {len(wav) / 16000:.0f} s espeak-ng voicemail;"
                f" in {overlapped} of {args.busy_runs} runs the page went out before that transcription ended"
            )
            if busy:
                series.append(("first page, worker transcribing", busy))
        for label, values in series:
            lines.append(
                f"{label:<34} p50={statistics.median(values):.0f}ms p99={percentile(values, 99):.0f}ms "
                f"max={max(values):.0f}ms mean={statistics.fmean(values):.0f}ms"
            )
        print("\n".join(lines), flush=True)
    finally:
        for process in (worker, pager, web):
            if process is not None:
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
    name = "paging" + ("" if db.startswith("sqlite") else "-postgresql")
    with (results / f"{name}.txt").open("a") as out:  # timestamped blocks, newest last
        out.write(f"\n## {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n" + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
