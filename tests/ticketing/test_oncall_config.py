"""The on-call file is validated up front; every error names the offending key."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from ticketing.oncall import OnCallError, load_oncall, parse_oncall

VALID: dict[str, Any] = {
    "people": {
        "alex": {"name": "Alex", "mobile": "+18055550160"},
        "blake": {"name": "Blake", "mobile": "+18055550161"},
    },
    "teams": {"ert": {"members": ["alex", "blake"]}},
    "schedules": {
        "ah": {"rotation": "weekly", "handoff": "08:00", "start": "2026-01-05", "members": ["alex", "blake"]}
    },
    "policies": {
        "business-hours": {"fallback": "alex", "steps": [{"team": "ert"}]},
        "after-hours": {"fallback": "blake", "rounds": 3, "steps": [{"schedule": "ah", "wait_minutes": 5}]},
    },
}


def broken(path: str, value: object) -> dict[str, Any]:
    """VALID with the dotted ``path`` set to ``value`` (``...`` deletes it)."""
    raw = copy.deepcopy(VALID)
    *parents, last = path.split(".")
    node: Any = raw
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is ...:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return raw


def test_the_valid_example_parses() -> None:
    config = parse_oncall(VALID)
    assert config.policies["after-hours"].rounds == 3


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("people", ..., "people: missing section [people]"),
        ("people.alex.mobile", "555", "people.alex.mobile: '555' is not a phone number"),
        ("people.alex.name", "", "people.alex.name: expected a text value"),
        ("people.alex.email", "nobody", "people.alex.email: 'nobody' is not an email address"),
        ("teams.ert.members", ["alex", "zoe"], "teams.ert.members[1]: no person 'zoe' in [people]"),
        ("teams.ert.members", [], "teams.ert.members: expected a non-empty list of people"),
        ("schedules.ah.rotation", "monthly", "schedules.ah.rotation: expected 'weekly' or 'daily'"),
        ("schedules.ah.handoff", "8am", "schedules.ah.handoff: expected HH:MM"),
        ("schedules.ah.handoff", "25:00", "schedules.ah.handoff: expected HH:MM"),
        ("schedules.ah.start", "next monday", "schedules.ah.start: expected a date YYYY-MM-DD"),
        (
            "schedules.ah.overrides",
            [{"person": "alex", "start": "2026-12-24T17:00", "end": "2026-12-24T08:00"}],
            "schedules.ah.overrides[0].end: must be later than start",
        ),
        (
            "schedules.ah.overrides",
            [{"person": "zoe", "start": "2026-12-24T17:00", "end": "2026-12-25T08:00"}],
            "schedules.ah.overrides[0].person: no person 'zoe'",
        ),
        ("policies.after-hours.steps", [], "policies.after-hours.steps: expected a non-empty list"),
        (
            "policies.after-hours.steps.0",
            {"schedule": "nope"},
            "policies.after-hours.steps[0].schedule: no schedule 'nope'",
        ),
        (
            "policies.after-hours.steps.0",
            {"schedule": "ah", "team": "ert"},
            "policies.after-hours.steps[0]: name exactly one of schedule, team or person",
        ),
        (
            "policies.after-hours.steps.0",
            {"schedule": "ah", "wait": 5},
            "policies.after-hours.steps[0]: unknown key 'wait'",
        ),
        (
            "policies.after-hours.steps.0",
            {"schedule": "ah", "wait_minutes": 0},
            "policies.after-hours.steps[0].wait_minutes: expected minutes between 0 and 120",
        ),
        ("policies.after-hours.rounds", 0, "policies.after-hours.rounds: expected a whole number from 1 to 10"),
        ("policies.after-hours.fallback", "zoe", "policies.after-hours.fallback: no person 'zoe'"),
        ("policies.business-hours", ..., "routing.business_hours: no policy 'business-hours' (defined: after-hours)"),
        ("timezone", "Mars/Olympus", "timezone: unknown time zone 'Mars/Olympus'"),
    ],
)
def test_a_bad_value_is_refused_with_a_message_naming_the_key(path: str, value: object, message: str) -> None:
    with pytest.raises(OnCallError) as error:
        parse_oncall(broken(path, value))
    assert message in str(error.value)


def test_routing_can_name_other_policies() -> None:
    raw = copy.deepcopy(VALID)
    raw["routing"] = {"business_hours": "after-hours", "after_hours": "business-hours"}
    config = parse_oncall(raw)
    assert config.policy_for(True).key == "after-hours"
    raw["routing"] = {"after_hours": "overnight"}
    with pytest.raises(OnCallError, match="routing.after_hours: no policy 'overnight'"):
        parse_oncall(raw)


def test_a_file_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "oncall.toml"
    path.write_text("[people.alex]\nname = 'Alex'\nmobile = 'x'\n")
    with pytest.raises(OnCallError, match=r"oncall\.toml: people\.alex\.mobile: 'x' is not a phone number"):
        load_oncall(path)
    path.write_text("people = [")
    with pytest.raises(OnCallError, match="not valid TOML"):
        load_oncall(path)


def test_a_broken_file_stops_the_web_app_at_start_up(tmp_path: Path) -> None:
    from settings import Settings
    from web.app import create_app

    path = tmp_path / "oncall.toml"
    path.write_text("[people.alex]\nname = 'Alex'\nmobile = '+18055550160'\n")
    with pytest.raises(OnCallError, match="policies: missing section"):
        create_app(Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", oncall_file=path))
