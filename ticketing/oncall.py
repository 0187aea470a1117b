"""Who is on call: people, teams, rotations, overrides and escalation policies.

Pure code: no framework imports and no reading of the clock; the time (and the
business calendar, for choosing between the business-hours and after-hours
policies) are arguments. Loaded from ``config/oncall.toml`` (``ONCALL_FILE``)
and validated up front; every error names the offending key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ticketing import phone
from ticketing.calendar import BusinessCalendar, require_aware
from ticketing.errors import OnCallError
from ticketing.policy import load_config_file

DEFAULT_TIMEZONE = "America/Los_Angeles"
DEFAULT_WAIT = timedelta(minutes=5)  # one escalation still fits the P1 first-response target (0.2 h)
DEFAULT_ROUNDS = 2
MAX_ROUNDS = 10
ROTATIONS: dict[str, int] = {"weekly": 7, "daily": 1}
STEP_KINDS = ("schedule", "team", "person")
CHANNELS = ("sms", "call")
_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")

StepKind = Literal["schedule", "team", "person"]


@dataclass(frozen=True)
class Person:
    """Someone who can be paged."""

    key: str
    name: str
    mobile: str  # E.164
    email: str | None = None


@dataclass(frozen=True)
class Team:
    """People paged together (all members at once)."""

    key: str
    name: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class Override:
    """A temporary cover: ``person`` is on call from ``start`` (inclusive) to ``end`` (exclusive)."""

    person: str
    start: datetime
    end: datetime

    def covers(self, at: datetime) -> bool:
        """True while the override is in force."""
        # Compare instants in UTC: aware datetimes sharing a tzinfo compare by wall time.
        instant = at.astimezone(UTC)
        return self.start.astimezone(UTC) <= instant < self.end.astimezone(UTC)


@dataclass(frozen=True)
class Shift:
    """One stretch of a rotation with the person on call in it."""

    person: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Schedule:
    """A rotation: members take turns, handing off at a local time every day or week."""

    key: str
    name: str
    rotation: str  # "weekly" or "daily"
    handoff: time  # local wall-clock time of the hand-off
    start: date  # the first member's first shift starts on this day; for weekly, its weekday is the hand-off day
    members: tuple[str, ...]
    timezone: ZoneInfo
    overrides: tuple[Override, ...] = ()

    @property
    def days(self) -> int:
        """Length of one shift in days."""
        return ROTATIONS[self.rotation]

    def handoff_at(self, index: int) -> datetime:
        """The start of shift ``index`` (0 = the first shift), at the hand-off's local wall time.

        Combining the local date with the wall time (rather than adding 24 h steps)
        keeps the hand-off at 08:00 across daylight-saving changes; a wall time that
        does not exist that day (clocks jumped past it) resolves an hour later.
        """
        day = self.start + timedelta(days=index * self.days)
        return datetime.combine(day, self.handoff, tzinfo=self.timezone)

    def shift_index(self, at: datetime) -> int:
        """The index of the regular shift running at ``at`` (negative before the first shift)."""
        require_aware(at, "at")
        local = at.astimezone(self.timezone)
        index = (local.date() - self.start).days // self.days
        # Compare instants in UTC: aware datetimes sharing a tzinfo compare by wall time.
        if at.astimezone(UTC) < self.handoff_at(index).astimezone(UTC):
            index -= 1
        return index

    def regular_shift(self, at: datetime) -> Shift:
        """The rotation's shift at ``at``, overrides ignored."""
        index = self.shift_index(at)
        return Shift(self.members[index % len(self.members)], self.handoff_at(index), self.handoff_at(index + 1))

    def override_at(self, at: datetime) -> Override | None:
        """The override in force at ``at``; the last one listed wins where they overlap."""
        require_aware(at, "at")
        for override in reversed(self.overrides):
            if override.covers(at):
                return override
        return None

    def on_call(self, at: datetime) -> str:
        """The key of the person on call at ``at`` (an override beats the rotation)."""
        override = self.override_at(at)
        return override.person if override is not None else self.regular_shift(at).person

    def next_change(self, at: datetime) -> tuple[datetime, str]:
        """When the person on call next changes, and who takes over (the next hand-off if nobody changes)."""
        require_aware(at, "at")
        current = self.on_call(at)
        index = self.shift_index(at)
        horizon = len(self.members) + 1
        boundaries = {self.handoff_at(index + k) for k in range(1, horizon + 1)}
        boundaries |= {t for o in self.overrides for t in (o.start, o.end)}
        now = at.astimezone(UTC)
        for boundary in sorted((b for b in boundaries if b.astimezone(UTC) > now), key=lambda b: b.astimezone(UTC)):
            who = self.on_call(boundary)
            if who != current:
                return boundary, who
        nxt = self.handoff_at(index + 1)
        return nxt, self.on_call(nxt)


