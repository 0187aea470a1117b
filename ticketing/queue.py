"""The open queue: its order and filters, the search, and the one definition of a breached milestone.

A milestone is breached when it was met after its due time, or is unmet and its due time has passed
while its clock ran. Waiting on the client stops the clock (the policy's "Client Responsibilities": the
client's delay delays the commitment), so a paused ticket's unmet milestone counts as breached only when
it fell due before the pause began: a breach already made stays one, time spent waiting never makes one.
The console's "Breached" filter, the API's ``breached=true``, ``/metrics`` and ``flask sla breaching``
all ask this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, String, and_, cast, func, or_, select
from sqlalchemy.orm import Session, selectinload

from ticketing.calendar import require_aware
from ticketing.models import OPEN_STATUSES, AuditEntry, Client, Milestone, Status, Ticket
from ticketing.priority import Priority

ENDED_LIMIT = 200  # resolved or closed tickets (and searches) list the most recently updated this many


def breached(now: datetime) -> ColumnElement[bool]:
    """The SQL condition on Milestone (joined to its Ticket) that the milestone is breached at ``now``."""
    overdue_while_running = or_(
        and_(Ticket.paused_at.is_(None), Milestone.due_at < now),
        and_(Ticket.paused_at.is_not(None), Milestone.due_at < Ticket.paused_at),
    )
    return and_(
        Milestone.due_at.is_not(None),
        or_(Milestone.met_in_time.is_(False), and_(Milestone.met_at.is_(None), overdue_while_running)),
    )


def overdue(now: datetime) -> ColumnElement[bool]:
    """The unmet half of ``breached``: a milestone still open and past its due time while its clock ran."""
    return and_(Milestone.met_at.is_(None), breached(now))


def breached_tickets(now: datetime) -> Select[tuple[int]]:
    """The ids of tickets with a breached milestone at ``now``."""
    return select(Milestone.ticket_id).join(Ticket, Ticket.id == Milestone.ticket_id).where(breached(now))


def breached_among(session: Session, tickets: Sequence[Ticket], now: datetime) -> set[int]:
    """The ids of those of ``tickets`` that have a breached milestone at ``now``."""
    ids = [t.id for t in tickets]
    if not ids:
        return set()
    return set(session.scalars(breached_tickets(now).where(Milestone.ticket_id.in_(ids))))


@dataclass(frozen=True)
class QueueFilter:
    """Filters of the open queue; None means any."""

    priority: str | None = None
    status: str | None = None
    client_id: int | None = None
    assignee: str | None = None
    breached_at: datetime | None = None  # only tickets with a milestone breached at this time (``breached``)
    language: str | None = None  # chosen on the call, or spoken in the message (e.g. "es")


def in_language(code: str) -> Any:
    """Tickets in a language: the caller chose it on the call, or spoke it in the message."""
    return (Ticket.language == code) | (Ticket.transcript_language == code)


@dataclass(frozen=True)
class QueuePosition:
    """A ticket's place in the open queue's order: priority, time of submission, then id (unique)."""

    priority: str
    opened_at: datetime
    id: int

    @classmethod
    def of(cls, ticket: Ticket) -> QueuePosition:
        """Where ``ticket`` stands in the queue."""
        return cls(ticket.priority, ticket.opened_at, ticket.id)


def open_queue(
    session: Session,
    filters: QueueFilter | None = None,
    *,
    after: QueuePosition | None = None,
    limit: int | None = None,
) -> Sequence[Ticket]:
    """Open tickets, first come first served: by priority, then by time of submission.

    ``after`` and ``limit`` read the queue a page at a time (keyset pagination): the tickets that come
    after that place in the same order. The id breaks ties, so a walk from page to page sees each
    ticket once, however many tickets are opened meanwhile (they come after the tickets of the same
    priority, or before the walk's place if more urgent).
    """
    f = filters or QueueFilter()
    query = _filtered(
        select(Ticket)
        .where(Ticket.status.in_(OPEN_STATUSES), Ticket.merged_into_id.is_(None))
        .options(selectinload(Ticket.milestones), selectinload(Ticket.client))
        .order_by(Ticket.priority, Ticket.opened_at, Ticket.id),
        f,
    )
    if after is not None:
        # The row-value comparison (priority, opened_at, id) > (...), spelt out for every database.
        query = query.where(
            (Ticket.priority > after.priority)
            | (
                (Ticket.priority == after.priority)
                & (
                    (Ticket.opened_at > after.opened_at)
                    | ((Ticket.opened_at == after.opened_at) & (Ticket.id > after.id))
                )
            )
        )
    if limit is not None:
        query = query.limit(limit)
    return session.scalars(query).all()


def _filtered(query: Select[Any], f: QueueFilter) -> Select[Any]:
    """``query`` narrowed by the filters every listing shares."""
    if f.priority:
        query = query.where(Ticket.priority == Priority.parse(f.priority).value)
    if f.status:
        query = query.where(Ticket.status == Status(f.status).value)
    if f.client_id:
        query = query.where(Ticket.client_id == f.client_id)
    if f.assignee:
        query = query.where(Ticket.assignee == f.assignee)
    if f.language:
        query = query.where(in_language(f.language))
    if f.breached_at is not None:
        query = query.where(Ticket.id.in_(breached_tickets(f.breached_at)))
    return query


def count_open(session: Session, filters: QueueFilter) -> int:
    """How many tickets ``open_queue`` lists under ``filters`` (``/metrics`` counts the breached ones)."""
    query = select(func.count(Ticket.id)).where(Ticket.status.in_(OPEN_STATUSES), Ticket.merged_into_id.is_(None))
    return session.scalar(_filtered(query, filters)) or 0


def find_tickets(
    session: Session,
    filters: QueueFilter,
    *,
    statuses: Sequence[str] = OPEN_STATUSES,
    text: str = "",
    unassigned: bool = False,
) -> list[Ticket]:
    """The console's listing: the open queue (any order), or tickets of ``statuses`` newest first, searched.

    ``unassigned`` keeps only tickets nobody is assigned to.
    """
    open_only = set(statuses) <= set(OPEN_STATUSES)
    if open_only and not text:
        tickets = list(open_queue(session, filters))
    else:
        stmt = (
            select(Ticket)
            .where(Ticket.status.in_(statuses))
            .options(selectinload(Ticket.milestones), selectinload(Ticket.client), selectinload(Ticket.contact))
        )
        if open_only:
            stmt = stmt.where(Ticket.merged_into_id.is_(None))
        stmt = _filtered(stmt, filters)
        if text:
            stmt = stmt.where(search(text))
        stmt = stmt.order_by(Ticket.updated_at.desc(), Ticket.id.desc()).limit(ENDED_LIMIT)
        tickets = list(session.scalars(stmt).all())
    if unassigned:
        tickets = [t for t in tickets if t.assignee is None]
    return tickets


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search(text: str) -> Any:
    """Number, caller, client, summary, transcript, description or a note containing ``text``."""
    like = _like(text)
    notes = select(AuditEntry.ticket_id).where(
        AuditEntry.action == "note", cast(AuditEntry.detail, String).ilike(like, escape="\\")
    )
    clients = select(Client.id).where(Client.name.ilike(like, escape="\\"))
    conditions = [
        Ticket.summary.ilike(like, escape="\\"),
        Ticket.description.ilike(like, escape="\\"),
        Ticket.transcript.ilike(like, escape="\\"),
        Ticket.caller_number.ilike(like, escape="\\"),
        Ticket.assignee.ilike(like, escape="\\"),
        Ticket.client_id.in_(clients),
        Ticket.id.in_(notes),
    ]
    digits = "".join(ch for ch in text if ch.isdigit())
    if digits and all(ch.isdigit() or ch in " -().+#" for ch in text):
        # A ticket number (#400127) or a phone number as people type it: (805) 555-0142, 805.555.0142.
        if 6 <= len(digits) <= 9:
            conditions.append(Ticket.number == int(digits))
        if len(digits) >= 4:
            conditions.append(Ticket.caller_number.like(f"%{digits}%"))
    return or_(*conditions)


def breaching(session: Session, now: datetime, within: timedelta) -> list[tuple[Ticket, Milestone]]:
    """Open tickets' milestones breached at ``now``, or running and due within ``within`` of it; soonest first."""
    require_aware(now, "now")
    horizon = now + within
    due_soon = and_(Milestone.met_at.is_(None), Ticket.paused_at.is_(None), Milestone.due_at <= horizon)
    rows = session.execute(
        select(Ticket, Milestone)
        .join(Milestone, Milestone.ticket_id == Ticket.id)
        .where(
            Ticket.status.in_(OPEN_STATUSES),
            Ticket.merged_into_id.is_(None),
            Milestone.due_at.is_not(None),
            or_(breached(now), due_soon),
        )
        .order_by(Milestone.due_at, Ticket.id)
    ).all()
    return [(t, m) for t, m in rows]
