"""The ticket API with many open tickets: bytes per page and per walk, and a flood of wrong tokens.

    .venv/bin/python -m bench.api [--tickets 1000] [--wrong 300]

Opens ``--tickets`` tickets on a fresh SQLite database (in one transaction, through the ticket
service), then, in-process through the WSGI app: the default page's size, a walk of every page at
the largest page size, and ``--wrong`` requests with a wrong token from one address (how many
were answered 401 before the rate limit answered 429), against a private redis-server.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from runtime import build_runtime
from settings import Settings
from testing.database import migrate
from testing.stack import RedisServer
from ticketing import accounts, lifecycle
from ticketing.db import transaction
from web.api import MAX_PAGE_SIZE
from web.app import create_app

PRIORITIES = ("P1", "P2", "P3", "P4", "P5")


def main() -> None:
    """Print the figures."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--tickets", type=int, default=1000)
    p.add_argument("--wrong", type=int, default=300)
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-api-"))
    redis = RedisServer(tmp)
    redis.start()
    try:
        url = f"sqlite:///{tmp / 'api.db'}"
        migrate(url)
        runtime = build_runtime(
            Settings(database_url=url, redis_url=redis.url, recordings_dir=tmp / "rec", dispatch_after_response=False)
        )
        start = runtime.now() - timedelta(hours=2)
        with transaction(runtime.sessions) as s:
            for i in range(args.tickets):
                lifecycle.open_ticket(
                    s, policy=runtime.policy, now=start + timedelta(seconds=i), priority=PRIORITIES[i % 5],
                    source="phone", actor="bench", summary=f"request {i}", notify=False,
                )  # fmt: skip
            _row, token = accounts.create_api_token(s, "bench", now=runtime.now(), created_by="bench")
        client = create_app(runtime=runtime).test_client()
        auth = {"Authorization": f"Bearer {token}"}
        first = client.get("/api/tickets", headers=auth)
        print(f"default page: {first.get_json()['count']} tickets, {len(first.data) / 1024:.1f} KiB")
        link: str | None = f"/api/tickets?limit={MAX_PAGE_SIZE}"
        pages, total, largest, started = 0, 0, 0, time.perf_counter()
        while link is not None:
            answer = client.get(link, headers=auth)
            pages, total, largest = pages + 1, total + len(answer.data), max(largest, len(answer.data))
            link = answer.get_json()["next"]
        print(
            f"walk at limit={MAX_PAGE_SIZE}: {pages} pages, {total / 1024 / 1024:.2f} MiB in all, "
            f"largest page {largest / 1024:.0f} KiB, {time.perf_counter() - started:.2f} s"
        )
        started = time.perf_counter()
        wrong = {"Authorization": "Bearer sl_wrong"}
        statuses = [client.get("/api/tickets", headers=wrong).status_code for _ in range(args.wrong)]
        print(
            f"{args.wrong} wrong tokens in {time.perf_counter() - started:.2f} s from one address: "
            f"{statuses.count(401)} answered 401, {statuses.count(429)} answered 429"
        )
        runtime.close()
    finally:
        redis.stop()


if __name__ == "__main__":
    main()