@dataclass(frozen=True)
class Step:
    """One step of an escalation policy: whom to page, and how long to wait for an ack before the next step."""

    kind: StepKind
    target: str
    wait: timedelta = DEFAULT_WAIT

    @property
    def label(self) -> str:
        """E.g. 'schedule after-hours'."""
        return f"{self.kind} {self.target}"


@dataclass(frozen=True)
class Position:
    """A place in an escalation: round and step (or the final fallback), whom it pages and its wait."""

    index: int
    round: int  # 1-based; the fallback has round 0
    step: int  # 1-based; the fallback has step 0
    target: Step
    wait: timedelta

    @property
    def is_fallback(self) -> bool:
        """True for the final fallback contact after the last round."""
        return self.round == 0

    @property
    def label(self) -> str:
        """E.g. 'round 1 step 2' or 'fallback'."""
        return "fallback" if self.is_fallback else f"round {self.round} step {self.step}"


@dataclass(frozen=True)
class EscalationPolicy:
    """Ordered steps, repeated for a bounded number of rounds, then a final fallback contact."""

    key: str
    name: str
    steps: tuple[Step, ...]
    rounds: int
    fallback: str  # person key

    def positions(self) -> tuple[Position, ...]:
        """Every position of the escalation in order: each round's steps, then the fallback."""
        out: list[Position] = []
        for r in range(1, self.rounds + 1):
            for s, step in enumerate(self.steps, start=1):
                out.append(Position(len(out), r, s, step, step.wait))
        out.append(Position(len(out), 0, 0, Step("person", self.fallback, timedelta(0)), timedelta(0)))
        return tuple(out)


@dataclass(frozen=True)
class OnCall:
    """The whole on-call configuration."""

    timezone: ZoneInfo
    people: Mapping[str, Person]
    teams: Mapping[str, Team]
    schedules: Mapping[str, Schedule]
    policies: Mapping[str, EscalationPolicy]
    business_hours_policy: str
    after_hours_policy: str

    def policy_for(self, business_hours: bool) -> EscalationPolicy:
        """The business-hours policy (emergency response team) or the after-hours one (holidays too)."""
        return self.policies[self.business_hours_policy if business_hours else self.after_hours_policy]

    def people_for(self, step: Step, at: datetime) -> tuple[Person, ...]:
        """The people a step pages at ``at``: the schedule's on-call person, every team member, or the person."""
        if step.kind == "schedule":
            keys: tuple[str, ...] = (self.schedules[step.target].on_call(at),)
        elif step.kind == "team":
            keys = self.teams[step.target].members
        else:
            keys = (step.target,)
        return tuple(self.people[k] for k in dict.fromkeys(keys))

    def find_person(self, text: str) -> Person | None:
        """The person whose key, name (any case) or mobile number is ``text``."""
        wanted = text.strip().lower()
        number = phone.normalize(text)
        for person in self.people.values():
            if wanted in (person.key, person.name.lower()) or (number is not None and number == person.mobile):
                return person
        return None

    def person_for_user(self, username: str, display_name: str) -> Person | None:
        """The on-call person a console account is: the one keyed by its username, else the one of its name."""
        by_key = self.people.get(username.strip().lower())
        if by_key is not None:
            return by_key
        name = " ".join(display_name.split()).casefold()
        return next((p for p in self.people.values() if name and " ".join(p.name.split()).casefold() == name), None)


def choose_policy(oncall: OnCall, at: datetime, calendar: BusinessCalendar) -> EscalationPolicy:
    """The escalation policy in force at ``at``: after hours covers nights, weekends and observed holidays."""
    require_aware(at, "at")
    return oncall.policy_for(calendar.is_business_hours(at))


# --- configuration -------------------------------------------------------------------------------------


def load_oncall(path: Path | str) -> OnCall:
    """Read and validate an on-call TOML file."""
    return load_config_file(path, parse_oncall, OnCallError, "on-call")


