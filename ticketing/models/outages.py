"""Known incidents: an outage many clients call about, its public message and the callers' tickets it joined."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ticketing.models.base import Base
from ticketing.models.tickets import Ticket


class KnownIncident(Base):
    """An outage declared by a coordinator: what callers of the affected clients hear, and its parent ticket."""

    __tablename__ = "known_incidents"
    id: Mapped[int] = mapped_column(primary_key=True)
    # Read to callers after "We are aware that" and shown on the portal and /status: one line, no client names.
    message: Mapped[str] = mapped_column(String(200))
    message_es: Mapped[str | None] = mapped_column(String(200))
    parent_ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    # The affected clients' ids; empty: every caller.
    client_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    started_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    declared_by: Mapped[str] = mapped_column(String(120))
    ended_by: Mapped[str | None] = mapped_column(String(120))
    end_note: Mapped[str | None] = mapped_column(Text)
    parent: Mapped[Ticket] = relationship()
    calls: Mapped[list[IncidentCall]] = relationship(back_populates="incident", order_by="IncidentCall.id")


class IncidentCall(Base):
    """A caller's ticket joined to a known incident (pressed 1): a P3 resolved with the parent."""

    __tablename__ = "incident_calls"
    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("known_incidents.id"), index=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), unique=True)
    joined_at: Mapped[datetime]
    incident: Mapped[KnownIncident] = relationship(back_populates="calls")
    ticket: Mapped[Ticket] = relationship()
