"""The PSA bridge's tables: which PSA ticket mirrors ours, the operations still to send, the audit cursor."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ticketing.models import Base


class PsaLink(Base):
    """Our ticket's twin in a PSA: created once (the row is the proof), then every operation goes to it."""

    __tablename__ = "psa_links"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    psa: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(64))
    external_status: Mapped[str | None] = mapped_column(String(64))  # the PSA's status as we last saw it
    created_at: Mapped[datetime]
    __table_args__ = (UniqueConstraint("psa", "ticket_id"), UniqueConstraint("psa", "external_id"))


class PsaOperation(Base):
    """One thing to tell the PSA about a ticket (create it, add a note, set its status), sent in order."""

    __tablename__ = "psa_operations"
    id: Mapped[int] = mapped_column(primary_key=True)
    psa: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(128))  # dedupe: one operation per audit entry and kind
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    op: Mapped[str] = mapped_column(String(16))  # create, note, status
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16), default="pending", index=True)  # pending, done, dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    done_at: Mapped[datetime | None]
    __table_args__ = (UniqueConstraint("psa", "key"),)


class PsaCursor(Base):
    """How far a PSA bridge has read the audit log, and when it last asked the PSA for its changes."""

    __tablename__ = "psa_cursors"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    high: Mapped[int] = mapped_column(Integer, default=0)  # the highest audit id read
    seen: Mapped[list[int]] = mapped_column(JSON, default=list)  # ids read within the window below ``high``
    polled_at: Mapped[datetime | None]  # the PSA's lastUpdated of the newest change read back
