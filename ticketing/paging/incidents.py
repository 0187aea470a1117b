"""One on-call person's incidents: the open P1s paging them now, and those they acknowledged."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session, selectinload

from ticketing.models import OPEN_STATUSES, Escalation, Page, Ticket
from ticketing.paging.states import ACKNOWLEDGEABLE
from ticketing.priority import Priority


@dataclass(frozen=True)
class Incident:
    """A P1 of one person: paging them (nobody has acknowledged it yet) or acknowledged by them."""

    ticket: Ticket
    escalation: Escalation

    @property
    def paging(self) -> bool:
        """Still paging: nobody has acknowledged it."""
        return self.escalation.acknowledged_at is None


def incidents_for(session: Session, person: str) -> list[Incident]:
    """The open P1s paging on-call ``person`` (a page went to them) or acknowledged by them; paging first, newest first.

    A P1 someone else acknowledged is theirs, not this person's, even if it paged this person first.
    """
    paged_them = exists().where(Page.escalation_id == Escalation.id, Page.person == person)
    rows = session.execute(
        select(Ticket, Escalation)
        .join(Escalation, Escalation.ticket_id == Ticket.id)
        .where(
            Ticket.status.in_(OPEN_STATUSES),
            Ticket.merged_into_id.is_(None),
            Ticket.priority == Priority.P1.value,
            or_(
                and_(Escalation.acknowledged_at.is_(None), Escalation.state.in_(ACKNOWLEDGEABLE), paged_them),
                Escalation.acknowledged_person == person,
            ),
        )
        .options(selectinload(Ticket.client))
        .order_by(Escalation.acknowledged_at.is_not(None), Escalation.started_at.desc(), Escalation.id.desc())
    ).all()
    return [Incident(ticket, escalation) for ticket, escalation in rows]
