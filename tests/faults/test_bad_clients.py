"""Slow and oversized requests against the real stack (gunicorn as production runs it, PostgreSQL, Redis).

Slow clients: 50 connections trickling a webhook one byte every 2 s while Twilio's
signed calls come in; every call must still be answered well within Twilio's 15 s
(the p99 is printed; ``python -m bench.slow_clients`` is the benchmark). Oversized
bodies: 413 before the body is read, without the web process growing.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path

from bench.common import percentile
from bench.slow_clients import slow_client
from ivr.simulate import new_sid
from testing.stack import Caller, Stack, call_params
from tests.faults.conftest import new_number

TWILIO_TIMEOUT = 15.0


def web_pids(stack: Stack) -> list[int]:
    assert stack.web is not None
    master = stack.web.pid
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(p) for p in children]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_fifty_slow_clients_do_not_keep_signed_calls_waiting(stack: Stack, caller: Caller) -> None:
    port = int(stack.url.rsplit(":", 1)[1])
    stop: asyncio.Event | None = None
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    async def trickle() -> None:
        nonlocal stop
        stop = asyncio.Event()
        tasks = [asyncio.create_task(slow_client(port, stop)) for _ in range(50)]
        ready.set()
        await asyncio.gather(*tasks)

    thread = threading.Thread(target=lambda: loop.run_until_complete(trickle()), daemon=True)
    thread.start()
    ready.wait(5)
    time.sleep(3)  # every slow connection open and trickling
    try:
        seconds = []
        for _ in range(40):
            sid = new_sid("CA")
            ex = caller.signed("/twilio/voice", call_params(sid, new_number(), caller.account_sid))
            seconds.append(ex.seconds)
            assert ex.status == 200 and "<Say" in ex.body, ex
            time.sleep(0.1)
    finally:
        assert stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
    p99 = percentile(seconds, 99)
    print(f"50 slow clients: 40 signed calls, p50 {percentile(seconds, 50) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")
    assert max(seconds) < TWILIO_TIMEOUT


def _post_head(port: int, path: str, length: int | None) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: support.example.com\r\nX-Twilio-Signature: eA==\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\n{framing}\r\n\r\n".encode()
    )
    return sock


def _status(sock: socket.socket) -> int:
    head = b""
    while b"\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return int(head.split(b" ", 2)[1]) if head else 0


def test_an_8_mb_body_is_refused_413_before_it_is_sent_and_the_web_process_does_not_grow(stack: Stack) -> None:
    port = int(stack.url.rsplit(":", 1)[1])
    before = {pid: rss_kib(pid) for pid in web_pids(stack)}
    for path in ("/twilio/voice", "/twilio/voice/recorded", "/login", "/api/tickets"):
        started = time.perf_counter()
        with _post_head(port, path, 8 * 1024 * 1024) as sock:
            sock.sendall(b"a=" + b"x" * 65536)  # 64 KiB of the 8 MiB: the answer must not wait for the rest
            status = _status(sock)
            took = time.perf_counter() - started
        assert status == 413, path
        print(f"{path}: 8 MiB declared, 413 after {took * 1000:.0f} ms with 64 KiB sent")
    after = {pid: rss_kib(pid) for pid in web_pids(stack)}
    grown = max(after.get(pid, 0) - kib for pid, kib in before.items())
    print(f"web worker RSS growth: {grown} KiB")
    assert grown < 16 * 1024


def test_a_chunked_body_past_the_limit_is_refused(stack: Stack) -> None:
    port = int(stack.url.rsplit(":", 1)[1])
    piece = b"x" * 32768
    with _post_head(port, "/twilio/voice", None) as sock:
        try:
            for _ in range(64):  # 2 MiB in 32 KiB chunks, far past 64 KiB
                sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server may stop reading and close once it has refused
        assert _status(sock) in (403, 413)  # refused without parsing 2 MiB of form
