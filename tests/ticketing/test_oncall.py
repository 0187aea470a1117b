"""The on-call model (pure): rotations, hand-offs across DST, overrides, policies by business hours and holidays."""

from __future__ import annotations

import ast
import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from settings import ROOT
from tests.conftest import LA, pacific
from ticketing.oncall import OnCall, Override, Schedule, Step, choose_policy, load_oncall, parse_oncall
from ticketing.sla import bundled_policy, calendar_for

CALENDAR = calendar_for(bundled_policy())
FRAMEWORKS = ["flask", "sqlalchemy", "twilio", "rq", "redis", "requests"]


def weekly(
    *members: str, handoff: str = "08:00", start: date = date(2026, 1, 5), overrides: tuple[Override, ...] = ()
) -> Schedule:
    return Schedule(
        key="after-hours",
        name="After hours",
        rotation="weekly",
        handoff=time.fromisoformat(handoff),
        start=start,
        members=members,
        timezone=LA,
        overrides=overrides,
    )


@pytest.fixture(scope="module")
def oncall() -> OnCall:
    return load_oncall(ROOT / "config" / "oncall.toml")


def test_the_on_call_module_imports_no_framework_and_never_reads_the_clock() -> None:
    code = f"import sys, ticketing.oncall\nprint(','.join(sorted(m for m in {FRAMEWORKS!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
    tree = ast.parse((ROOT / "ticketing" / "oncall.py").read_text())
    calls = {
        f"{n.func.value.id}.{n.func.attr}"
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name)
    }
    assert not calls & {"datetime.now", "datetime.utcnow", "date.today", "time.time", "datetime.today"}


def test_a_weekly_rotation_hands_off_at_its_local_time_on_the_start_weekday() -> None:
    s = weekly("blake", "casey", "drew")

    assert s.on_call(pacific("2026-01-05 08:00")) == "blake"
    assert s.on_call(pacific("2026-01-12 07:59")) == "blake"
    assert s.on_call(pacific("2026-01-12 08:00")) == "casey"
    assert s.on_call(pacific("2026-01-19 12:00")) == "drew"
    assert s.on_call(pacific("2026-01-26 08:00")) == "blake"  # the rotation repeats
    assert s.on_call(pacific("2026-01-05 07:59")) == "drew"  # before the start, it runs backwards


def test_a_daily_rotation_hands_off_every_day() -> None:
    s = Schedule("backup", "Backup", "daily", time(9, 30), date(2026, 11, 1), ("casey", "drew"), LA)

    assert [s.on_call(pacific(f"2026-11-0{d} 10:00")) for d in range(1, 6)] == [
        "casey",
        "drew",
        "casey",
        "drew",
        "casey",
    ]
    assert s.on_call(pacific("2026-11-02 09:29")) == "casey"


def test_the_hand_off_stays_at_8_am_local_across_the_spring_daylight_saving_change() -> None:
    s = weekly("blake", "casey", start=date(2026, 3, 2))  # DST starts Sunday 2026-03-08

    assert s.on_call(pacific("2026-03-09 07:59")) == "blake"
    assert s.on_call(pacific("2026-03-09 08:00")) == "casey"
    assert s.handoff_at(1) == datetime(2026, 3, 9, 15, 0, tzinfo=UTC)  # 08:00 PDT, not 09:00
    assert s.handoff_at(0) == datetime(2026, 3, 2, 16, 0, tzinfo=UTC)  # 08:00 PST


def test_the_hand_off_stays_at_8_am_local_across_the_autumn_daylight_saving_change() -> None:
    s = weekly("blake", "casey", start=date(2026, 10, 26))  # DST ends Sunday 2026-11-01

    assert s.on_call(datetime(2026, 11, 2, 15, 59, tzinfo=UTC)) == "blake"  # 07:59 PST
    assert s.on_call(datetime(2026, 11, 2, 16, 0, tzinfo=UTC)) == "casey"  # 08:00 PST


def test_a_hand_off_time_the_clocks_skip_happens_an_hour_later_and_a_repeated_one_the_first_time() -> None:
    spring = Schedule("n", "Nights", "daily", time(2, 30), date(2026, 3, 7), ("a", "b"), LA)
    autumn = Schedule("n", "Nights", "daily", time(1, 30), date(2026, 10, 31), ("a", "b"), LA)

    assert spring.handoff_at(1).astimezone(UTC) == datetime(2026, 3, 8, 10, 30, tzinfo=UTC)  # 03:30 PDT
    assert spring.on_call(pacific("2026-03-08 03:29")) == "a"
    assert spring.on_call(pacific("2026-03-08 03:30")) == "b"
    first_0130 = datetime(2026, 11, 1, 8, 30, tzinfo=UTC)  # 01:30 PDT
    assert autumn.handoff_at(1).astimezone(UTC) == first_0130
    assert autumn.on_call(first_0130 - timedelta(minutes=1)) == "a"
    assert autumn.on_call(first_0130 + timedelta(minutes=61)) == "b"  # 01:31 PST, the repeated hour


