"""The SLA engine against the support policy's table, hours and holidays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ticketing.priority import Priority
from ticketing.sla import Pause, bundled_policy, calendar_for, deadlines, is_business_hours, milestone_state

LA = ZoneInfo("America/Los_Angeles")


def la(text: str) -> datetime:
    """A Pacific wall-clock time, 'YYYY-MM-DD HH:MM'."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=LA)


def fmt(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(LA).strftime("%Y-%m-%d %H:%M %Z")


# priority, opened (Pacific), first response, resolution plan, resolved
CASES = [
    # Every priority opened mid-morning on an ordinary Wednesday.
    ("P1", "2026-11-18 10:00", "2026-11-18 10:12 PST", "2026-11-18 10:30 PST", "2026-11-18 14:00 PST"),
    ("P2", "2026-11-18 10:00", "2026-11-18 10:12 PST", "2026-11-18 17:00 PST", "2026-11-19 09:00 PST"),
    ("P3", "2026-11-18 10:00", "2026-11-18 10:12 PST", "2026-11-20 12:00 PST", "2026-11-20 16:00 PST"),
    ("P4", "2026-11-18 10:00", "2026-11-18 10:12 PST", "2026-11-30 16:00 PST", "2026-12-17 11:00 PST"),
    ("P5", "2026-11-18 10:00", "2026-11-18 10:12 PST", None, None),
    # P1 runs 24x7: after hours and weekends get a same-day response.
    ("P1", "2026-11-21 23:00", "2026-11-21 23:12 PST", "2026-11-21 23:30 PST", "2026-11-22 03:00 PST"),
    # Edges of business hours: 07:59 and 17:00 are after hours, 08:00 and 16:59 are open.
    ("P3", "2026-11-18 07:59", "2026-11-18 08:12 PST", "2026-11-20 10:00 PST", "2026-11-20 14:00 PST"),
    ("P3", "2026-11-18 08:00", "2026-11-18 08:12 PST", "2026-11-20 10:00 PST", "2026-11-20 14:00 PST"),
    ("P3", "2026-11-18 16:59", "2026-11-19 08:11 PST", "2026-11-23 09:59 PST", "2026-11-23 13:59 PST"),
    ("P3", "2026-11-18 17:00", "2026-11-19 08:12 PST", "2026-11-23 10:00 PST", "2026-11-23 14:00 PST"),
    ("P2", "2026-11-18 16:59", "2026-11-19 08:11 PST", "2026-11-19 14:59 PST", "2026-11-19 15:59 PST"),
    # Friday afternoon and the weekend roll to Monday.
    ("P2", "2026-11-20 16:00", "2026-11-20 16:12 PST", "2026-11-23 14:00 PST", "2026-11-23 15:00 PST"),
    ("P3", "2026-11-21 10:00", "2026-11-23 08:12 PST", "2026-11-25 10:00 PST", "2026-11-25 14:00 PST"),
    ("P4", "2026-11-22 12:00", "2026-11-23 08:12 PST", "2026-12-03 14:00 PST", "2026-12-22 09:00 PST"),
    # Thanksgiving and the day after are holidays: Wednesday evening rolls to Monday.
    ("P3", "2026-11-25 16:59", "2026-11-30 08:11 PST", "2026-12-02 09:59 PST", "2026-12-02 13:59 PST"),
    ("P2", "2026-11-26 10:00", "2026-11-30 08:12 PST", "2026-11-30 15:00 PST", "2026-11-30 16:00 PST"),
    # Christmas 2026 is a Friday; New Year's Day 2027 a Friday.
    ("P3", "2026-12-24 16:55", "2026-12-28 08:07 PST", "2026-12-30 09:55 PST", "2026-12-30 13:55 PST"),
    ("P3", "2026-12-31 16:59", "2027-01-04 08:11 PST", "2027-01-06 09:59 PST", "2027-01-06 13:59 PST"),
    # New Year's Day 2028 is a Saturday, observed Friday 2027-12-31.
    ("P3", "2027-12-30 17:00", "2028-01-03 08:12 PST", "2028-01-05 10:00 PST", "2028-01-05 14:00 PST"),
    # Christmas 2027 is a Saturday, observed Friday 2027-12-24.
    ("P2", "2027-12-23 17:00", "2027-12-27 08:12 PST", "2027-12-27 15:00 PST", "2027-12-27 16:00 PST"),
    # Independence Day 2026 is a Saturday (observed Fri 3rd); 2027 a Sunday (observed Mon 5th).
    ("P2", "2026-07-02 17:00", "2026-07-06 08:12 PDT", "2026-07-06 15:00 PDT", "2026-07-06 16:00 PDT"),
    ("P2", "2027-07-02 17:00", "2027-07-06 08:12 PDT", "2027-07-06 15:00 PDT", "2027-07-06 16:00 PDT"),
    # Memorial Day 2027 (May 31) and Labor Day 2026 (Sep 7).
    ("P2", "2027-05-28 17:00", "2027-06-01 08:12 PDT", "2027-06-01 15:00 PDT", "2027-06-01 16:00 PDT"),
    ("P2", "2026-09-04 17:00", "2026-09-08 08:12 PDT", "2026-09-08 15:00 PDT", "2026-09-08 16:00 PDT"),
    # DST ends 2026-11-01 02:00 PDT: a P1 at 00:30 PDT resolves at 03:30 PST, four real hours later.
    ("P1", "2026-11-01 00:30", "2026-11-01 00:42 PDT", "2026-11-01 01:00 PDT", "2026-11-01 03:30 PST"),
    # DST starts 2027-03-14 02:00 PST: four real hours after 00:30 PST is 05:30 PDT.
    ("P1", "2027-03-14 00:30", "2027-03-14 00:42 PST", "2027-03-14 01:00 PST", "2027-03-14 05:30 PDT"),
    # A business clock spanning the autumn change keeps 08:00-17:00 local on both sides.
    ("P3", "2026-10-30 16:00", "2026-10-30 16:12 PDT", "2026-11-04 09:00 PST", "2026-11-04 13:00 PST"),
    ("P3", "2027-03-12 16:00", "2027-03-12 16:12 PST", "2027-03-17 09:00 PDT", "2027-03-17 13:00 PDT"),
]


@pytest.mark.parametrize(("priority", "opened", "first", "plan", "resolved"), CASES)
def test_deadlines_follow_the_policy_table(priority: str, opened: str, first: str, plan: str, resolved: str) -> None:
    due = deadlines(priority, la(opened))
    assert (fmt(due.first_response), fmt(due.resolution_plan), fmt(due.resolved)) == (first, plan, resolved)


def test_deadlines_accept_the_enum_and_any_time_zone() -> None:
    opened_utc = la("2026-11-18 10:00").astimezone(UTC)
    assert deadlines(Priority.P2, opened_utc) == deadlines("P2", la("2026-11-18 10:00"))


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2026-11-18 07:59", False),
        ("2026-11-18 08:00", True),
        ("2026-11-18 16:59", True),
        ("2026-11-18 17:00", False),
        ("2026-11-21 12:00", False),  # Saturday
        ("2026-11-22 12:00", False),  # Sunday
        ("2026-11-26 12:00", False),  # Thanksgiving
        ("2026-11-27 12:00", False),  # the day after
        ("2026-12-25 12:00", False),  # Christmas
        ("2027-01-01 12:00", False),  # New Year's Day
        ("2027-12-31 12:00", False),  # New Year's Day 2028, observed
        ("2027-12-24 12:00", False),  # Christmas 2027, observed
        ("2026-07-03 12:00", False),  # Independence Day 2026, observed
        ("2027-07-05 12:00", False),  # Independence Day 2027, observed
        ("2027-05-31 12:00", False),  # Memorial Day
        ("2026-09-07 12:00", False),  # Labor Day
        ("2026-12-24 12:00", True),  # Christmas Eve is an ordinary day
        ("2026-11-25 12:00", True),
    ],
)
def test_business_hours_exclude_evenings_weekends_and_observed_holidays(at: str, expected: bool) -> None:
    assert is_business_hours(la(at)) is expected


