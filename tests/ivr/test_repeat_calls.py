"""Repeated P1 calls join the open escalation instead of paging again; withheld numbers are capped together."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.conftest import FixedClock
from tests.ivr.conftest import CAT, DANA, Desk
from ticketing.models import Escalation, Ticket
from workers import paging as jobs

AFTER_HOURS = "2026-11-18 22:00"
WITHHELD = ["anonymous", "", "+266696687", "+7378742833", "Restricted"]


@pytest.fixture(autouse=True)
def flood_settings(desk: Desk) -> None:
    # The per-caller rate limit is another matter (tested with the voice webhooks): let every call through.
    desk.runtime.settings = desk.runtime.settings.with_overrides(caller_rate_limit=100, paging_withheld_cap=2)


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "RETRY_PAUSES", (0.01, 0.01, 0.01))


def escalations(desk: Desk) -> int:
    with desk.runtime.sessions() as s:
        return int(s.scalar(select(func.count(Escalation.id))) or 0)


def bodies_to(desk: Desk, number: str) -> list[str]:
    return [r.param("Body") or "" for r in desk.twilio.messages(to=number)]


def test_a_second_call_from_the_same_caller_joins_the_open_escalation(desk: Desk, clock: FixedClock) -> None:
    from web.console.present import ticket_views

    clock.set(AFTER_HOURS)
    first = desk.ticket_of(desk.p1_call(DANA))
    desk.work()
    clock.advance(minutes=3)
    second = desk.ticket_of(desk.p1_call(DANA))
    desk.work()

    assert first != second and escalations(desk) == 1
    texts = bodies_to(desk, CAT)
    assert len(texts) == 2 and f"another call from the caller at 22:03 (ticket #{second})" in texts[1]
    assert len(desk.twilio.calls(to=CAT)) == 1  # no second page call
    assert "joined escalation" in desk.actions(second) and "another call" in desk.actions(first)
    with desk.runtime.sessions() as s:
        t = s.scalars(select(Ticket).where(Ticket.number == second)).one()
        view = ticket_views(s, [t], desk.runtime.policy, clock())[0]
    assert (view.paging.state, view.paging.joined_into) == ("joined", first)

    desk.text(CAT, "1")  # cat acknowledges the page
    with desk.runtime.sessions() as s:
        t = s.scalars(select(Ticket).where(Ticket.number == second)).one()
        assert ticket_views(s, [t], desk.runtime.policy, clock())[0].paging.state == "acknowledged"


def test_a_withheld_number_flood_opens_every_ticket_but_pages_once(desk: Desk, clock: FixedClock) -> None:
    clock.set(AFTER_HOURS)
    numbers = []
    for i in range(15):
        numbers.append(desk.ticket_of(desk.p1_call(WITHHELD[i % len(WITHHELD)])))
        clock.advance(seconds=20)
    desk.work()

    assert len(set(numbers)) == 15
    assert escalations(desk) == 1
    assert len(desk.twilio.calls(to=CAT)) == 1
    texts = bodies_to(desk, CAT)
    assert len(texts) <= 1 + 3  # the page, and at most one "another call" text per two minutes
    assert sum("another call" in t for t in texts) >= 1
    for number in numbers[1:]:
        assert "joined escalation" in desk.actions(number)


def test_withheld_escalations_are_capped_per_window(desk: Desk, clock: FixedClock) -> None:
    clock.set(AFTER_HOURS)
    started = []
    for _ in range(3):
        number = desk.ticket_of(desk.p1_call("anonymous"))
        desk.work()
        started.append(number)
        desk.runner = desk.app.test_cli_runner()
        assert desk.runner.invoke(args=["oncall", "ack", str(number), "--by", "cat"]).exit_code == 0
        clock.advance(minutes=1)
    # cap 2: the first two started their own escalation, the third joined the latest one
    assert escalations(desk) == 2
    assert "joined escalation" in desk.actions(started[2])

    clock.advance(minutes=61)  # a new window
    fresh = desk.ticket_of(desk.p1_call("anonymous"))
    desk.work()
    assert escalations(desk) == 3 and "paging started" in desk.actions(fresh)


def test_page_again_and_escalate_now_from_the_cli_are_audited(desk: Desk, clock: FixedClock) -> None:
    clock.set(AFTER_HOURS)
    number = desk.ticket_of(desk.p1_call())
    desk.work()
    runner = desk.app.test_cli_runner()

    result = runner.invoke(args=["oncall", "escalate-now", str(number), "--by", "Kim"])
    assert result.exit_code == 0, result.output
    assert [p for p, _c in desk.sent()][2:] == ["ben", "ben"]  # round 1 step 2 at once
    result = runner.invoke(args=["oncall", "page-again", str(number), "--by", "Kim"])
    assert result.exit_code == 0, result.output
    assert [p for p, _c in desk.sent()][4:] == ["cat", "cat"]  # round 1 step 1 again
    actions = desk.actions(number)
    assert "escalated now" in actions and "page again" in actions
    assert desk.escalation(number).cycle == 1
    pages = runner.invoke(args=["oncall", "pages", str(number)])
    assert "of 6 pages delivered" in pages.output