def parse_oncall(raw: Mapping[str, Any]) -> OnCall:
    """Validate an already-parsed on-call mapping and build the model."""
    tz_name = raw.get("timezone", DEFAULT_TIMEZONE)
    try:
        tz = ZoneInfo(tz_name) if isinstance(tz_name, str) else None
    except (ZoneInfoNotFoundError, ValueError):
        tz = None
    if tz is None:
        raise OnCallError(f"timezone: unknown time zone {tz_name!r}")

    people = {key: _person(key, item) for key, item in _tables(raw, "people").items()}
    if not people:
        raise OnCallError("people: define at least one person")
    teams = {key: _team(key, item, people) for key, item in _tables(raw, "teams", required=False).items()}
    schedules = {
        key: _schedule(key, item, people, tz) for key, item in _tables(raw, "schedules", required=False).items()
    }
    policies = {key: _policy(key, item, people, teams, schedules) for key, item in _tables(raw, "policies").items()}
    routing = raw.get("routing", {})
    if not isinstance(routing, dict):
        raise OnCallError("routing: expected a table")
    chosen: dict[str, str] = {}
    for field_name, default in (("business_hours", "business-hours"), ("after_hours", "after-hours")):
        name = routing.get(field_name, default)
        if not isinstance(name, str) or name not in policies:
            raise OnCallError(
                f"routing.{field_name}: no policy {name!r} (defined: {', '.join(sorted(policies)) or 'none'})"
            )
        chosen[field_name] = name
    return OnCall(
        timezone=tz,
        people=people,
        teams=teams,
        schedules=schedules,
        policies=policies,
        business_hours_policy=chosen["business_hours"],
        after_hours_policy=chosen["after_hours"],
    )


def _tables(raw: Mapping[str, Any], section: str, *, required: bool = True) -> dict[str, dict[str, Any]]:
    value = raw.get(section)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise OnCallError(
            f"{section}: missing section [{section}]" if value is None else f"{section}: expected a table"
        )
    out: dict[str, dict[str, Any]] = {}
    for key, item in value.items():
        if not _KEY.match(key):
            raise OnCallError(f"{section}.{key}: keys are lower-case letters, digits, '-' and '_'")
        if not isinstance(item, dict):
            raise OnCallError(f"{section}.{key}: expected a table")
        out[key] = item
    return out