def test_holidays_are_computed_for_any_year() -> None:
    calendar = calendar_for(bundled_policy())
    assert [d.isoformat() for d in calendar.observed_holidays(2031)] == [
        "2031-01-01",
        "2031-05-26",
        "2031-07-04",
        "2031-09-01",
        "2031-11-27",
        "2031-11-28",
        "2031-12-25",
    ]
    # 2033: New Year's Day 2033 is a Saturday, so 2032-12-31 is observed instead.
    assert calendar.holiday_name(datetime(2032, 12, 31).date()) == "New Year's Day"


def test_pause_across_a_night_and_a_holiday_pushes_business_clocks_by_business_time() -> None:
    opened = la("2026-11-25 09:00")
    pause = Pause(la("2026-11-25 10:00"), la("2026-11-30 09:00"))
    due = deadlines("P3", opened, pauses=[pause])
    # The first response fell due at 09:12, before the pause: it stays breached.
    assert fmt(due.first_response) == "2026-11-25 09:12 PST"
    # 8 business hours were paused (Wed 10:00-17:00, Mon 08:00-09:00).
    assert fmt(deadlines("P3", opened).resolved) == "2026-12-01 15:00 PST"
    assert fmt(due.resolved) == "2026-12-02 14:00 PST"
    assert fmt(due.resolution_plan) == "2026-12-02 10:00 PST"


