"""Exceptional events (the policy's "Extended Response Times"): every open ticket's targets move out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ticketing.audit import audit, due_times
from ticketing.calendar import require_aware
from ticketing.errors import InvalidInput, InvalidTransition
from ticketing.milestones import recompute_milestones
from ticketing.models import OPEN_STATUSES, ExceptionalEvent, Ticket
from ticketing.policy import SupportPolicy

MAX_EXTENSION = timedelta(days=7)


def active_exceptional_events(session: Session, now: datetime) -> Sequence[ExceptionalEvent]:
    """Exceptional events in force at ``now``, oldest first."""
    return session.scalars(
        select(ExceptionalEvent)
        .where(ExceptionalEvent.started_at <= now)
        .where((ExceptionalEvent.ended_at.is_(None)) | (ExceptionalEvent.ended_at > now))
        .order_by(ExceptionalEvent.started_at, ExceptionalEvent.id)
    ).all()


def apply_exceptional_events(session: Session, ticket: Ticket, *, policy: SupportPolicy, now: datetime) -> None:
    """A ticket opened during exceptional events gets their extensions too; audited."""
    with session.no_autoflush:
        events = active_exceptional_events(session, now)
    if not events:
        return
    extra = sum(e.extension_seconds for e in events)
    ticket.sla_extension_seconds = (ticket.sla_extension_seconds or 0) + extra
    recompute_milestones(ticket, policy)
    audit(
        session,
        ticket,
        actor="support line",
        action="exceptional event",
        now=now,
        detail={
            "events": [e.id for e in events],
            "extension_seconds": extra,
            "due_after": due_times(ticket),
        },
        reason="; ".join(e.reason for e in events),
    )


def declare_exceptional_event(
    session: Session,
    *,
    reason: str,
    extension: timedelta,
    actor: str,
    now: datetime,
    policy: SupportPolicy,
) -> ExceptionalEvent:
    """Declare an exceptional event: every open ticket's targets move out by ``extension``, each audited."""
    require_aware(now, "now")
    if not reason or not reason.strip():
        raise InvalidInput("an exceptional event needs a reason")
    if extension <= timedelta(0) or extension > MAX_EXTENSION:
        raise InvalidInput("the extension must be more than 0 and at most 168 hours")
    event = ExceptionalEvent(
        reason=reason.strip(),
        extension_seconds=int(extension.total_seconds()),
        started_at=now,
        declared_by=actor[:120],
    )
    session.add(event)
    session.flush()
    tickets = session.scalars(
        select(Ticket)
        .where(Ticket.status.in_(OPEN_STATUSES), Ticket.merged_into_id.is_(None))
        .options(selectinload(Ticket.milestones), selectinload(Ticket.pauses))
        .order_by(Ticket.id)
    ).all()
    for ticket in tickets:
        before = due_times(ticket)
        ticket.sla_extension_seconds = (ticket.sla_extension_seconds or 0) + event.extension_seconds
        recompute_milestones(ticket, policy)
        audit(
            session,
            ticket,
            actor=actor,
            action="exceptional event",
            now=now,
            detail={
                "events": [event.id],
                "extension_seconds": event.extension_seconds,
                "due_before": before,
                "due_after": due_times(ticket),
            },
            reason=event.reason,
        )
    return event


def end_exceptional_event(session: Session, event_id: int, *, actor: str, now: datetime) -> ExceptionalEvent:
    """End an event: tickets opened from now on get no extension (those already extended keep theirs)."""
    event = session.get(ExceptionalEvent, event_id)
    if event is None:
        raise InvalidInput(f"no exceptional event {event_id}")
    if event.ended_at is not None and event.ended_at <= now:
        raise InvalidTransition(f"exceptional event {event_id} has already ended")
    event.ended_at = now
    event.ended_by = actor[:120]
    return event
