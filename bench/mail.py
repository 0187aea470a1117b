"""Email benchmarks: email -> P3 ticket -> "new ticket created" email; webhook latency at a fixed rate; an IMAP backlog.

    .venv/bin/python -m bench.mail [--runs 20] [--rate 20 --seconds 30] [--backlog 1000] [--database-url URL]

The production shape on this machine: gunicorn (2 workers) serving the Mailgun webhook, an RQ worker
(``python -m workers.worker``), the sweeper, Redis, a real SMTP server (aiosmtpd, in this process) as
SMTP_URL and a private Dovecot for the IMAP backlog.

1. End to end: a signed Mailgun webhook with a new message; the clock stops when the SMTP server receives
   the confirmation whose In-Reply-To names it. Sequential runs.
2. Webhook latency: signed webhooks offered at ``--rate`` per second for ``--seconds`` (each latency counts
   from the moment its request was due); afterwards every message must be one ticket and one confirmation.
3. Backlog: ``--backlog`` messages appended to the Dovecot INBOX, then one poller pass stores them (its
   resident memory sampled after every batch) and the worker turns them into tickets.
Prints the figures and writes bench/results/mail.txt.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from pathlib import Path

import requests
from aiosmtpd.controller import Controller
from redis import Redis

from bench.common import ROOT, percentile, start_web
from testing.twilio_server import free_port

REDIS_URL = "redis://127.0.0.1:6379/12"
KEY = "key-bench-" + "7" * 24


class Inbox:
    """SMTP server handler: when each confirmation arrived, by the Message-ID it answers."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # noqa: N802
        message = BytesParser(policy=default).parsebytes(envelope.content)
        with self.lock:
            self.count += 1
            self.arrived[str(message.get("In-Reply-To", ""))] = time.perf_counter()
        return "250 OK"


RUN = uuid.uuid4().hex[:8]  # Message-IDs unique per run, so a database kept from an earlier run dedupes nothing


def raw_message(i: int, tag: str) -> tuple[str, bytes]:
    msg = EmailMessage()
    mid = f"<bench-{RUN}-{tag}-{i}@client{i % 50}.example>"
    msg["From"] = f"Person {i} <person{i}@client{i % 50}.example>"
    msg["To"] = "help@itech.example"
    msg["Subject"] = f"Benchmark request {tag} {i}: printer offline"
    msg["Message-ID"] = mid
    msg["Date"] = "Wed, 18 Nov 2026 10:00:00 -0800"
    msg.set_content("The printer in reception is offline again.\n" * 20)
    return mid, msg.as_bytes()


def signed(raw: bytes) -> dict[str, str]:
    ts, token = str(int(time.time())), os.urandom(16).hex()
    sig = hmac.new(KEY.encode(), (ts + token).encode(), hashlib.sha256).hexdigest()
    return {
        "timestamp": ts,
        "token": token,
        "signature": sig,
        "recipient": "help@itech.example",
        "body-mime": raw.decode(),
    }


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--rate", type=float, default=20.0)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--backlog", type=int, default=1000)
    p.add_argument("--database-url", default="")
    args = p.parse_args()
    load = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="bench-mail-"))
    db = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    Redis.from_url(REDIS_URL).flushdb()
    env = {
        **os.environ,
        "DATABASE_URL": db,
        "REDIS_URL": REDIS_URL,
        "SMTP_URL": f"smtp+insecure://127.0.0.1:{smtp.port}",
        "MAIL_FROM": "ITECH Solutions Support <help@itech.example>",
        "MAILGUN_SIGNING_KEY": KEY,
        "RECORDINGS_DIR": str(tmp / "rec"),
        "MAIL_CAP_PER_TICKET": "10",
    }
    web, base = start_web(env, free_port())
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", m], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for m in ("workers.worker", "workers.sweeper")
    ]
    lines = [
        f"# email benchmark, {os.cpu_count()} cores, load average {load[0]:.1f}/{load[1]:.1f} at start (machine shared"
        f" with other work), {db.split(':')[0]}, gunicorn (2 workers) + rq worker + sweeper + Redis + aiosmtpd, one machine",
        f"# command: python -m bench.mail --runs {args.runs} --rate {args.rate:g} --seconds {args.seconds:g} --backlog {args.backlog}",
    ]
    try:
        time.sleep(4)  # the worker loads the Whisper model at start-up
        session = requests.Session()
        # 1. end to end
        e2e: list[float] = []
        for i in range(args.runs + 2):
            mid, raw = raw_message(i, "e2e")
            started = time.perf_counter()
            session.post(base + "/mail/inbound/mailgun", data=signed(raw), timeout=10).raise_for_status()
            deadline = time.monotonic() + 30
            while mid not in inbox.arrived and time.monotonic() < deadline:
                time.sleep(0.002)
            if mid not in inbox.arrived:
                raise SystemExit(f"no confirmation for {mid} within 30 s")
            if i >= 2:  # two warm-up runs
                e2e.append((inbox.arrived[mid] - started) * 1000)
            time.sleep(0.2)
        lines.append(
            f"email -> P3 ticket -> 'new ticket created' at the SMTP server: p50={statistics.median(e2e):.0f}ms "
            f"p99={percentile(e2e, 99):.0f}ms max={max(e2e):.0f}ms ({len(e2e)} runs)"
        )
        print(lines[-1], flush=True)
        # 2. webhook latency at a fixed rate: the web tier alone (worker paused), then with the worker
        #    parsing and sending at the same time on the same cores
        for phase, paused in (("worker paused", True), ("worker running", False)):
            lines.append(webhook_phase(base, args, inbox, procs[0], paused, phase))
            print(lines[-1], flush=True)
        # 3. IMAP backlog
        if args.backlog:
            lines += backlog(env, args.backlog, inbox)
            print("\n".join(lines[-2:]), flush=True)
    finally:
        for proc in (*procs, web):
            proc.terminate()
        for proc in (*procs, web):
            proc.wait(10)
        smtp.stop()
        Redis.from_url(REDIS_URL).flushdb()
    print("\n".join(lines))
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    name = "mail" + ("" if db.startswith("sqlite") else "-postgresql")
    (results / f"{name}.txt").write_text("\n".join(lines) + "\n")
    return 0


