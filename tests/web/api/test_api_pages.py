"""Cursor pagination of the ticket list: bounded pages, each open ticket exactly once, even while tickets arrive."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from runtime import Runtime
from ticketing import lifecycle
from ticketing.db import transaction
from web.api import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

PRIORITIES = ("P1", "P2", "P3", "P4", "P5")


def bearer(token: str) -> dict[str, str]:
    """The Authorization header of a token."""
    return {"Authorization": f"Bearer {token}"}


def open_many(runtime: Runtime, count: int, *, first: int = 0) -> list[int]:
    """Open ``count`` tickets in one transaction, at only ten distinct times: many share priority and time,
    so only the ticket id tells them apart in the queue's order."""
    start = runtime.now() - timedelta(hours=2)
    with transaction(runtime.sessions) as s:
        tickets = [
            lifecycle.open_ticket(
                s,
                policy=runtime.policy,
                now=start + timedelta(minutes=(i % 10) * 7),
                priority=PRIORITIES[i % len(PRIORITIES)],
                source="phone",
                actor="tests",
                summary=f"request {first + i}",
                notify=False,
            )
            for i in range(count)
        ]
        return [int(t.number or 0) for t in tickets]


def page(client: FlaskClient, token: str, url: str) -> dict[str, Any]:
    """One page of the list, checked for its shape and its Link header."""
    response = client.get(url, headers=bearer(token))
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    assert body["count"] == len(body["tickets"])
    if body["next"] is None:
        assert body["next_cursor"] is None and "Link" not in response.headers
    else:
        assert response.headers["Link"] == f'<{body["next"]}>; rel="next"'
        assert f"cursor={body['next_cursor']}" in body["next"]
    return body


def test_a_thousand_tickets_are_walked_page_by_page_each_exactly_once_while_tickets_arrive(
    app: Flask, runtime: Runtime, api_token: str
) -> None:
    existing = open_many(runtime, 1000)
    client = app.test_client()
    seen: list[int] = []
    order: list[tuple[str, str, int]] = []
    arrived: list[int] = []
    mark: tuple[str, str, int] | None = None
    url: str | None = f"/api/tickets?limit={MAX_PAGE_SIZE}"
    pages = 0
    while url is not None:
        body = page(client, api_token, url)
        assert len(body["tickets"]) <= MAX_PAGE_SIZE
        seen += [t["number"] for t in body["tickets"]]
        order += [(t["priority"], t["created_at"], t["number"]) for t in body["tickets"]]
        pages += 1
        if pages == 3:
            # Mid-walk (among the P2s): tickets of every priority opened at the very times of those already
            # listed (only their number tells them apart), and more through the API itself, opened now.
            mark = order[-1]
            arrived += open_many(runtime, 10, first=1000)
            for priority in ("P1", "P2", "P5"):
                made = client.post(
                    "/api/tickets", headers=bearer(api_token), json={"summary": "new", "priority": priority}
                )
                assert made.status_code == 201
                arrived.append(made.get_json()["number"])
        url = body["next"]
    counts = Counter(seen)
    assert [n for n, c in counts.items() if c > 1] == []  # nothing twice
    assert set(existing) <= set(seen)  # nothing skipped
    assert order == sorted(order)  # one order over all pages: priority, time of submission, number
    assert pages == 11 and mark is not None
    # A ticket that arrived mid-walk is listed once if its place is after where the walk was, else not at all.
    for number in arrived:
        t = client.get(f"/api/tickets/{number}", headers=bearer(api_token)).get_json()
        after_mark = (t["priority"], t["created_at"], number) > mark
        assert counts[number] == (1 if after_mark else 0), (t["priority"], t["created_at"], number, mark)
    assert 0 < sum(counts[n] for n in arrived) < len(arrived)


def test_the_default_page_is_bounded_and_the_limit_has_a_maximum(app: Flask, runtime: Runtime, api_token: str) -> None:
    open_many(runtime, DEFAULT_PAGE_SIZE + 20)
    client = app.test_client()
    first = page(client, api_token, "/api/tickets")
    assert first["count"] == DEFAULT_PAGE_SIZE and first["next"] is not None
    rest = page(client, api_token, first["next"])
    assert rest["count"] == 20 and rest["next"] is None
    for bad in ("limit=0", f"limit={MAX_PAGE_SIZE + 1}", "limit=ten", "limit=-5"):
        refused = client.get(f"/api/tickets?{bad}", headers=bearer(api_token))
        assert refused.status_code == 400, bad
        assert f"limit must be a whole number from 1 to {MAX_PAGE_SIZE}" in refused.get_json()["error"]


@pytest.mark.parametrize(
    "cursor",
    ["abc", "WzEsMiwzXQ", "bm90IGpzb24", "WyJQOSIsIjIwMjYtMTEtMThUMTc6MDA6MDArMDA6MDAiLDFd", "a" * 300, "x y"],
)
def test_a_cursor_the_api_did_not_give_is_refused(app: Flask, api_token: str, cursor: str) -> None:
    refused = app.test_client().get("/api/tickets", query_string={"cursor": cursor}, headers=bearer(api_token))
    assert refused.status_code == 400 and refused.mimetype == "application/json"
    assert "cursor is not one this API gave" in refused.get_json()["error"]


def test_the_next_page_keeps_the_filters_and_the_limit(app: Flask, runtime: Runtime, api_token: str) -> None:
    open_many(runtime, 30)
    client = app.test_client()
    url: str | None = "/api/tickets?priority=P2&limit=2"
    numbers: list[int] = []
    while url is not None:
        body = page(client, api_token, url)
        assert body["count"] <= 2 and {t["priority"] for t in body["tickets"]} <= {"P2"}
        numbers += [t["number"] for t in body["tickets"]]
        url = body["next"]
        assert url is None or ("priority=P2" in url and "limit=2" in url)
    assert len(numbers) == len(set(numbers)) == 6
