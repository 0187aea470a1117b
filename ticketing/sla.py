"""The SLA engine: due times of a ticket's milestones under the support policy.

Public, stable entry points::

    from ticketing.sla import deadlines, is_business_hours

Pure code: no framework imports and no reading of the clock; "now" is always
an argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

from ticketing.calendar import BusinessCalendar, require_aware
from ticketing.policy import MILESTONES, SupportPolicy, load_policy
from ticketing.priority import Priority

BUNDLED_POLICY_FILE = Path(__file__).resolve().parent.parent / "config" / "support-policy.toml"

# Milestone states, as the console shows them.
MET = "met"
MET_LATE = "met late"
BREACHED = "breached"
AT_RISK = "at risk"
ON_TRACK = "on track"
PAUSED = "paused"
BEST_EFFORT = "best effort"


@dataclass(frozen=True)
class Deadlines:
    """Due times of the three milestones; None means best effort (no due time)."""

    first_response: datetime | None
    resolution_plan: datetime | None
    resolved: datetime | None

    def as_dict(self) -> dict[str, datetime | None]:
        """The due times keyed by milestone name."""
        return {m: getattr(self, m) for m in MILESTONES}


@dataclass(frozen=True)
class Pause:
    """A 'waiting on client' interval; ``ended_at`` is None while still paused."""

    started_at: datetime
    ended_at: datetime | None = None


@lru_cache(maxsize=1)
def bundled_policy() -> SupportPolicy:
    """The policy shipped in config/support-policy.toml (the policy document's own terms)."""
    return load_policy(BUNDLED_POLICY_FILE)


@lru_cache(maxsize=8)
def calendar_for(policy: SupportPolicy) -> BusinessCalendar:
    """One calendar (with its holiday cache) per policy."""
    return BusinessCalendar(policy)


def is_business_hours(at: datetime, policy: SupportPolicy | None = None) -> bool:
    """True when ``at`` (timezone-aware) falls in business hours on a business day."""
    require_aware(at, "at")
    return calendar_for(policy or bundled_policy()).is_business_hours(at)


def deadlines(
    priority: Priority | str,
    opened_at: datetime,
    policy: SupportPolicy | None = None,
    *,
    pauses: Sequence[Pause] = (),
    extension: timedelta = timedelta(0),
) -> Deadlines:
    """Due times for a ticket of ``priority`` opened at ``opened_at``.

    Business-hours clocks opened after hours start at the next opening.
    Closed ``pauses`` push each milestone out by the clock time they covered
    (only pauses that began before that milestone fell due count); an open
    pause is ignored here, the caller shows the clock as paused. ``extension``
    (an exceptional event) is added to every target that has one.
    """
    prio = Priority.parse(priority)
    require_aware(opened_at, "opened_at")
    if extension < timedelta(0):
        raise ValueError("extension must not be negative")
    pol = policy or bundled_policy()
    cal = calendar_for(pol)
    target = pol.target(prio)
    dues: dict[str, datetime | None] = {}
    closed = sorted((p for p in pauses if p.ended_at is not None), key=lambda p: p.started_at)
    for milestone in MILESTONES:
        duration = target.for_milestone(milestone)
        if duration is None:
            dues[milestone] = None
            continue
        duration += extension
        due = cal.advance(target.clock, opened_at, duration)
        for pause in closed:
            assert pause.ended_at is not None
            if pause.started_at >= due:
                break
            duration += cal.elapsed(target.clock, max(pause.started_at, opened_at), pause.ended_at)
            due = cal.advance(target.clock, opened_at, duration)
        dues[milestone] = due
    return Deadlines(**dues)


def milestone_state(
    due: datetime | None,
    met_at: datetime | None,
    now: datetime,
    target: timedelta | None,
    *,
    paused: bool = False,
    at_risk_fraction: float = 0.25,
) -> str:
    """Classify one milestone: met, met late, breached, at risk, on track, paused or best effort."""
    require_aware(now, "now")
    if met_at is not None:
        return MET if due is None or met_at <= due else MET_LATE
    if due is None:
        return BEST_EFFORT
    if paused:
        return PAUSED
    if now > due:
        return BREACHED
    if target is not None and due - now <= target * at_risk_fraction:
        return AT_RISK
    return ON_TRACK
