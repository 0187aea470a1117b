"""Escalation rules: which positions a policy has, whether a step is due and when the next one falls due, whom a
step pages on which channels, whether a finished cycle repeats or the escalation is exhausted, how long it repeats.

Pure: no framework, no clock, no session. Every function takes plain values and ``now``;
``ticketing.paging.escalation`` stores what they decide.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ticketing.oncall import OnCall, Person, Position
from ticketing.paging.states import EMAIL, PAGING, PHONE_CHANNELS, page_failed
from ticketing.priority import Priority

if TYPE_CHECKING:
    from ticketing.models import Page

# A scheduled job may fire a little before the database's clock says the step is due.
EARLY_TOLERANCE = timedelta(seconds=2)
# A restart by hand ("page again") repeats for at least this long after the restart.
RESTART_GRACE = timedelta(hours=1)


def positions_for(oncall: OnCall, policy: str, business_hours: bool) -> tuple[Position, ...]:
    """The positions of the escalation policy called ``policy`` (or, if it was renamed, the one for its hours)."""
    chosen = oncall.policies.get(policy) or oncall.policy_for(business_hours)
    return chosen.positions()


def repeat_until(first_response_due: datetime | None, *, now: datetime, horizon: timedelta) -> datetime:
    """Until when a new escalation repeats while nobody is reached: ``horizon`` after the first-response target
    (after ``now`` when the ticket has none)."""
    return (first_response_due or now) + horizon


def step_due(*, state: str, next_position: int, next_due_at: datetime | None, index: int, now: datetime) -> bool:
    """True when the escalation is paging, waits at position ``index`` and that wait is over.

    A step counts as due up to ``EARLY_TOLERANCE`` before its time: a scheduled job may fire that early.
    """
    if state != PAGING or next_position != index:
        return False
    return next_due_at is not None and next_due_at <= now + EARLY_TOLERANCE


@dataclass(frozen=True)
class NextPage:
    """Whom an escalation pages next and when: the people of the step it waits at, at that step's due time."""

    people: tuple[Person, ...]
    at: datetime
    fallback: bool


def next_page(
    oncall: OnCall,
    positions: Sequence[Position],
    *,
    state: str,
    next_position: int,
    next_due_at: datetime | None,
) -> NextPage | None:
    """Whom the escalation waiting at ``next_position`` pages next and when; None once it pages nobody more.

    After the fallback nobody is named: whether the cycle repeats is decided only when its wait is over.
    """
    if state != PAGING or next_due_at is None or not 0 <= next_position < len(positions):
        return None
    position = positions[next_position]
    return NextPage(oncall.people_for(position.target, next_due_at), next_due_at, position.is_fallback)


def is_last(positions: Sequence[Position], index: int) -> bool:
    """True for the last position (the fallback): once its wait is over, the cycle is finished."""
    return index == len(positions) - 1


def next_due_after(positions: Sequence[Position], index: int, now: datetime) -> datetime:
    """When the step after position ``index``, claimed ``now``, falls due: after that position's wait.

    After the fallback, as long as a first step's wait before deciding: exhausted, or round 1 again.
    """
    return now + (positions[0].wait if is_last(positions, index) else positions[index].wait)


def page_channels(people: Iterable[Person], *, email: bool) -> list[tuple[Person, str]]:
    """Whom a step pages on which channel: everyone by SMS and call, then (with ``email``) those with an address."""
    people = tuple(people)
    channels = [(person, channel) for person in people for channel in PHONE_CHANNELS]
    if email:
        channels += [(person, EMAIL) for person in people if person.email]
    return channels


def page_key(ticket_number: int | None, cycle: int, position: Position, person: str, channel: str) -> str:
    """A page's unique key, ``<ticket>:[c<cycle>:]<round>:<step>:<person>:<channel>``: one row, so one send, each."""
    repeat = f"c{cycle}:" if cycle else ""
    return f"{ticket_number}:{repeat}{position.round}:{position.step}:{person}:{channel}"


def repeats(*, reached: bool, repeat_until: datetime | None, now: datetime) -> bool:
    """After the fallback's wait: True to start round 1 again, False when the escalation is exhausted.

    It repeats only while nobody has been reached and the horizon has not passed; an escalation
    with no horizon (started before repeat cycles existed) never repeats.
    """
    return not reached and repeat_until is not None and now < repeat_until


def restart_until(repeat_until: datetime | None, now: datetime) -> datetime | None:
    """The horizon of an escalation restarted by hand at ``now``: at least ``RESTART_GRACE`` away (None stays None)."""
    if repeat_until is not None and repeat_until < now + RESTART_GRACE:
        return now + RESTART_GRACE
    return repeat_until


def still_paged(*, is_open: bool, priority: str, merged: bool) -> bool:
    """True while a ticket is paged: open, P1 and not merged into another; otherwise its paging stops."""
    return is_open and priority == Priority.P1.value and not merged


def everyone_unreachable(pages: Iterable[Page]) -> bool:
    """True when a step's phone pages exist and every person paged failed on each of them.

    Only a failure about the number counts (state "failed"); a provider failure ("retrying")
    never makes a step unreachable, so failing sends never speed the escalation up.
    """
    by_person: dict[str, list[Page]] = {}
    for page in pages:
        by_person.setdefault(page.person, []).append(page)
    return bool(by_person) and all(all(page_failed(p) for p in group) for group in by_person.values())