def test_an_override_covers_a_shift_and_the_last_listed_wins_where_two_overlap() -> None:
    s = weekly(
        "blake",
        "casey",
        overrides=(
            Override("alex", pacific("2026-12-24 17:00"), pacific("2026-12-26 08:00")),
            Override("drew", pacific("2026-12-25 12:00"), pacific("2026-12-25 18:00")),
        ),
    )

    assert s.on_call(pacific("2026-12-24 16:59")) == s.regular_shift(pacific("2026-12-24 16:59")).person
    assert s.on_call(pacific("2026-12-24 17:00")) == "alex"
    assert s.on_call(pacific("2026-12-25 13:00")) == "drew"
    assert s.on_call(pacific("2026-12-25 18:00")) == "alex"
    assert s.on_call(pacific("2026-12-26 08:00")) != "alex"


def test_next_change_names_the_next_hand_off_or_override() -> None:
    s = weekly(
        "blake", "casey", overrides=(Override("alex", pacific("2026-01-08 17:00"), pacific("2026-01-09 08:00")),)
    )

    assert s.next_change(pacific("2026-01-06 10:00")) == (pacific("2026-01-08 17:00"), "alex")
    assert s.next_change(pacific("2026-01-08 18:00")) == (pacific("2026-01-09 08:00"), "blake")
    assert s.next_change(pacific("2026-01-09 09:00")) == (pacific("2026-01-12 08:00"), "casey")


def test_business_hours_page_the_emergency_response_team(oncall: OnCall) -> None:
    at = pacific("2026-11-18 10:00")  # a Wednesday
    policy = choose_policy(oncall, at, CALENDAR)

    assert policy.key == "business-hours"
    assert [p.key for p in oncall.people_for(policy.steps[0], at)] == ["alex", "blake", "casey"]


@pytest.mark.parametrize(
    "when",
    ["2026-11-18 17:00", "2026-11-19 07:59", "2026-11-21 11:00", "2026-11-26 10:00", "2026-12-25 09:00"],
    ids=["closing time", "before opening", "saturday", "thanksgiving", "christmas"],
)
def test_after_hours_weekends_and_holidays_page_the_after_hours_rotation(oncall: OnCall, when: str) -> None:
    policy = choose_policy(oncall, pacific(when), CALENDAR)

    assert policy.key == "after-hours"
    assert policy.steps[0] == Step("schedule", "after-hours", timedelta(minutes=5))


def test_an_escalation_runs_each_round_of_steps_then_the_fallback(oncall: OnCall) -> None:
    positions = oncall.policies["after-hours"].positions()

    assert [p.label for p in positions] == [
        "round 1 step 1",
        "round 1 step 2",
        "round 2 step 1",
        "round 2 step 2",
        "fallback",
    ]
    assert positions[0].wait == timedelta(minutes=5)
    assert positions[-1].is_fallback and positions[-1].target == Step("person", "morgan", timedelta(0))


def test_a_team_step_pages_each_member_once_and_a_schedule_step_pages_whoever_is_on_call_then(oncall: OnCall) -> None:
    raw = {
        "people": {k: {"name": k.title(), "mobile": f"+1805555016{i}"} for i, k in enumerate(["ann", "bo", "cy"])},
        "teams": {"t": {"members": ["ann", "bo"]}},
        "schedules": {"s": {"handoff": "08:00", "start": "2026-11-16", "members": ["bo", "cy"]}},
        "policies": {
            "business-hours": {"fallback": "ann", "steps": [{"team": "t"}]},
            "after-hours": {"fallback": "ann", "steps": [{"schedule": "s"}, {"person": "cy"}]},
        },
    }
    config = parse_oncall(raw)
    step = config.policies["after-hours"].steps[0]

    assert [p.key for p in config.people_for(step, pacific("2026-11-23 07:59"))] == ["bo"]
    assert [p.key for p in config.people_for(step, pacific("2026-11-23 08:00"))] == ["cy"]
    assert config.find_person("BO") == config.people["bo"]
    assert config.find_person("(805) 555-0162") == config.people["cy"]


def test_the_bundled_and_example_files_are_valid() -> None:
    for name in ("oncall.toml", "oncall.example.toml"):
        config = load_oncall(ROOT / "config" / name)
        assert config.business_hours_policy == "business-hours" and config.after_hours_policy == "after-hours"
    example = load_oncall(ROOT / "config" / "oncall.example.toml")
    assert example.people["alex"].mobile == "+18055550160"  # any US format, stored as E.164
    assert example.schedules["after-hours"].on_call(pacific("2026-12-25 10:00")) == "alex"


def test_a_naive_time_is_refused(oncall: OnCall) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        oncall.schedules["after-hours"].on_call(datetime(2026, 11, 18, 22, 0))


def test_paths_resolve(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="on-call file not found"):
        load_oncall(tmp_path / "missing.toml")
