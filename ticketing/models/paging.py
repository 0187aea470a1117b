"""Paging of P1 tickets: the escalation, each page sent, and tickets that joined another ticket's paging."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ticketing.models.base import Base
from ticketing.models.tickets import Ticket


class Escalation(Base):
    """The paging of one P1 ticket: where its escalation policy stands, until someone acknowledges.

    ``next_position`` indexes the policy's positions (each round's steps, then the
    fallback); a step is claimed by advancing it atomically, so a scheduled job and
    any number of sweepers page each step exactly once.
    """

    __tablename__ = "escalations"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), unique=True)
    policy: Mapped[str] = mapped_column(String(64))
    business_hours: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(16))  # paging, exhausted, acknowledged, stopped
    started_at: Mapped[datetime]
    next_position: Mapped[int] = mapped_column(Integer, default=0)
    next_due_at: Mapped[datetime | None] = mapped_column(index=True)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(120))
    acknowledged_person: Mapped[str | None] = mapped_column(String(64))  # on-call person key, when known
    acknowledged_via: Mapped[str | None] = mapped_column(String(16))  # call, sms, cli, console
    ended_at: Mapped[datetime | None]
    # Paging that keeps its promise: repeat cycles until a page is delivered (up to repeat_until),
    # and since when nobody has been reached (None once a page was delivered).
    cycle: Mapped[int] = mapped_column(Integer, default=0)
    repeat_until: Mapped[datetime | None]
    unreached_since: Mapped[datetime | None]
    withheld_caller: Mapped[bool] = mapped_column(Boolean, default=False)
    ticket: Mapped[Ticket] = relationship()
    pages: Mapped[list[Page]] = relationship(
        back_populates="escalation", cascade="all, delete-orphan", order_by="Page.id"
    )


class Page(Base):
    """One page to one person on one channel (SMS, voice call, transcript follow-up), with Twilio's SID and status."""

    __tablename__ = "pages"
    id: Mapped[int] = mapped_column(primary_key=True)
    escalation_id: Mapped[int] = mapped_column(ForeignKey("escalations.id", ondelete="CASCADE"), index=True)
    # "<ticket>:<round>:<step>:<person>:<channel>": one row, so one send, per page.
    key: Mapped[str] = mapped_column(String(160), unique=True)
    position: Mapped[int] = mapped_column(Integer)
    round: Mapped[int] = mapped_column(Integer)  # 0 for the fallback and follow-ups
    step: Mapped[int] = mapped_column(Integer)
    person: Mapped[str] = mapped_column(String(64))
    person_name: Mapped[str] = mapped_column(String(120))
    to_number: Mapped[str] = mapped_column(String(32), index=True)
    channel: Mapped[str] = mapped_column(String(16))  # sms, call, follow-up
    state: Mapped[str] = mapped_column(String(16))  # claimed, sent, failed, cancelled
    claimed_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    tries: Mapped[int] = mapped_column(Integer, default=0)
    twilio_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    delivery_status: Mapped[str | None] = mapped_column(String(24))  # from Twilio's status callbacks
    answered_by: Mapped[str | None] = mapped_column(String(32))  # human, machine_start, fax, unknown
    digits: Mapped[str | None] = mapped_column(String(8))  # the key pressed on the page call
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime]
    escalation: Mapped[Escalation] = relationship(back_populates="pages")
    # Provider failures: the page waits in state "retrying" until next_try_at. Email pages: to_address.
    next_try_at: Mapped[datetime | None] = mapped_column(index=True)
    to_address: Mapped[str | None] = mapped_column(String(254))


class EscalationJoin(Base):
    """A P1 ticket whose paging joined another ticket's open escalation (a repeat call, a withheld-number flood)."""

    __tablename__ = "escalation_joins"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), unique=True)
    escalation_id: Mapped[int] = mapped_column(ForeignKey("escalations.id", ondelete="CASCADE"), index=True)
    joined_at: Mapped[datetime]
    why: Mapped[str] = mapped_column(String(32))  # same caller, withheld cap
    escalation: Mapped[Escalation] = relationship()