def webhook_phase(
    base: str, args: argparse.Namespace, inbox: Inbox, worker: subprocess.Popen, paused: bool, phase: str
) -> str:  # type: ignore[type-arg]
    """Signed webhooks at ``args.rate``/s for ``args.seconds``; latency from each request's due time."""
    import signal

    n = int(args.rate * args.seconds)
    bodies = [signed(raw_message(i, phase.split()[1])[1]) for i in range(n)]
    latencies: list[float] = [0.0] * n
    statuses: list[int] = [0] * n
    local = threading.local()
    if paused:
        worker.send_signal(signal.SIGSTOP)
    t0 = time.perf_counter() + 0.5

    def fire(i: int) -> None:
        due = t0 + i / args.rate
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        s = getattr(local, "s", None) or requests.Session()
        local.s = s
        r = s.post(base + "/mail/inbound/mailgun", data=bodies[i], timeout=10)
        latencies[i] = (time.perf_counter() - due) * 1000
        statuses[i] = r.status_code

    before = inbox.count
    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(fire, range(n)))
    finally:
        if paused:
            worker.send_signal(signal.SIGCONT)
    ok = sum(1 for s in statuses if s == 200)
    deadline = time.monotonic() + 300
    while inbox.count - before < n and time.monotonic() < deadline:
        time.sleep(0.1)
    return (
        f"POST /mail/inbound/mailgun at {args.rate:g}/s for {args.seconds:g} s ({n} messages, {phase}): "
        f"p50={statistics.median(latencies):.1f}ms p99={percentile(latencies, 99):.1f}ms max={max(latencies):.1f}ms, "
        f"{ok} answered 200; confirmations received afterwards {inbox.count - before} of {n}"
    )


def backlog(env: dict[str, str], count: int, inbox: Inbox) -> list[str]:
    """Append ``count`` messages to a private Dovecot, store them with one poller pass, wait for their tickets."""
    from imapclient import IMAPClient
    from sqlalchemy import func, select

    from inbox import imap
    from runtime import build_runtime
    from settings import load_settings
    from testing.dovecot import Dovecot
    from ticketing.models import InboundMail
    from workers import mail_poller

    server = Dovecot().start()
    try:
        with IMAPClient("127.0.0.1", port=server.port, ssl=False) as client:
            client.login("help", "secret")
            for i in range(count):
                client.append("INBOX", raw_message(i, "imap")[1])
        settings = load_settings({**env, "IMAP_URL": server.url})
        runtime = build_runtime(settings)
        client, target, selected = imap.connect(settings)
        samples: list[int] = []
        start_rss = rss_kib()
        started = time.perf_counter()
        before = inbox.count

        import inbox.intake as intake_module

        real_store = intake_module.store_raw
        stored = [0]

        def counting_store(*a, **kw):  # type: ignore[no-untyped-def]
            stored[0] += 1
            if stored[0] % 100 == 0:
                samples.append(rss_kib())
            return real_store(*a, **kw)

        intake_module.store_raw = counting_store  # type: ignore[assignment]
        try:
            with client:
                new = mail_poller.poll_once(runtime, client, target, selected)
        finally:
            intake_module.store_raw = real_store  # type: ignore[assignment]
        polled = time.perf_counter() - started
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            with runtime.sessions() as s:
                left = s.scalar(
                    select(func.count(InboundMail.id)).where(InboundMail.via == "imap", InboundMail.state == "stored")
                )
            if not left:
                break
            time.sleep(0.5)
        ingested = time.perf_counter() - started
        while inbox.count - before < count and time.monotonic() < deadline:
            time.sleep(0.2)
        confirmed = time.perf_counter() - started
        with runtime.sessions() as s:
            states = dict(
                s.execute(
                    select(InboundMail.state, func.count(InboundMail.id))
                    .where(InboundMail.via == "imap")
                    .group_by(InboundMail.state)
                ).all()
            )
        runtime.close()
        return [
            f"IMAP backlog of {count} (Dovecot): poller stored {new} in {polled:.1f} s (batches of {imap.BATCH});"
            f" poller RSS {start_rss // 1024} MiB at start, every 100 stored: {', '.join(str(x // 1024) for x in samples)} MiB",
            f"IMAP backlog: all parsed by the worker {ingested:.1f} s after the poll began; states {states};"
            f" all {inbox.count - before} confirmations at the SMTP server {confirmed:.1f} s after it began",
        ]
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
