"""Escalations: starting one, claiming its steps round by round, the fallback, repeat cycles, "nobody reached".

The database is the source of truth. Each escalation step is claimed by
advancing ``Escalation.next_position`` with a compare-and-set UPDATE, in the
same transaction that writes one ``Page`` row per (ticket, round, step,
person, channel) under a unique key; only the claimer sends. Functions take the
session and "now" and leave the commit to the caller; nothing here talks to
Twilio or Redis.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session

from ticketing import audit as audit_log
from ticketing import outbox
from ticketing.calendar import BusinessCalendar
from ticketing.errors import InvalidTransition
from ticketing.models import Escalation, OutboxMessage, Page, Status, Ticket
from ticketing.oncall import OnCall, Person, Position, choose_policy, load_oncall
from ticketing.paging import rules
from ticketing.paging.states import (
    ACKNOWLEDGEABLE,
    ACTOR,
    CANCELLED,
    CLAIMED,
    EMAIL,
    EXHAUSTED,
    FOLLOW_UP,
    PAGING,
    PHONE_CHANNELS,
    RETRYING,
    STOPPED,
    delivery_of,
    page_delivered,
)
from ticketing.priority import Priority


@dataclass(frozen=True)
class Claim:
    """A claimed escalation step: the pages to send now, and when the next step falls due."""

    ticket: int
    position: Position
    page_ids: tuple[int, ...]
    next_position: int | None
    next_due_at: datetime | None
    cycle: int = 0


_cache: dict[Path, tuple[int, OnCall]] = {}


def oncall_from(path: Path) -> OnCall:
    """The on-call file, validated; reloaded when it changes on disk (so an override needs no restart)."""
    path = Path(path)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        stamp = -1
    cached = _cache.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    config = load_oncall(path)
    _cache[path] = (stamp, config)
    return config


def audit(
    session: Session, ticket: Ticket, *, action: str, now: datetime, detail: dict[str, Any], reason: str | None = None
) -> None:
    """An entry in the ticket's audit log by paging itself (not by a person)."""
    audit_log.audit(session, ticket, actor=ACTOR, action=action, now=now, detail=detail, reason=reason)


def lock_ticket(session: Session, ticket_id: int) -> None:
    """Lock the ticket's row first in every paging write, so concurrent acks, sends and callbacks never deadlock."""
    session.execute(select(Ticket.id).where(Ticket.id == ticket_id).with_for_update())


def escalation_of(session: Session, ticket: Ticket, *, for_update: bool = False) -> Escalation | None:
    """The ticket's escalation, if paging ever started."""
    query = select(Escalation).where(Escalation.ticket_id == ticket.id)
    if for_update:
        query = query.with_for_update()
    return session.scalars(query).first()


def start_escalation(
    session: Session,
    ticket: Ticket,
    *,
    oncall: OnCall,
    calendar: BusinessCalendar,
    now: datetime,
    horizon: timedelta = timedelta(hours=1),
    withheld: bool = False,
) -> Escalation:
    """The ticket's escalation, created once with its first step due now (business-hours or after-hours policy).

    While nobody has been reached it repeats until ``horizon`` after the ticket's first-response target.
    """
    existing = escalation_of(session, ticket)
    if existing is not None:
        return existing
    business_hours = calendar.is_business_hours(now)
    policy = choose_policy(oncall, now, calendar)
    escalation = Escalation(
        ticket_id=ticket.id,
        policy=policy.key,
        business_hours=business_hours,
        state=PAGING,
        started_at=now,
        next_position=0,
        next_due_at=now,
        cycle=0,
        repeat_until=rules.repeat_until(ticket.milestone("first_response").due_at, now=now, horizon=horizon),
        withheld_caller=withheld,
    )
    session.add(escalation)
    audit(
        session,
        ticket,
        action="paging started",
        now=now,
        detail={
            "policy": policy.key,
            "business_hours": business_hours,
            "steps": [s.label for s in policy.steps],
            "rounds": policy.rounds,
        },
    )
    session.flush()
    return escalation


