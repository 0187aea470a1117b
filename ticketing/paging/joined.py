"""Repeat calls: a new P1 from the same caller (or a withheld-number flood) joins the open escalation."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ticketing.models import Escalation, EscalationJoin, Page, Status, Ticket
from ticketing.paging.escalation import audit
from ticketing.paging.follow_ups import claimed_follow_up, follow_up_targets
from ticketing.paging.states import ACKNOWLEDGEABLE

ANOTHER_CALL_QUIET = timedelta(minutes=2)  # at most one "another call" text per escalation in this time


def open_escalation_to_join(
    session: Session,
    ticket: Ticket,
    *,
    withheld: bool,
    now: datetime,
    withheld_cap: int,
    window: timedelta,
) -> tuple[Escalation, str] | None:
    """The escalation a new P1 should join instead of paging again, and why; None: start its own.

    Same caller (withheld numbers count as one caller) with an escalation not yet acknowledged:
    join it. Withheld callers beyond ``withheld_cap`` escalations started in ``window``: join the
    latest open (or, if none is open, latest) withheld escalation. Never joins a resolved ticket's.
    """
    candidates = select(Escalation).join(Ticket, Ticket.id == Escalation.ticket_id).where(Ticket.id != ticket.id)
    open_ones = candidates.where(Escalation.state.in_(ACKNOWLEDGEABLE), Escalation.acknowledged_at.is_(None))
    if withheld:
        same = open_ones.where(Escalation.withheld_caller.is_(True))
    elif ticket.caller_number:
        same = open_ones.where(Ticket.caller_number == ticket.caller_number, Escalation.withheld_caller.is_(False))
    else:
        return None
    found = session.scalars(same.order_by(Escalation.started_at.desc(), Escalation.id.desc()).limit(1)).first()
    if found is not None:
        return found, "same caller"
    if not withheld:
        return None
    recent = session.scalar(
        select(func.count(Escalation.id)).where(
            Escalation.withheld_caller.is_(True), Escalation.started_at > now - window, Escalation.policy != ""
        )
    )
    if (recent or 0) < withheld_cap:
        return None
    latest = session.scalars(
        candidates.where(Escalation.withheld_caller.is_(True), Escalation.policy != "")
        .where(Ticket.status.in_([s.value for s in Status if s.is_open]))
        .order_by(Escalation.started_at.desc(), Escalation.id.desc())
        .limit(1)
    ).first()
    return (latest, "withheld cap") if latest is not None else None


def join_escalation(
    session: Session, ticket: Ticket, escalation: Escalation, *, why: str, now: datetime, tz: Any = None
) -> list[Page]:
    """Link ``ticket`` to ``escalation`` (audited on both tickets) and claim one follow-up SMS per person paged."""
    session.add(EscalationJoin(ticket_id=ticket.id, escalation_id=escalation.id, joined_at=now, why=why))
    main = escalation.ticket
    audit(
        session,
        ticket,
        action="joined escalation",
        now=now,
        detail={"into": main.number, "why": why},
        reason=f"paging for this call joined the open escalation of ticket #{main.number} instead of paging again",
    )
    audit(session, main, action="another call", now=now, detail={"ticket": ticket.number, "why": why})
    pages: list[Page] = []
    recent = session.scalar(
        select(func.count(Page.id)).where(
            Page.escalation_id == escalation.id,
            Page.key.contains(":call:"),
            Page.claimed_at > now - ANOTHER_CALL_QUIET,
        )
    )
    if recent:
        return pages  # a flood of calls: one "another call" text per quiet period, every call audited
    for person in follow_up_targets(session, escalation):
        key = f"{main.number}:call:{ticket.number}:{person[0]}"
        page = claimed_follow_up(escalation, key, person, now)
        session.add(page)
        pages.append(page)
    session.flush()
    return pages


def joined_to(session: Session, ticket: Ticket) -> EscalationJoin | None:
    """The escalation this ticket's paging joined, if it did."""
    return session.scalars(select(EscalationJoin).where(EscalationJoin.ticket_id == ticket.id)).first()


def joined_from(session: Session, escalation: Escalation) -> list[EscalationJoin]:
    """The tickets whose paging joined this escalation, oldest first."""
    return list(
        session.scalars(
            select(EscalationJoin).where(EscalationJoin.escalation_id == escalation.id).order_by(EscalationJoin.id)
        ).all()
    )
