"""The ticket's audit log: every change to a ticket appends an entry, in the same transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ticketing.models import AuditEntry, Ticket


def audit(
    session: Session,
    ticket: Ticket,
    *,
    actor: str,
    action: str,
    now: datetime,
    detail: dict[str, Any] | None = None,
    reason: str | None = None,
) -> AuditEntry:
    """Append an entry to the ticket's audit log."""
    entry = AuditEntry(ticket=ticket, at=now, actor=actor, action=action, detail=detail or {}, reason=reason)
    session.add(entry)
    ticket.updated_at = now
    return entry


def iso(value: datetime | None) -> str | None:
    """A time as the audit detail stores it (ISO 8601), or None."""
    return value.isoformat() if value is not None else None


def due_times(ticket: Ticket) -> dict[str, str | None]:
    """The due time of each of the ticket's milestones, as the audit detail stores them."""
    return {m.name: iso(m.due_at) for m in ticket.milestones}
