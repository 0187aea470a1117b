"""A connected call back is a person's first response; a call that never reached the caller is not."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from sqlalchemy import select

from tests.conftest import FixedClock
from tests.ivr.conftest import CAT, Desk
from ticketing.models import Ticket

AFTER_HOURS = "2026-11-18 22:00"  # the after-hours rotation: Cat is paged first


@pytest.fixture
def ack_is_no_response(desk: Desk) -> None:
    """ACK_COUNTS_AS_FIRST_RESPONSE=false: only speaking to the client meets the first response."""
    desk.runtime.settings = desk.runtime.settings.with_overrides(ack_counts_as_first_response=False)


def _press_2_and_dial(desk: Desk, clock: FixedClock, status: str) -> int:
    """Cat answers the page call, presses 2, and the call to the caller ends with Twilio's ``status``."""
    clock.set(AFTER_HOURS)
    number = desk.ticket_of(desk.p1_call())
    desk.work()
    call = desk.call_to(CAT)
    params = {
        "CallSid": "CA" + "1" * 32,
        "AccountSid": desk.twilio.account_sid,
        "From": call.param("From") or "",
        "To": call.param("To") or "",
        "CallStatus": "in-progress",
        "Direction": "outbound-api",
        "AnsweredBy": "human",
    }
    gather = ET.fromstring(desk.sim.post(call.param("Url") or "", params)).find("Gather")
    assert gather is not None
    dial = ET.fromstring(desk.sim.post(gather.get("action", ""), {**params, "Digits": "2"})).find("Dial")
    assert dial is not None
    desk.sim.post(dial.get("action", ""), {**params, "DialCallStatus": status, "DialCallDuration": "42"})
    return number


def _first_response(desk: Desk, number: int) -> tuple[object, str, list[tuple[str, str | None, object]]]:
    with desk.runtime.sessions() as s:
        t = s.scalars(select(Ticket).where(Ticket.number == number)).one()
        met = [(a.actor, a.reason, a.detail.get("via")) for a in t.audit if a.action == "first response met"]
        return t.milestone("first_response").met_at, t.status, met


def test_a_connected_call_back_meets_the_first_response(
    desk: Desk, clock: FixedClock, ack_is_no_response: None
) -> None:
    number = _press_2_and_dial(desk, clock, "completed")
    met_at, status, met = _first_response(desk, number)
    assert met_at == clock() and status == "acknowledged"
    assert met == [("Cat Nguyen", "a connected call back by Cat Nguyen", "call back")]


def test_a_call_back_nobody_answered_is_no_first_response(
    desk: Desk, clock: FixedClock, ack_is_no_response: None
) -> None:
    number = _press_2_and_dial(desk, clock, "no-answer")
    met_at, status, met = _first_response(desk, number)
    assert met_at is None and met == [] and status == "new"


def test_when_the_ack_counts_the_call_back_adds_nothing(desk: Desk, clock: FixedClock) -> None:
    number = _press_2_and_dial(desk, clock, "completed")
    met_at, _status, met = _first_response(desk, number)
    assert met_at == clock() and met == [("Cat Nguyen", "page acknowledged by call", None)]
