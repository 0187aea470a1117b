"""A caller's place in line: a callback the next free coordinator makes, first come, first served."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ticketing.models.base import Base
from ticketing.models.tickets import Ticket


class CallbackRequest(Base):
    """One call's request to be called back (ticketing.callbacks): its place, the call back under way, tries."""

    __tablename__ = "callback_requests"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), unique=True)
    # The place in line is the order of requested_at (then id) among the waiting and calling requests.
    requested_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16), default="waiting")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The coordinator's call (Twilio's REST call) of the attempt under way; the status callbacks name it.
    call_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    coordinator: Mapped[str | None] = mapped_column(String(120))
    updated_at: Mapped[datetime]
    ticket: Mapped[Ticket] = relationship()

    __table_args__ = (Index("ix_callback_requests_line", "state", "requested_at"),)
