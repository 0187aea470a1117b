"""The support policy as data: business hours, observed holidays and SLA targets.

Loaded from a TOML file (``config/support-policy.toml`` by default) and
validated up front, so a malformed file stops the service at start-up with a
message that names the offending key.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, time, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.relativedelta import FR, MO, SA, SU, TH, TU, WE, relativedelta
from dateutil.relativedelta import weekday as RelWeekday

from ticketing.errors import PolicyError
from ticketing.priority import Priority

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_REL_WEEKDAYS: tuple[RelWeekday, ...] = (MO, TU, WE, TH, FR, SA, SU)
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_ORDINALS = {"1st": 1, "2nd": 2, "3rd": 3, "4th": 4, "5th": 5, "last": -1}
_FIXED = re.compile(r"^(\d{2})-(\d{2})$")
_NTH = re.compile(
    r"^(1st|2nd|3rd|4th|5th|last) (Mon|Tue|Wed|Thu|Fri|Sat|Sun) of "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)$"
)
_OFFSET = re.compile(r"^(.*?)\s*([+-]\d+) days?$")
CLOCKS = ("24x7", "business")
MILESTONES = ("first_response", "resolution_plan", "resolved")
T = TypeVar("T")


@dataclass(frozen=True)
class HolidayRule:
    """One observed holiday: a fixed date or the nth weekday of a month, plus an offset."""

    name: str
    month: int
    day: int | None = None  # fixed date
    weekday: int | None = None  # 0=Mon, with nth
    nth: int | None = None  # 1..5, or -1 for last
    offset_days: int = 0

    def actual_date(self, year: int) -> date:
        """The calendar date the holiday falls on in ``year`` (before weekend observance)."""
        if self.day is not None:
            base = date(year, self.month, self.day)
        else:
            assert self.weekday is not None and self.nth is not None
            if self.nth > 0:
                base = date(year, self.month, 1) + relativedelta(weekday=_REL_WEEKDAYS[self.weekday](self.nth))
            else:
                base = date(year, self.month, 1) + relativedelta(day=31, weekday=_REL_WEEKDAYS[self.weekday](-1))
        return base + timedelta(days=self.offset_days)


@dataclass(frozen=True)
class Target:
    """The SLA targets of one priority; ``None`` hours mean best effort."""

    priority: Priority
    name: str
    first_response: timedelta | None
    resolution_plan: timedelta | None
    resolved: timedelta | None
    clock: str  # "24x7" or "business"

    def for_milestone(self, milestone: str) -> timedelta | None:
        """The target duration of one milestone (first_response, resolution_plan, resolved)."""
        return getattr(self, milestone)  # type: ignore[no-any-return]


@dataclass(frozen=True, eq=False)  # identity hash: one calendar cache per loaded policy
class SupportPolicy:
    """Hours, holidays and targets: everything the SLA engine needs."""

    timezone: ZoneInfo
    open: time
    close: time
    business_days: frozenset[int]  # 0=Mon
    holiday_rules: tuple[HolidayRule, ...]
    observe_weekends: bool
    extra_dates: frozenset[date]
    targets: Mapping[Priority, Target]
    at_risk_fraction: float = 0.25

    def target(self, priority: Priority | str) -> Target:
        """The targets for a priority (accepts 'P1'..'P5' or the enum)."""
        return self.targets[Priority.parse(priority)]


def load_config_file(
    path: Path | str, parse: Callable[[Mapping[str, Any]], T], error: type[PolicyError], what: str
) -> T:
    """Read a TOML configuration file and validate it with ``parse``; every error names the file."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: {what} file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not valid TOML: {exc}") from None
    try:
        return parse(raw)
    except PolicyError as exc:
        raise error(f"{path}: {exc}") from None


def load_policy(path: Path | str) -> SupportPolicy:
    """Read and validate a support-policy TOML file."""
    return load_config_file(path, parse_policy, PolicyError, "support policy")