def _text(item: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str | None:
    value = item.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise OnCallError(f"{where}.{key}: expected a text value")
    return value.strip()


def _person(key: str, item: Mapping[str, Any]) -> Person:
    where = f"people.{key}"
    name = _text(item, "name", where)
    raw_mobile = _text(item, "mobile", where)
    mobile = phone.normalize(raw_mobile)
    if mobile is None:
        raise OnCallError(f"{where}.mobile: {raw_mobile!r} is not a phone number")
    email = _text(item, "email", where, required=False)
    if email is not None and "@" not in email:
        raise OnCallError(f"{where}.email: {email!r} is not an email address")
    return Person(key=key, name=name or key, mobile=mobile, email=email)


def _members(item: Mapping[str, Any], where: str, people: Mapping[str, Person]) -> tuple[str, ...]:
    members = item.get("members")
    if not isinstance(members, list) or not members or not all(isinstance(m, str) for m in members):
        raise OnCallError(f"{where}.members: expected a non-empty list of people")
    for i, member in enumerate(members):
        if member not in people:
            raise OnCallError(f"{where}.members[{i}]: no person {member!r} in [people]")
    return tuple(members)


def _team(key: str, item: Mapping[str, Any], people: Mapping[str, Person]) -> Team:
    where = f"teams.{key}"
    members = _members(item, where, people)
    if len(set(members)) != len(members):
        raise OnCallError(f"{where}.members: lists someone twice")
    return Team(key=key, name=_text(item, "name", where, required=False) or key, members=members)


def _schedule(key: str, item: Mapping[str, Any], people: Mapping[str, Person], tz: ZoneInfo) -> Schedule:
    where = f"schedules.{key}"
    rotation = item.get("rotation", "weekly")
    if rotation not in ROTATIONS:
        raise OnCallError(f"{where}.rotation: expected 'weekly' or 'daily', got {rotation!r}")
    handoff_text = item.get("handoff")
    if not isinstance(handoff_text, str) or not re.fullmatch(r"\d{2}:\d{2}", handoff_text):
        raise OnCallError(f"{where}.handoff: expected HH:MM (local time), got {handoff_text!r}")
    try:
        handoff = time.fromisoformat(handoff_text)
    except ValueError:
        raise OnCallError(f"{where}.handoff: expected HH:MM (local time), got {handoff_text!r}") from None
    start_raw = item.get("start")
    try:
        start = (
            start_raw
            if isinstance(start_raw, date) and not isinstance(start_raw, datetime)
            else date.fromisoformat(str(start_raw))
        )
    except ValueError:
        raise OnCallError(
            f"{where}.start: expected a date YYYY-MM-DD (the first shift's day), got {start_raw!r}"
        ) from None
    members = _members(item, where, people)
    overrides_raw = item.get("overrides", [])
    if not isinstance(overrides_raw, list):
        raise OnCallError(f"{where}.overrides: expected a list of {{ person, start, end }} tables")
    overrides = tuple(_override(f"{where}.overrides[{i}]", o, people, tz) for i, o in enumerate(overrides_raw))
    return Schedule(
        key=key,
        name=_text(item, "name", where, required=False) or key,
        rotation=rotation,
        handoff=handoff,
        start=start,
        members=members,
        timezone=tz,
        overrides=overrides,
    )


def _when(value: object, where: str, tz: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        at = value
    elif isinstance(value, str):
        try:
            at = datetime.fromisoformat(value.strip())
        except ValueError:
            raise OnCallError(f"{where}: expected a date and time like 2026-12-24T17:00, got {value!r}") from None
    else:
        raise OnCallError(f"{where}: expected a date and time like 2026-12-24T17:00, got {value!r}")
    # A wall-clock time without an offset is the on-call time zone's.
    return at.replace(tzinfo=tz) if at.tzinfo is None else at


def _override(where: str, item: object, people: Mapping[str, Person], tz: ZoneInfo) -> Override:
    if not isinstance(item, dict):
        raise OnCallError(f"{where}: expected {{ person = ..., start = ..., end = ... }}")
    person = item.get("person")
    if person not in people:
        raise OnCallError(f"{where}.person: no person {person!r} in [people]")
    start = _when(item.get("start"), f"{where}.start", tz)
    end = _when(item.get("end"), f"{where}.end", tz)
    if end <= start:
        raise OnCallError(f"{where}.end: must be later than start")
    return Override(person=str(person), start=start, end=end)


def _policy(
    key: str,
    item: Mapping[str, Any],
    people: Mapping[str, Person],
    teams: Mapping[str, Team],
    schedules: Mapping[str, Schedule],
) -> EscalationPolicy:
    where = f"policies.{key}"
    steps_raw = item.get("steps")
    if not isinstance(steps_raw, list) or not steps_raw:
        raise OnCallError(f"{where}.steps: expected a non-empty list of steps")
    known: dict[str, Mapping[str, Any]] = {"schedule": schedules, "team": teams, "person": people}
    steps: list[Step] = []
    for i, raw_step in enumerate(steps_raw):
        at = f"{where}.steps[{i}]"
        if not isinstance(raw_step, dict):
            raise OnCallError(f"{at}: expected {{ schedule|team|person = ..., wait_minutes = ... }}")
        kinds = [k for k in STEP_KINDS if k in raw_step]
        if len(kinds) != 1:
            raise OnCallError(f"{at}: name exactly one of schedule, team or person")
        kind = kinds[0]
        target = raw_step[kind]
        if target not in known[kind]:
            raise OnCallError(f"{at}.{kind}: no {kind} {target!r}")
        unknown = set(raw_step) - {kind, "wait_minutes"}
        if unknown:
            raise OnCallError(f"{at}: unknown key {sorted(unknown)[0]!r}")
        steps.append(Step(kind, target, _minutes(raw_step, f"{at}.wait_minutes")))  # type: ignore[arg-type]
    rounds = item.get("rounds", DEFAULT_ROUNDS)
    if isinstance(rounds, bool) or not isinstance(rounds, int) or not 1 <= rounds <= MAX_ROUNDS:
        raise OnCallError(f"{where}.rounds: expected a whole number from 1 to {MAX_ROUNDS}, got {rounds!r}")
    fallback = item.get("fallback")
    if fallback not in people:
        raise OnCallError(
            f"{where}.fallback: no person {fallback!r} in [people] (the final contact after the last round)"
        )
    return EscalationPolicy(
        key=key,
        name=_text(item, "name", where, required=False) or key,
        steps=tuple(steps),
        rounds=rounds,
        fallback=str(fallback),
    )


def _minutes(item: Mapping[str, Any], where: str) -> timedelta:
    value = item.get("wait_minutes", DEFAULT_WAIT.total_seconds() / 60)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 120:
        raise OnCallError(f"{where}: expected minutes between 0 and 120, got {value!r}")
    return timedelta(minutes=value)
