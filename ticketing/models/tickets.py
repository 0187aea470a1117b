"""Tickets and what hangs off them: the client directory, SLA milestones and pauses, the audit log, call events,
attachments, exceptional events; the outbox and the heartbeat row."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ticketing.models.base import Base, Status, TranscriptionState


class Client(Base):
    """A customer organisation of the MSP."""

    __tablename__ = "clients"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    main_number: Mapped[str | None] = mapped_column(String(32), index=True)
    contacts: Mapped[list[Contact]] = relationship(back_populates="client", order_by="Contact.name")


class Contact(Base):
    """A person at a client, reachable by phone and email."""

    __tablename__ = "contacts"
    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    email: Mapped[str | None] = mapped_column(String(200))
    client: Mapped[Client] = relationship(back_populates="contacts")
    # Client portal: the client's primary contact sees every ticket of the client, others their own.
    primary: Mapped[bool] = mapped_column(Boolean, default=False)
    # A disabled contact (left the client) keeps its tickets and history but is matched by nothing new:
    # not a caller ID, not a sender's address, not a portal sign-in (ticketing.directory).
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class Ticket(Base):
    """A request to the helpdesk, with its SLA clocks."""

    __tablename__ = "tickets"
    id: Mapped[int] = mapped_column(primary_key=True)
    # Digits only: callers key it in and hear it read back. Derived from id in the
    # creating transaction, so it is unique and increasing on every database.
    number: Mapped[int | None] = mapped_column(Integer, unique=True)
    priority: Mapped[str] = mapped_column(String(2))
    status: Mapped[str] = mapped_column(String(24), default=Status.NEW.value)
    source: Mapped[str] = mapped_column(String(16))
    caller_number: Mapped[str | None] = mapped_column(String(32), index=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    summary: Mapped[str] = mapped_column(String(200), default="")
    # The summary the client sees, written by a person; None: ticketing.summaries.client_summary decides (a
    # voicemail's summary line comes from the recogniser and never reaches the client).
    client_summary: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    opened_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    assignee: Mapped[str | None] = mapped_column(String(120))
    after_hours: Mapped[bool] = mapped_column(Boolean, default=False)
    critical_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # Exceptional events extend targets; seconds of clock time added to each target.
    sla_extension_seconds: Mapped[int] = mapped_column(Integer, default=0)
    paused_at: Mapped[datetime | None]
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    # Email tickets from a sender with no directory contact: the From address of the message that opened the
    # ticket, where its mail goes. Never taken from a later message (ticketing.conversation, docs/email.md).
    requester_email: Mapped[str | None] = mapped_column(String(320))
    # The call and its recording (voicemail tickets).
    call_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    recording_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    # The language the caller chose on the call (its prompts and their text messages); "en" unless they
    # pressed the language key. The language spoken in the message is ``transcript_language``.
    language: Mapped[str] = mapped_column(String(8), default="en", server_default="en", index=True)
    # The number to call the caller back on, and where it came from (ticketing.phone's CALLBACK_ORIGINS):
    # the caller ID the caller confirmed, or digits the caller keyed on the call. None: the caller ID
    # (or, withheld, the number heard in the message) is what ticketing.phone.callback_of shows.
    callback_number: Mapped[str | None] = mapped_column(String(32))
    callback_origin: Mapped[str | None] = mapped_column(String(16))
    recording_url: Mapped[str | None] = mapped_column(String(500))
    recording_duration: Mapped[int | None] = mapped_column(Integer)
    audio_path: Mapped[str | None] = mapped_column(String(500))
    # The transcript.
    transcription_state: Mapped[str] = mapped_column(String(16), default=TranscriptionState.NONE.value)
    transcription_attempts: Mapped[int] = mapped_column(Integer, default=0)
    transcription_requested_at: Mapped[datetime | None]
    transcription_error: Mapped[str | None] = mapped_column(Text)
    transcript: Mapped[str | None] = mapped_column(Text)
    transcript_segments: Mapped[list[Any] | None] = mapped_column(JSON)
    transcript_language: Mapped[str | None] = mapped_column(String(16))
    # An English translation of a transcript in another language (the console shows it, the original a
    # click away); None for English messages.
    transcript_translation: Mapped[str | None] = mapped_column(Text)
    transcript_engine: Mapped[str | None] = mapped_column(String(64))
    transcript_confidence: Mapped[float | None] = mapped_column(Float)
    transcript_low_confidence: Mapped[bool] = mapped_column(Boolean, default=False)
    audio_seconds: Mapped[float | None] = mapped_column(Float)
    hints: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Transcript completeness and passes: speech spans ([start, end] seconds) no
    # transcript segment covers, every pass's transcript kept (fast first pass,
    # larger model's final pass), and which pass ``transcript`` shows.
    transcript_missing: Mapped[list[Any] | None] = mapped_column(JSON)
    transcript_passes: Mapped[list[Any] | None] = mapped_column(JSON)
    transcript_pass: Mapped[str | None] = mapped_column(String(16))

    client: Mapped[Client | None] = relationship()
    contact: Mapped[Contact | None] = relationship()
    milestones: Mapped[list[Milestone]] = relationship(
        back_populates="ticket", cascade="all, delete-orphan", order_by="Milestone.id"
    )
    pauses: Mapped[list[SlaPause]] = relationship(
        back_populates="ticket", cascade="all, delete-orphan", order_by="SlaPause.started_at"
    )
    audit: Mapped[list[AuditEntry]] = relationship(
        back_populates="ticket", cascade="all, delete-orphan", order_by="AuditEntry.id"
    )

    __table_args__ = (Index("ix_tickets_queue", "status", "priority", "opened_at"),)

    def milestone(self, name: str) -> Milestone:
        """The ticket's milestone called ``name`` (first_response, resolution_plan, resolved)."""
        for m in self.milestones:
            if m.name == name:
                return m
        raise KeyError(name)


