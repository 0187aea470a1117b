"""A malformed support-policy file is refused with a message naming the key."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from ticketing.errors import PolicyError
from ticketing.policy import load_policy, parse_policy
from ticketing.sla import BUNDLED_POLICY_FILE


def bundled() -> dict[str, Any]:
    return tomllib.loads(BUNDLED_POLICY_FILE.read_text())


def test_the_bundled_policy_matches_the_policy_document() -> None:
    policy = load_policy(BUNDLED_POLICY_FILE)
    hours = {p.value: (t.first_response, t.resolution_plan, t.resolved, t.clock) for p, t in policy.targets.items()}
    h = lambda x: None if x is None else x.total_seconds() / 3600  # noqa: E731
    assert {k: (h(a), h(b), h(c), d) for k, (a, b, c, d) in hours.items()} == {
        "P1": (0.2, 0.5, 4.0, "24x7"),
        "P2": (0.2, 7.0, 8.0, "business"),
        "P3": (0.2, 20.0, 24.0, "business"),
        "P4": (0.2, 60.0, 172.0, "business"),
        "P5": (0.2, None, None, "business"),
    }
    assert str(policy.timezone) == "America/Los_Angeles"
    assert (policy.open.isoformat(), policy.close.isoformat()) == ("08:00:00", "17:00:00")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["hours"].update(timezone="Mars/Olympus"), "hours.timezone"),
        (lambda c: c["hours"].update(open="8am"), "hours.open"),
        (lambda c: c["hours"].update(close="07:00"), "hours.close"),
        (lambda c: c["hours"].update(days=["Monday"]), "hours.days"),
        (lambda c: c["targets"].pop("P4"), "targets.P4"),
        (lambda c: c["targets"]["P2"].update(clock="sometimes"), "targets.P2.clock"),
        (lambda c: c["targets"]["P3"].update(resolved=-1), "targets.P3.resolved"),
        (lambda c: c["targets"]["P1"].update(first_response="best effort"), "targets.P1.first_response"),
        (lambda c: c["holidays"]["rules"].append({"name": "x", "rule": "2nd Funday of May"}), "holidays.rules[7].rule"),
        (lambda c: c["holidays"]["rules"].append({"name": "x", "rule": "02-30"}), "holidays.rules[7].rule"),
        (lambda c: c["holidays"].update(extra_dates=["next tuesday"]), "holidays.extra_dates[0]"),
        (lambda c: c.pop("targets"), "targets"),
        (lambda c: c["sla"].update(at_risk_fraction=3), "sla.at_risk_fraction"),
    ],
)
def test_a_malformed_policy_names_the_wrong_key(change: Any, message: str) -> None:
    config = bundled()
    change(config)
    with pytest.raises(PolicyError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_policy(config)


def test_a_policy_file_that_is_not_toml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text("[hours\ntimezone = ")
    with pytest.raises(PolicyError, match="not valid TOML"):
        load_policy(path)


def test_a_missing_policy_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="not found"):
        load_policy(tmp_path / "nope.toml")


def test_holidays_and_hours_are_configuration(tmp_path: Path) -> None:
    text = BUNDLED_POLICY_FILE.read_text().replace('close = "17:00"', 'close = "18:00"')
    text = text.replace("extra_dates = []", 'extra_dates = ["2026-11-18"]')
    path = tmp_path / "policy.toml"
    path.write_text(text)
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from ticketing.sla import is_business_hours

    policy = load_policy(path)
    la = ZoneInfo("America/Los_Angeles")
    assert is_business_hours(datetime(2026, 11, 19, 17, 30, tzinfo=la), policy)
    assert not is_business_hours(datetime(2026, 11, 18, 10, 0, tzinfo=la), policy)