def parse_policy(raw: Mapping[str, Any]) -> SupportPolicy:
    """Validate an already-parsed policy mapping and build a SupportPolicy."""
    hours = _table(raw, "hours")
    tz_name = _str(hours, "hours.timezone")
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise PolicyError(f"hours.timezone: unknown time zone {tz_name!r}") from None
    opens = _clock_time(hours, "hours.open")
    closes = _clock_time(hours, "hours.close")
    if closes <= opens:
        raise PolicyError("hours.close: must be later than hours.open")
    days = hours.get("days")
    if not isinstance(days, list) or not days or any(d not in WEEKDAYS for d in days):
        raise PolicyError(f"hours.days: expected a non-empty list of {', '.join(WEEKDAYS)}")

    holidays = raw.get("holidays", {})
    if not isinstance(holidays, dict):
        raise PolicyError("holidays: expected a table")
    observe = holidays.get("observe_weekends", True)
    if not isinstance(observe, bool):
        raise PolicyError("holidays.observe_weekends: expected true or false")
    rules_raw = holidays.get("rules", [])
    if not isinstance(rules_raw, list):
        raise PolicyError("holidays.rules: expected a list of {name, rule} tables")
    rules = tuple(_holiday_rule(item, i) for i, item in enumerate(rules_raw))
    extra: set[date] = set()
    for i, text in enumerate(holidays.get("extra_dates", [])):
        try:
            extra.add(text if isinstance(text, date) else date.fromisoformat(str(text)))
        except ValueError:
            raise PolicyError(f"holidays.extra_dates[{i}]: expected YYYY-MM-DD, got {text!r}") from None

    targets_raw = _table(raw, "targets")
    targets: dict[Priority, Target] = {}
    for priority in Priority:
        section = targets_raw.get(priority.value)
        if not isinstance(section, dict):
            raise PolicyError(f"targets.{priority.value}: missing")
        key = f"targets.{priority.value}"
        clock = section.get("clock")
        if clock not in CLOCKS:
            raise PolicyError(f"{key}.clock: expected '24x7' or 'business', got {clock!r}")
        durations = {m: _hours(section, f"{key}.{m}", m) for m in MILESTONES}
        if durations["first_response"] is None:
            raise PolicyError(f"{key}.first_response: every priority needs a first response target")
        targets[priority] = Target(
            priority=priority,
            name=str(section.get("name", priority.value)),
            clock=clock,
            **durations,
        )
    sla = raw.get("sla", {})
    fraction = sla.get("at_risk_fraction", 0.25) if isinstance(sla, dict) else None
    if not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise PolicyError("sla.at_risk_fraction: expected a number between 0 and 1")
    return SupportPolicy(
        timezone=tz,
        open=opens,
        close=closes,
        business_days=frozenset(WEEKDAYS.index(d) for d in days),
        holiday_rules=rules,
        observe_weekends=observe,
        extra_dates=frozenset(extra),
        targets=targets,
        at_risk_fraction=float(fraction),
    )


def _table(raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = raw.get(key)
    if not isinstance(value, dict):
        raise PolicyError(f"{key}: missing section [{key}]")
    return value


def _str(table: Mapping[str, Any], key: str) -> str:
    value = table.get(key.rsplit(".", 1)[-1])
    if not isinstance(value, str) or not value:
        raise PolicyError(f"{key}: expected a text value")
    return value


def _clock_time(table: Mapping[str, Any], key: str) -> time:
    text = _str(table, key)
    if not re.fullmatch(r"\d{2}:\d{2}", text):
        raise PolicyError(f"{key}: expected HH:MM, got {text!r}")
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise PolicyError(f"{key}: expected HH:MM, got {text!r}") from None


def _hours(table: Mapping[str, Any], key: str, name: str) -> timedelta | None:
    value = table.get(name)
    if isinstance(value, str) and value.strip().lower() == "best effort":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise PolicyError(f"{key}: expected a positive number of hours or 'best effort', got {value!r}")
    return timedelta(hours=value)


def _holiday_rule(item: object, index: int) -> HolidayRule:
    key = f"holidays.rules[{index}]"
    if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not isinstance(item.get("rule"), str):
        raise PolicyError(f'{key}: expected {{ name = "...", rule = "..." }}')
    name, text = item["name"], item["rule"].strip()
    offset = 0
    match = _OFFSET.match(text)
    if match:
        text, offset = match.group(1), int(match.group(2))
    fixed = _FIXED.match(text)
    if fixed:
        month, day = int(fixed.group(1)), int(fixed.group(2))
        try:
            date(2024, month, day)  # a leap year accepts every real MM-DD
        except ValueError:
            raise PolicyError(f"{key}.rule: {item['rule']!r} is not a real date") from None
        return HolidayRule(name=name, month=month, day=day, offset_days=offset)
    nth = _NTH.match(text)
    if nth:
        return HolidayRule(
            name=name,
            month=MONTHS.index(nth.group(3)) + 1,
            weekday=WEEKDAYS.index(nth.group(2)),
            nth=_ORDINALS[nth.group(1)],
            offset_days=offset,
        )
    raise PolicyError(
        f"{key}.rule: {item['rule']!r} is neither 'MM-DD' nor '<nth> <Weekday> of <Month>' "
        "(optionally followed by '+N days')"
    )