class Milestone(Base):
    """One SLA milestone of a ticket: when it is due and when it was met."""

    __tablename__ = "milestones"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(24))
    due_at: Mapped[datetime | None] = mapped_column(index=True)
    met_at: Mapped[datetime | None]
    met_in_time: Mapped[bool | None] = mapped_column(Boolean)
    # The engineer's estimate, recorded with the resolution plan (policy: "estimated resolution timeline").
    estimate: Mapped[datetime | None]
    ticket: Mapped[Ticket] = relationship(back_populates="milestones")
    __table_args__ = (UniqueConstraint("ticket_id", "name"),)


class SlaPause(Base):
    """A 'waiting on client' interval during which the SLA clocks stop."""

    __tablename__ = "sla_pauses"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    ticket: Mapped[Ticket] = relationship(back_populates="pauses")


class AuditEntry(Base):
    """Append-only record of a change to a ticket: who, when, what, why."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reason: Mapped[str | None] = mapped_column(Text)
    ticket: Mapped[Ticket] = relationship(back_populates="audit")


class CallEvent(Base):
    """One step of a call (menu choice, ring outcome, recording), for the ticket's timeline."""

    __tablename__ = "call_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64), index=True)
    caller: Mapped[str | None] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(index=True)
    event: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class TicketAttachment(Base):
    """A file a client attached to a ticket (screenshot, log), stored under RECORDINGS_DIR/attachments."""

    __tablename__ = "ticket_attachments"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(200))  # as the client named it (cleaned)
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(500))  # relative to RECORDINGS_DIR
    source: Mapped[str] = mapped_column(String(16))  # portal, email
    uploaded_at: Mapped[datetime]
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    ticket: Mapped[Ticket] = relationship()


class ExceptionalEvent(Base):
    """Policy "Extended Response Times": an event (outage, disaster) that extends the targets of open and new tickets."""

    __tablename__ = "exceptional_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    extension_seconds: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]
    declared_by: Mapped[str] = mapped_column(String(120))
    ended_by: Mapped[str | None] = mapped_column(String(120))


class OutboxMessage(Base):
    """Work to hand to the job queue, written in the same transaction as the ticket.

    A webhook never waits on Redis: it commits the message here, and the
    dispatcher (after the response, and the periodic sweeper) enqueues it.
    """

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(128), unique=True)  # dedupe: one job per key
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]
    dispatched_at: Mapped[datetime | None] = mapped_column(index=True)
    completed_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # hand-overs to the job queue
    last_error: Mapped[str | None] = mapped_column(Text)
    failed_at: Mapped[datetime | None] = mapped_column(index=True)  # given up after OUTBOX_MAX_ATTEMPTS


class Heartbeat(Base):
    """A row the readiness check and /metrics overwrite: the database proves it still commits a write."""

    __tablename__ = "heartbeats"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    at: Mapped[datetime]
