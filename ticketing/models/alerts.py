"""Monitoring alerts: the routing keys issued to clients, and each alert's ticket (one per open dedup key)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ticketing.models.base import Base
from ticketing.models.tickets import Client, Ticket


class AlertKey(Base):
    """A routing key a client's monitoring tool sends its alerts with; only its SHA-256 is stored."""

    __tablename__ = "alert_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    name: Mapped[str] = mapped_column(String(64))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(8))  # the first characters, to recognise a key in a list
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(120))
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    client: Mapped[Client] = relationship()


class Alert(Base):
    """One alert of a client and the ticket it opened.

    ``open_dedup_key`` holds the dedup key while the alert is open and is cleared when it resolves: the
    unique constraint on (client, open dedup key) makes one ticket per dedup key at a time, even when two
    triggers race; NULLs never collide, so resolved alerts keep their history.
    """

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("client_id", "open_dedup_key", name="uq_alerts_open_dedup_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    key_id: Mapped[int] = mapped_column(ForeignKey("alert_keys.id"))
    dedup_key: Mapped[str] = mapped_column(String(255), index=True)
    open_dedup_key: Mapped[str | None] = mapped_column(String(255))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    severity: Mapped[str] = mapped_column(String(16))
    triggers: Mapped[int] = mapped_column(Integer, default=1)
    triggered_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    ticket: Mapped[Ticket] = relationship()
