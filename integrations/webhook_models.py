"""The tables of outbound webhooks: endpoints, the events to send, each endpoint's deliveries, the audit cursor."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ticketing.models.base import Base


class WebhookEndpoint(Base):
    """A URL an admin registered, the events it wants and its signing secret(s)."""

    __tablename__ = "webhook_endpoints"
    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(String(200), default="")
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    secret: Mapped[str] = mapped_column(String(100))
    # After a rotation the old secret signs too, until previous_until (both signatures, space-separated).
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_until: Mapped[datetime | None]
    include_pii: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(120), default="")
    failing_since: Mapped[datetime | None]  # first failure of the current run of failures
    disabled_at: Mapped[datetime | None]
    disabled_reason: Mapped[str | None] = mapped_column(Text)


class WebhookEvent(Base):
    """One event out of the domain, recorded once (``key``), before it is fanned out to endpoints."""

    __tablename__ = "webhook_events"
    __table_args__ = (UniqueConstraint("key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(120))
    type: Mapped[str] = mapped_column(String(40))
    ticket: Mapped[int | None] = mapped_column(Integer, index=True)  # the ticket number
    at: Mapped[datetime]
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    private: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # transcript, phone numbers: opt-in only


class WebhookDelivery(Base):
    """One event to one endpoint: the same ``message_id`` (webhook-id) on every attempt."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("endpoint_id", "event_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("webhook_events.id", ondelete="CASCADE"))
    message_id: Mapped[str] = mapped_column(String(64), unique=True)
    ticket: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]
    retry_until: Mapped[datetime]  # attempts stop after this (24 hours from creation, or from "Send again")
    state: Mapped[str] = mapped_column(String(16), default="pending", index=True)  # pending, delivered, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None]
    endpoint: Mapped[WebhookEndpoint] = relationship()
    event: Mapped[WebhookEvent] = relationship()


class WebhookCursor(Base):
    """How far a consumer of the audit log has read: every id up to ``position``, and the ``seen`` ids above it."""

    __tablename__ = "webhook_cursors"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    seen: Mapped[list[int]] = mapped_column(JSON, default=list)
    gap_since: Mapped[datetime | None]  # when the lowest missing id above ``position`` was first noticed
