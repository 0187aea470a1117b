"""Outbound webhook delivery throughput: three endpoints, one of them failing.

    .venv/bin/python -m bench.webhooks_out [--tickets 100]

On a fresh SQLite database and a private redis-server: three real HTTP receivers on this machine (two answer
200, one answers 500), each subscribed to every event; ``--tickets`` tickets are opened and re-prioritised (two
events each). Then sweeper passes, the outbox hand-over and a real RQ worker (in this process) run until the
healthy endpoints have every delivery. Prints the time, deliveries per second, and each endpoint's counts.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from rq import SimpleWorker
from sqlalchemy import func, select

import runtime as rt
from integrations import webhooks
from integrations.webhook_models import WebhookDelivery
from runtime import build_runtime
from settings import Settings
from testing.database import migrate
from testing.stack import RedisServer
from ticketing import lifecycle
from ticketing.db import transaction
from workers.dispatch import dispatch_pending
from workers.sweeper import webhook_pass


def receiver(status: int) -> tuple[ThreadingHTTPServer, list[int]]:
    """A local HTTP server answering ``status`` to every POST; the list counts what it got."""
    got: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server name
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            got.append(1)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, got


def main() -> None:
    """Print the figures."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--tickets", type=int, default=100)
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-webhooks-out-"))
    redis = RedisServer(tmp)
    redis.start()
    servers = [receiver(200), receiver(200), receiver(500)]
    try:
        url = f"sqlite:///{tmp / 'webhooks.db'}"
        migrate(url)
        settings = Settings(
            database_url=url, redis_url=redis.url, recordings_dir=tmp / "rec", dispatch_after_response=False
        ).with_overrides(dev_mode=True)
        runtime = build_runtime(settings)
        rt.install(runtime)
        endpoints = []
        with transaction(runtime.sessions) as s:
            for server, _got in servers:
                hook = f"http://127.0.0.1:{server.server_address[1]}/hook"
                endpoint = webhooks.add_endpoint(s, hook, list(webhooks.EVENTS), now=runtime.now(), dev_mode=True)
                endpoints.append(endpoint.id)
        with transaction(runtime.sessions) as s:
            for i in range(args.tickets):
                t = lifecycle.open_ticket(
                    s, policy=runtime.policy, now=runtime.now(), priority="P3", source="phone", actor="bench",
                    summary=f"request {i}", notify=False,
                )  # fmt: skip
                lifecycle.change_priority(s, t, "P2", reason="bench", actor="bench", now=runtime.now(),
                                          policy=runtime.policy)  # fmt: skip
        healthy = endpoints[:2]
        started = time.perf_counter()
        passes = 0
        while True:
            passes += 1
            webhook_pass(runtime)
            dispatch_pending(runtime, limit=1000)
            SimpleWorker(runtime.queues(), connection=runtime.redis).work(burst=True)
            with runtime.sessions() as s:
                left = s.scalar(
                    select(func.count())
                    .select_from(WebhookDelivery)
                    .where(WebhookDelivery.endpoint_id.in_(healthy), WebhookDelivery.state != "delivered")
                )
            if not left or passes > 1000:
                break
        seconds = time.perf_counter() - started
        with runtime.sessions() as s:
            rows = s.execute(
                select(
                    WebhookDelivery.endpoint_id, WebhookDelivery.state, func.count(), func.sum(WebhookDelivery.attempts)
                )
                .group_by(WebhookDelivery.endpoint_id, WebhookDelivery.state)
                .order_by(WebhookDelivery.endpoint_id)
            ).all()
        delivered = sum(n for _e, state, n, _a in rows if state == "delivered")
        print(f"{args.tickets} tickets, 2 events each, 3 endpoints (one answers 500); {passes} sweeper passes")
        print(
            f"healthy endpoints served in {seconds:.2f} s: {delivered} deliveries, {delivered / seconds:.1f} per second"
        )
        for endpoint_id, state, n, attempts in rows:
            print(f"  endpoint {endpoint_id}: {n} {state}, {attempts} attempts")
        for (_server, got), endpoint_id in zip(servers, endpoints, strict=True):
            print(f"  receiver of endpoint {endpoint_id}: {len(got)} requests")
    finally:
        rt.install(None)
        for server, _got in servers:
            server.shutdown()
        redis.stop()


if __name__ == "__main__":
    main()