def positions_of(escalation: Escalation, oncall: OnCall) -> tuple[Position, ...]:
    """The escalation's positions under its policy (or, if the policy was renamed, the one for its hours)."""
    return rules.positions_for(oncall, escalation.policy, escalation.business_hours)


def stop_if_not_pageable(session: Session, ticket: Ticket, escalation: Escalation, now: datetime) -> bool:
    """Stop paging a ticket that was resolved, closed or re-triaged below P1; True when stopped."""
    if rules.still_paged(
        is_open=Status(ticket.status).is_open, priority=ticket.priority, merged=ticket.merged_into_id is not None
    ):
        return False
    stopped = session.execute(
        update(Escalation)
        .where(Escalation.id == escalation.id, Escalation.state.in_(ACKNOWLEDGEABLE))
        .values(state=STOPPED, next_due_at=None, ended_at=now)
    ).rowcount
    if stopped:
        cancel_claims(session, escalation.id, now)
        audit(
            session,
            ticket,
            action="paging stopped",
            now=now,
            detail={"status": ticket.status, "priority": ticket.priority},
        )
    return True


def claim_step(
    session: Session,
    ticket: Ticket,
    escalation: Escalation,
    position_index: int,
    *,
    oncall: OnCall,
    now: datetime,
    email: bool = True,
) -> Claim | None:
    """Claim the step at ``position_index`` if it is due and unclaimed, writing its pages; None otherwise."""
    if not _due(escalation, position_index, now):
        return None
    positions = positions_of(escalation, oncall)
    if position_index >= len(positions):
        return None
    position = positions[position_index]
    last = rules.is_last(positions, position_index)
    next_due = rules.next_due_after(positions, position_index, now)
    claimed = session.execute(
        update(Escalation)
        .where(
            Escalation.id == escalation.id,
            Escalation.state == PAGING,
            Escalation.next_position == position_index,
        )
        .values(next_position=position_index + 1, next_due_at=next_due)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not claimed:
        return None
    session.refresh(escalation)
    if position_index > 0 or escalation.cycle > 0:
        _mark_unreached(session, ticket, escalation, now)
    people = oncall.people_for(position.target, now)
    channels = rules.page_channels(people, email=email)
    _supersede(session, escalation, [(p.key, c) for p, c in channels], now)
    pages = [_add_page(session, escalation, ticket, position, person, channel, now) for person, channel in channels]
    session.flush()
    audit(
        session,
        ticket,
        action="paged",
        now=now,
        detail={
            "position": position.label,
            "target": position.target.label,
            "people": [p.name for p in people],
            "channels": sorted({c for _p, c in channels}),
            "cycle": escalation.cycle + 1,
            "next_step_at": None if last else next_due.isoformat(),
        },
    )
    return Claim(
        ticket=int(ticket.number or 0),
        position=position,
        page_ids=tuple(p.id for p in pages),
        next_position=position_index + 1,
        next_due_at=next_due,
        cycle=escalation.cycle,
    )


def finish_cycle(
    session: Session, ticket: Ticket, escalation: Escalation, position_index: int, *, oncall: OnCall, now: datetime
) -> str | None:
    """After the fallback's wait: "exhausted" once anyone was reached (or past the horizon), else "repeat".

    Never "exhausted" while no page was delivered and the horizon has not passed: the escalation
    starts again at round 1 (a new cycle) and the ticket stays in "nobody reached". None: not due.
    """
    positions = positions_of(escalation, oncall)
    if position_index != len(positions) or not _due(escalation, position_index, now):
        return None
    reached = delivery_of(escalation).delivered > 0
    horizon = escalation.repeat_until
    repeat = rules.repeats(reached=reached, repeat_until=horizon, now=now)
    values: dict[str, object] = (
        {"next_position": 0, "next_due_at": now, "cycle": escalation.cycle + 1}
        if repeat
        else {"state": EXHAUSTED, "next_due_at": None}
    )
    won = session.execute(
        update(Escalation)
        .where(Escalation.id == escalation.id, Escalation.state == PAGING, Escalation.next_position == position_index)
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not won:
        return None
    session.refresh(escalation)
    if repeat:
        _mark_unreached(session, ticket, escalation, now)
        audit(
            session,
            ticket,
            action="paging repeated",
            now=now,
            detail={"cycle": escalation.cycle + 1, "until": horizon.isoformat() if horizon else None, "alert": True},
            reason="no page has been delivered to anyone yet: the escalation starts again at round 1",
        )
        return "repeat"
    fallback = [p.person_name for p in escalation.pages if p.position == position_index - 1 and page_delivered(p)]
    audit(
        session,
        ticket,
        action="escalation exhausted",
        now=now,
        detail={"fallback": sorted(set(fallback)), "nobody_reached": not reached, "alert": True},
        reason="nobody acknowledged after every round of the escalation policy"
        + ("" if reached else "; no page was delivered before the paging horizon"),
    )
    return "exhausted"


def _due(escalation: Escalation, position_index: int, now: datetime) -> bool:
    """The escalation waits at ``position_index`` and that wait is over (``rules.step_due``)."""
    return rules.step_due(
        state=escalation.state,
        next_position=escalation.next_position,
        next_due_at=escalation.next_due_at,
        index=position_index,
        now=now,
    )


def _mark_unreached(session: Session, ticket: Ticket, escalation: Escalation, now: datetime) -> None:
    """A step's wait passed: if no page has been delivered yet, the ticket shows "paging failed — nobody reached"."""
    if escalation.unreached_since is not None or escalation.acknowledged_at is not None:
        return
    counts = delivery_of(escalation)
    if counts.delivered:
        return
    escalation.unreached_since = now
    audit(
        session,
        ticket,
        action="nobody reached",
        now=now,
        detail={"pages_delivered": 0, "pages": counts.total, "alert": True},
        reason="paging failed: no page has been delivered to anyone yet; paging goes on",
    )


def _supersede(session: Session, escalation: Escalation, targets: Sequence[tuple[str, str]], now: datetime) -> None:
    """A new page to the same person on the same channel replaces one still waiting for the provider to come back."""
    for page in escalation.pages:
        if page.state == RETRYING and (page.person, page.channel) in targets:
            page.state = CANCELLED
            page.next_try_at = None
            page.error = ((page.error or "") + " (superseded by a later page)")[:1000]
            page.updated_at = now


def _add_page(
    session: Session,
    escalation: Escalation,
    ticket: Ticket,
    position: Position,
    person: Person,
    channel: str,
    now: datetime,
) -> Page:
    page = Page(
        escalation_id=escalation.id,
        key=rules.page_key(ticket.number, escalation.cycle, position, person.key, channel),
        position=position.index,
        round=position.round,
        step=position.step,
        person=person.key,
        person_name=person.name[:120],
        to_number="" if channel == EMAIL else person.mobile,
        to_address=person.email if channel == EMAIL else None,
        channel=channel,
        state=CLAIMED,
        claimed_at=now,
        tries=0,
        updated_at=now,
    )
    session.add(page)
    return page


def hurry(session: Session, escalation: Escalation, position_index: int, now: datetime) -> bool:
    """Make the step at ``position_index`` due now (everyone of the previous step is unreachable)."""
    return bool(
        session.execute(
            update(Escalation)
            .where(
                Escalation.id == escalation.id,
                Escalation.state == PAGING,
                Escalation.next_position == position_index,
                Escalation.next_due_at > now,
            )
            .values(next_due_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
    )


def step_unreachable(session: Session, escalation_id: int, position_index: int) -> bool:
    """True when every person paged at this position is unreachable on every phone channel.

    Only a failure about the number counts, never a provider's (``rules.everyone_unreachable``).
    """
    pages = session.scalars(
        select(Page).where(
            Page.escalation_id == escalation_id, Page.position == position_index, Page.channel.in_(PHONE_CHANNELS)
        )
    ).all()
    return rules.everyone_unreachable(pages)


def due_steps(session: Session, now: datetime, limit: int = 100) -> list[tuple[int, int]]:
    """(ticket number, position) of every escalation step that is due, oldest first."""
    rows = session.execute(
        select(Ticket.number, Escalation.next_position)
        .join(Ticket, Ticket.id == Escalation.ticket_id)
        .where(Escalation.state == PAGING, Escalation.next_due_at.is_not(None), Escalation.next_due_at <= now)
        .order_by(Escalation.next_due_at)
        .limit(limit)
    ).all()
    return [(int(n), int(p)) for n, p in rows if n is not None]


def unstarted_pages(session: Session, before: datetime, limit: int = 100) -> list[int]:
    """Ticket numbers whose page request is older than ``before`` but whose paging never started (job lost)."""
    rows = session.execute(
        select(OutboxMessage.payload)
        .where(
            OutboxMessage.kind == outbox.PAGE,
            OutboxMessage.completed_at.is_(None),
            OutboxMessage.created_at <= before,
        )
        .order_by(OutboxMessage.id)
        .limit(limit)
    ).all()
    numbers = [int(p["ticket"]) for (p,) in rows if isinstance(p, dict) and "ticket" in p]
    if not numbers:
        return []
    started = session.scalars(
        select(Ticket.number).where(Ticket.number.in_(numbers), exists().where(Escalation.ticket_id == Ticket.id))
    ).all()
    return [n for n in numbers if n not in set(started)]


def cancel_claims(session: Session, escalation_id: int, now: datetime) -> None:
    session.execute(
        update(Page)
        .where(Page.escalation_id == escalation_id, Page.state.in_((CLAIMED, RETRYING)), Page.channel != FOLLOW_UP)
        .values(state=CANCELLED, next_try_at=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )


def page_again(session: Session, ticket: Ticket, *, by: str, now: datetime) -> Escalation:
    """Restart the escalation from round 1 step 1 now (a new cycle); audited. Raises InvalidTransition."""
    lock_ticket(session, ticket.id)
    escalation = escalation_of(session, ticket, for_update=True)
    if escalation is None or not escalation.policy:
        raise InvalidTransition(f"ticket {ticket.number} has no escalation to restart")
    if not Status(ticket.status).is_open or ticket.priority != Priority.P1.value:
        raise InvalidTransition(f"ticket {ticket.number} is {ticket.priority} {ticket.status}: nothing to page")
    if escalation.acknowledged_at is not None:
        raise InvalidTransition(f"ticket {ticket.number} was acknowledged by {escalation.acknowledged_by}")
    cancel_claims(session, escalation.id, now)
    session.execute(
        update(Escalation)
        .where(Escalation.id == escalation.id)
        .values(
            state=PAGING,
            next_position=0,
            next_due_at=now,
            cycle=Escalation.cycle + 1,
            ended_at=None,
            repeat_until=func.coalesce(Escalation.repeat_until, now),
        )
        .execution_options(synchronize_session=False)
    )
    session.refresh(escalation)
    escalation.repeat_until = rules.restart_until(escalation.repeat_until, now)
    audit_log.audit(session, ticket, actor=by, action="page again", now=now, detail={"cycle": escalation.cycle + 1})
    return escalation


def escalate_now(session: Session, ticket: Ticket, *, by: str, now: datetime) -> Escalation:
    """Make the next step due at once; audited. Raises InvalidTransition when no step is to come."""
    lock_ticket(session, ticket.id)
    escalation = escalation_of(session, ticket, for_update=True)
    if escalation is None or escalation.state != PAGING or escalation.acknowledged_at is not None:
        raise InvalidTransition(f"ticket {ticket.number} has no escalation step to come (restart it: page again)")
    escalation.next_due_at = now
    audit_log.audit(
        session, ticket, actor=by, action="escalated now", now=now, detail={"position": escalation.next_position}
    )
    return escalation
