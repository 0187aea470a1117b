"""The escalation's rules (pure): positions, when a step is due and the next one falls due, whom a step pages,
repeat or exhausted, the horizon, whether a ticket is still paged, an unreachable step."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from settings import ROOT
from ticketing.models import Page
from ticketing.oncall import EscalationPolicy, OnCall, Person, Step, load_oncall
from ticketing.paging import rules
from ticketing.paging.states import CALL, EMAIL, EXHAUSTED, FAILED, PAGING, RETRYING, SENT, SMS

NOW = datetime(2026, 11, 18, 22, 0, tzinfo=UTC)
FIVE = timedelta(minutes=5)
POLICY = EscalationPolicy(
    key="test",
    name="Test",
    steps=(Step("schedule", "after-hours", FIVE), Step("team", "emergency-response", timedelta(minutes=10))),
    rounds=2,
    fallback="morgan",
)
POSITIONS = POLICY.positions()  # r1s1 (5 min), r1s2 (10 min), r2s1, r2s2, fallback (0)
ANA = Person("ana", "Ana", "+18055550171", "ana@example.com")
BEN = Person("ben", "Ben", "+18055550172")


def _page(person: str, state: str) -> Page:
    return Page(person=person, state=state, channel=SMS)


@pytest.fixture(scope="module")
def oncall() -> OnCall:
    return load_oncall(ROOT / "config" / "oncall.toml")


def test_positions_follow_the_escalation_s_policy_or_the_one_for_its_hours_when_it_was_renamed(oncall: OnCall) -> None:
    assert rules.positions_for(oncall, "after-hours", True) == oncall.policies["after-hours"].positions()
    assert rules.positions_for(oncall, "gone", True) == oncall.policy_for(True).positions()
    assert rules.positions_for(oncall, "gone", False) == oncall.policy_for(False).positions()


@pytest.mark.parametrize(
    ("state", "next_position", "due_in", "due"),
    [
        (PAGING, 1, timedelta(0), True),
        (PAGING, 1, -FIVE, True),  # overdue
        (PAGING, 1, timedelta(seconds=2), True),  # a job firing a little early
        (PAGING, 1, timedelta(seconds=3), False),
        (PAGING, 2, timedelta(0), False),  # another step is next: this one was claimed
        (EXHAUSTED, 1, timedelta(0), False),
        (PAGING, 1, None, False),  # nothing scheduled
    ],
)
def test_a_step_is_due_when_the_escalation_waits_at_it_and_the_wait_is_over(
    state: str, next_position: int, due_in: timedelta | None, due: bool
) -> None:
    next_due_at = None if due_in is None else NOW + due_in
    assert rules.step_due(state=state, next_position=next_position, next_due_at=next_due_at, index=1, now=NOW) is due


def test_the_next_step_falls_due_after_this_step_s_wait_and_after_the_fallback_after_a_first_step_s() -> None:
    assert rules.next_due_after(POSITIONS, 0, NOW) == NOW + FIVE
    assert rules.next_due_after(POSITIONS, 1, NOW) == NOW + timedelta(minutes=10)
    assert POSITIONS[-1].is_fallback and POSITIONS[-1].wait == timedelta(0)
    assert rules.next_due_after(POSITIONS, len(POSITIONS) - 1, NOW) == NOW + FIVE
    assert [rules.is_last(POSITIONS, i) for i in range(len(POSITIONS))] == [False] * 4 + [True]


def test_a_step_pages_everyone_by_sms_and_call_then_by_email_those_with_an_address() -> None:
    assert rules.page_channels([ANA, BEN], email=True) == [
        (ANA, SMS),
        (ANA, CALL),
        (BEN, SMS),
        (BEN, CALL),
        (ANA, EMAIL),
    ]
    assert rules.page_channels((p for p in [ANA, BEN]), email=False) == [
        (ANA, SMS),
        (ANA, CALL),
        (BEN, SMS),
        (BEN, CALL),
    ]
    assert rules.page_channels([], email=True) == []


def test_a_page_key_names_the_ticket_cycle_round_step_person_and_channel() -> None:
    assert rules.page_key(42, 0, POSITIONS[1], "ana", SMS) == "42:1:2:ana:sms"
    assert rules.page_key(42, 2, POSITIONS[2], "ana", CALL) == "42:c2:2:1:ana:call"
    assert rules.page_key(42, 0, POSITIONS[-1], "morgan", EMAIL) == "42:0:0:morgan:email"


@pytest.mark.parametrize(
    ("reached", "until", "repeat"),
    [
        (False, NOW + FIVE, True),  # nobody reached, time left: round 1 again
        (False, NOW, False),  # the horizon passed
        (False, None, False),  # an escalation with no horizon
        (True, NOW + FIVE, False),  # someone was reached: exhausted
    ],
)
def test_a_finished_cycle_repeats_only_while_nobody_was_reached_before_the_horizon(
    reached: bool, until: datetime | None, repeat: bool
) -> None:
    assert rules.repeats(reached=reached, repeat_until=until, now=NOW) is repeat


def test_an_escalation_repeats_until_the_horizon_after_the_first_response_target() -> None:
    hour = timedelta(hours=1)
    assert rules.repeat_until(NOW + FIVE, now=NOW, horizon=hour) == NOW + FIVE + hour
    assert rules.repeat_until(None, now=NOW, horizon=hour) == NOW + hour


def test_a_restart_by_hand_repeats_for_at_least_another_hour() -> None:
    assert rules.restart_until(NOW - FIVE, NOW) == NOW + timedelta(hours=1)
    assert rules.restart_until(NOW + timedelta(hours=3), NOW) == NOW + timedelta(hours=3)
    assert rules.restart_until(NOW + timedelta(hours=1), NOW) == NOW + timedelta(hours=1)
    assert rules.restart_until(None, NOW) is None


@pytest.mark.parametrize(
    ("is_open", "priority", "merged", "paged"),
    [
        (True, "P1", False, True),
        (False, "P1", False, False),  # resolved or closed
        (True, "P2", False, False),  # re-triaged below P1
        (True, "P1", True, False),  # merged into another ticket
    ],
)
def test_a_ticket_is_paged_while_open_p1_and_not_merged(
    is_open: bool, priority: str, merged: bool, paged: bool
) -> None:
    assert rules.still_paged(is_open=is_open, priority=priority, merged=merged) is paged


def test_a_step_is_unreachable_only_when_every_person_s_every_phone_page_failed_on_the_number() -> None:
    assert rules.everyone_unreachable([_page("ana", FAILED), _page("ana", FAILED), _page("ben", FAILED)])
    assert not rules.everyone_unreachable([_page("ana", FAILED), _page("ana", SENT)])
    assert not rules.everyone_unreachable([_page("ana", FAILED), _page("ben", SENT)])
    # A provider failure says nothing about the number: it never speeds the escalation up.
    assert not rules.everyone_unreachable([_page("ana", RETRYING)])
    assert not rules.everyone_unreachable([])
