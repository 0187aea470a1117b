"""Integration fixtures: for webhooks a runtime in development mode (http to this machine), real HTTP receivers and
the worker; for the PSA bridge the ConnectWise stand-in, running, and the adapter pointed at it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from rq import SimpleWorker

import runtime as rt
from integrations import webhooks
from integrations.connectwise import ConnectWise, ConnectWiseConfig, config_from
from runtime import Runtime
from testing.connectwise_standin import ConnectWiseStandIn, running
from ticketing import lifecycle, outbox
from ticketing.db import transaction
from workers.dispatch import dispatch_pending
from workers.sweeper import webhook_pass


@dataclass
class Received:
    """One request a receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A real HTTP server on a free port that records every POST and answers ``answer()`` (a status code)."""

    url: str
    got: list[Received] = field(default_factory=list)
    answer: Callable[[Received], int] = lambda _r: 200
    lock: threading.Lock = field(default_factory=threading.Lock)

    def types(self) -> list[str]:
        import json

        return [json.loads(r.body)["type"] for r in self.got]


def _serve() -> Iterator[Receiver]:
    receiver = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server name
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            request = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            with receiver.lock:
                receiver.got.append(request)
            status = receiver.answer(request)
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"x" * 100000)  # more than anyone should read

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """One receiver."""
    yield from _serve()


@pytest.fixture
def other_receiver() -> Iterator[Receiver]:
    """A second receiver."""
    yield from _serve()


@pytest.fixture
def hooks(runtime: Runtime, redis_url: str) -> Iterator[Runtime]:
    """The runtime in development mode, installed for the worker's jobs."""
    runtime.settings = runtime.settings.with_overrides(dev_mode=True)
    rt.install(runtime)
    yield runtime
    rt.install(None)


def run(runtime: Runtime) -> None:
    """One sweeper pass for webhooks, the hand-over to Redis, and the real worker until the queues are empty."""
    webhook_pass(runtime)
    dispatch_pending(runtime)
    SimpleWorker(runtime.queues(), connection=runtime.redis).work(burst=True)


def add(runtime: Runtime, url: str, events: list[str] | None = None, **kwargs: Any) -> tuple[int, str]:
    """Register an endpoint; returns its id and secret."""
    with transaction(runtime.sessions) as s:
        endpoint = webhooks.add_endpoint(
            s, url, events or list(webhooks.EVENTS), now=runtime.now(), dev_mode=runtime.settings.dev_mode, **kwargs
        )
        return endpoint.id, endpoint.secret


def open_ticket(runtime: Runtime, **kwargs: Any) -> int:
    """A P3 phone ticket from a caller's number; returns its number."""
    kwargs.setdefault("priority", "P3")
    with transaction(runtime.sessions) as s:
        t = lifecycle.open_ticket(
            s,
            policy=runtime.policy,
            now=runtime.now(),
            source="phone",
            actor="tests",
            caller_number="+18055550123",
            summary="Printer down",
            notify=False,
            **kwargs,
        )
        return int(t.number or 0)


def change(runtime: Runtime, number: int, priority: str) -> None:
    """Change a ticket's priority."""
    with transaction(runtime.sessions) as s:
        t = lifecycle.get_ticket(s, number)
        lifecycle.change_priority(
            s, t, priority, reason="tests", actor="tests", now=runtime.now(), policy=runtime.policy
        )


CREDENTIALS = {
    "company": "itechsol",
    "public_key": "pubK3yAbCdEf1234",
    "private_key": "pr1vK3ySecretXyZ9876",
    "client_id": "5c3e1b7a-0d2f-4e6b-9a8c-7f1e2d3c4b5a",
}
BOARD = 7


@dataclass
class Bridge:
    """The stand-in, its URL and the adapter."""

    standin: ConnectWiseStandIn
    config: ConnectWiseConfig
    psa: ConnectWise


@pytest.fixture
def connectwise(runtime: Runtime) -> Iterator[Bridge]:
    """A ConnectWise stand-in on a free port and the adapter configured for it; the runtime installed."""
    standin = ConnectWiseStandIn(**CREDENTIALS, board_id=BOARD)
    standin.clock = runtime.now
    with running(standin) as url:
        config = config_from(
            {
                **CREDENTIALS,
                "site": url,
                "board_id": BOARD,
                "companies": {"Acme Dental": 250},
                "default_company_id": 19297,
                "priorities": {"P1": 1, "P2": 2, "P3": 3, "P4": 4, "P5": 5},
                "callback_secret": "cb-Secret-4f9a8e7d",
            }
        )
        rt.install(runtime)
        try:
            yield Bridge(standin, config, ConnectWise(config))
        finally:
            rt.install(None)


__all__ = ["BOARD", "CREDENTIALS", "Bridge", "Receiver", "add", "change", "open_ticket", "outbox", "run"]