def test_pause_across_a_night_pushes_a_p1_by_wall_clock_time() -> None:
    due = deadlines("P1", la("2026-11-18 22:00"), pauses=[Pause(la("2026-11-18 22:10"), la("2026-11-19 07:10"))])
    assert fmt(due.first_response) == "2026-11-19 07:12 PST"
    assert fmt(due.resolved) == "2026-11-19 11:00 PST"


def test_an_open_pause_does_not_move_due_times() -> None:
    opened = la("2026-11-18 10:00")
    assert deadlines("P3", opened, pauses=[Pause(la("2026-11-18 11:00"))]) == deadlines("P3", opened)


def test_an_exceptional_event_extends_every_target() -> None:
    due = deadlines("P2", la("2026-11-18 10:00"), extension=timedelta(hours=2))
    assert fmt(due.first_response) == "2026-11-18 12:12 PST"
    assert fmt(due.resolved) == "2026-11-19 11:00 PST"


def test_a_priority_change_recomputes_from_the_original_opening_time() -> None:
    opened = la("2026-11-18 10:00")
    assert fmt(deadlines("P3", opened).resolved) == "2026-11-20 16:00 PST"
    assert fmt(deadlines("P1", opened).resolved) == "2026-11-18 14:00 PST"


@pytest.mark.parametrize("bad", ["P6", "P0", "urgent", "", None, 7, 1.5])
def test_unknown_priorities_raise_a_clear_value_error(bad: object) -> None:
    with pytest.raises(ValueError, match="unknown priority"):
        deadlines(bad, la("2026-11-18 10:00"))  # type: ignore[arg-type]


def test_naive_datetimes_raise_a_clear_value_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        deadlines("P1", datetime(2026, 11, 18, 10, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        is_business_hours(datetime(2026, 11, 18, 10, 0))


@pytest.mark.parametrize(
    ("due", "met", "now", "paused", "state"),
    [
        ("2026-11-18 10:12", "2026-11-18 10:05", "2026-11-18 11:00", False, "met"),
        ("2026-11-18 10:12", "2026-11-18 10:20", "2026-11-18 11:00", False, "met late"),
        ("2026-11-18 10:12", None, "2026-11-18 10:13", False, "breached"),
        ("2026-11-18 10:12", None, "2026-11-18 10:10", False, "at risk"),
        ("2026-11-18 10:12", None, "2026-11-18 10:00", False, "on track"),
        ("2026-11-18 10:12", None, "2026-11-18 10:13", True, "paused"),
        (None, None, "2026-11-18 10:13", False, "best effort"),
    ],
)
def test_milestone_states(due: str | None, met: str | None, now: str, paused: bool, state: str) -> None:
    assert (
        milestone_state(
            la(due) if due else None, la(met) if met else None, la(now), timedelta(minutes=12), paused=paused
        )
        == state
    )
