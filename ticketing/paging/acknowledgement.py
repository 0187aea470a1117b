"""Acknowledging a page, by key press, SMS, the email page's link or the console: the escalation stops at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, select, update
from sqlalchemy.orm import Session

from ticketing import audit, lifecycle
from ticketing.errors import InvalidTransition
from ticketing.models import Escalation, Page, Status, Ticket
from ticketing.paging.escalation import cancel_claims, escalation_of, lock_ticket
from ticketing.paging.joined import joined_to
from ticketing.paging.states import ACKNOWLEDGEABLE, ACKNOWLEDGED, PAGING
from ticketing.priority import Priority


@dataclass(frozen=True)
class Acknowledgement:
    """Who acknowledged a ticket's page, how and when; ``already`` when an earlier ack stands."""

    ticket: int
    by: str
    via: str
    at: datetime
    already: bool = False


def acknowledge(
    session: Session,
    ticket: Ticket | int | str,
    by: str,
    now: datetime,
    via: str,
    *,
    person: str | None = None,
    counts_as_first_response: bool = True,
    assign: bool = True,
) -> Acknowledgement:
    """Acknowledge a ticket's page: every pending escalation step stops at once; audited; first response met.

    ``assign``: give an unassigned ticket to whoever acknowledged (False when that is a machine, not a person).
    Idempotent: a second acknowledgement returns the first with ``already`` set.
    Raises UnknownTicket, or InvalidTransition for a closed ticket or one never paged.
    """
    t = ticket if isinstance(ticket, Ticket) else lifecycle.get_ticket(session, ticket)
    lock_ticket(session, t.id)
    escalation = escalation_of(session, t, for_update=True)
    if escalation is not None and escalation.acknowledged_at is not None:
        return _existing(t, escalation)
    if not Status(t.status).is_open:
        raise InvalidTransition(f"ticket {t.number} is {t.status}")
    join = joined_to(session, t) if escalation is None else None
    if join is not None and join.escalation.ticket_id != t.id:
        # A repeat call's ticket: acknowledging it acknowledges the escalation it joined.
        audit.audit(session, t, actor=by.strip() or "unknown", action="acknowledged", now=now,
                      detail={"via": via, "person": person, "escalation_of": join.escalation.ticket.number})  # fmt: skip
        return acknowledge(
            session,
            join.escalation.ticket,
            by,
            now,
            via,
            person=person,
            counts_as_first_response=counts_as_first_response,
            assign=assign,
        )
    if escalation is None:
        escalation = _escalation_before_paging(session, t, now)
    who = by.strip() or "unknown"
    if not _win(session, escalation, who=who, person=person, via=via, now=now):
        return _existing(t, escalation)
    cancel_claims(session, escalation.id, now)
    audit.audit(
        session,
        t,
        actor=who,
        action="acknowledged",
        now=now,
        detail={"via": via, "person": person, "after_seconds": round((now - escalation.started_at).total_seconds())},
    )
    if counts_as_first_response:
        _meet_first_response(session, t, who=who, via=via, now=now)
    if assign and t.assignee is None:
        lifecycle.assign(session, t, who, actor=who, now=now)
    return Acknowledgement(ticket=int(t.number or 0), by=who, via=via, at=now)


def _escalation_before_paging(session: Session, ticket: Ticket, now: datetime) -> Escalation:
    """An empty escalation for a P1 acknowledged before its page job ran: the job will find nothing to page."""
    if ticket.priority != Priority.P1.value:
        raise InvalidTransition(f"ticket {ticket.number} is not being paged (it is {ticket.priority})")
    escalation = Escalation(
        ticket_id=ticket.id, policy="", business_hours=False, state=PAGING, started_at=now, next_position=0
    )
    session.add(escalation)
    session.flush()
    return escalation


def _win(session: Session, escalation: Escalation, *, who: str, person: str | None, via: str, now: datetime) -> bool:
    """Record the acknowledgement unless another won the race (compare-and-set on ``acknowledged_at``)."""
    won = session.execute(
        update(Escalation)
        .where(Escalation.id == escalation.id, Escalation.acknowledged_at.is_(None))
        .values(
            state=ACKNOWLEDGED if escalation.state in ACKNOWLEDGEABLE else escalation.state,
            next_due_at=None,
            acknowledged_at=now,
            acknowledged_by=who[:120],
            acknowledged_person=person,
            acknowledged_via=via[:16],
            ended_at=now,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(escalation)
    return bool(won)


def _meet_first_response(session: Session, ticket: Ticket, *, who: str, via: str, now: datetime) -> None:
    """An acknowledged page is the first response: the milestone is met and a new ticket becomes acknowledged."""
    if ticket.milestone("first_response").met_at is None:
        lifecycle.meet_milestone(
            session, ticket, "first_response", actor=who, now=now, note=f"page acknowledged by {via}"
        )
    if ticket.status == Status.NEW.value:
        ticket.status = Status.ACKNOWLEDGED.value
        audit.audit(
            session,
            ticket,
            actor=who,
            action="status changed",
            now=now,
            detail={"from": Status.NEW.value, "to": Status.ACKNOWLEDGED.value},
        )


def _existing(ticket: Ticket, escalation: Escalation) -> Acknowledgement:
    assert escalation.acknowledged_at is not None
    return Acknowledgement(
        ticket=int(ticket.number or 0),
        by=escalation.acknowledged_by or "unknown",
        via=escalation.acknowledged_via or "unknown",
        at=escalation.acknowledged_at,
        already=True,
    )


def paged_tickets_for(session: Session, number: str, *, since: datetime | None = None) -> list[tuple[Ticket, Page]]:
    """Tickets whose page went to ``number`` (E.164), most recently paged first, with that latest page."""
    query = (
        select(Ticket, Page)
        .join(Escalation, Escalation.ticket_id == Ticket.id)
        .join(Page, and_(Page.escalation_id == Escalation.id, Page.to_number == number))
        .order_by(Page.claimed_at.desc(), Page.id.desc())
    )
    if since is not None:
        query = query.where(Page.claimed_at >= since)
    seen: dict[int, tuple[Ticket, Page]] = {}
    for ticket, page in session.execute(query).all():
        seen.setdefault(ticket.id, (ticket, page))
    return list(seen.values())
