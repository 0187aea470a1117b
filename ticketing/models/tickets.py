"""Persistence: SQLAlchemy 2.0 models of tickets, the client directory, audit and outbox."""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Self

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC and always returns timezone-aware datetimes, on SQLite too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes cannot be stored: attach a time zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every table."""

    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON}


class Status(str, enum.Enum):
    """Where a ticket stands in its life."""

    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in progress"
    WAITING_ON_CLIENT = "waiting on client"
    RESOLVED = "resolved"
    CLOSED = "closed"

    @property
    def is_open(self) -> bool:
        """True until the ticket is resolved or closed."""
        return self not in (Status.RESOLVED, Status.CLOSED)


OPEN_STATUSES = tuple(s.value for s in Status if s.is_open)


class Source(str, enum.Enum):
    """How the request reached the helpdesk."""

    VOICEMAIL = "voicemail"
    PHONE = "phone"
    EMAIL = "email"
    PORTAL = "portal"
    MANUAL = "manual"


class TranscriptionState(str, enum.Enum):
    """Progress of a voicemail's transcription."""

    NONE = "none"  # no recording (missed call, manual ticket)
    PENDING = "pending"
    DONE = "done"
    NO_SPEECH = "no speech"
    FAILED = "failed"


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


class User(Base):
    """Someone who signs in to the coordinator console: a coordinator, an engineer or an admin."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(16))  # coordinator, engineer, admin
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]
    # Lock-out: failed sign-ins in a row, and until when the account refuses every password.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]


class _SignedInBrowser:
    """The columns of a signed-in browser's row, console or portal: the cookie's token (by its hash) and its life."""

    # sort_order: id and token_hash before the owner's column, as the migrations made the tables.
    id: Mapped[int] = mapped_column(primary_key=True, sort_order=-2)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, sort_order=-1)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    ended_why: Mapped[str | None] = mapped_column(String(32))
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(200))

    @classmethod
    def opened(
        cls, token_hash: str, *, now: datetime, remote_addr: str | None, user_agent: str | None, **owner: Any
    ) -> Self:
        """A new session row for ``owner`` (the user or contact), seen now; the request's address and agent cut to fit."""
        return cls(
            token_hash=token_hash,
            created_at=now,
            last_seen_at=now,
            remote_addr=(remote_addr or "")[:64] or None,
            user_agent=(user_agent or "")[:200] or None,
            **owner,
        )

    def end_if_lapsed(
        self,
        owner_gone: Callable[[], str | None],
        *,
        now: datetime,
        idle: timedelta,
        lifetime: timedelta,
        touch_every: timedelta,
        touch: bool = True,
    ) -> str | None:
        """End the session when idle too long, too old or its owner gone (``owner_gone`` says why) and return why.

        While it still counts, the visit is counted (``touch``), at most once per ``touch_every``, and None returned.
        """
        if now - self.last_seen_at > idle:
            why: str | None = "idle"
        elif now - self.created_at > lifetime:
            why = "expired"
        else:
            why = owner_gone()
        if why is not None:
            self.ended_at = now
            self.ended_why = why
        elif touch and now - self.last_seen_at >= touch_every:
            self.last_seen_at = now
        return why


class ConsoleSession(_SignedInBrowser, Base):
    """A signed-in browser: the cookie carries a random token, the row (by its hash) says whether it still counts.

    Server-side, so signing out ends the session for every copy of the cookie. ``ended_why``: signed out,
    idle, expired, disabled.
    """

    __tablename__ = "console_sessions"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    user: Mapped[User] = relationship()


class ApiToken(Base):
    """A per-integration token for the JSON API (PSA sync); only its SHA-256 is stored."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # the first characters, to recognise a token in a list
    # "read": GET only; "write": everything the API offers (tokens made before scopes existed are "write")
    scope: Mapped[str] = mapped_column(String(16), default="write", server_default="write")
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(120))
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


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


# --- client portal -------------------------------------------------------------------------------------


class PortalLink(Base):
    """A single-use sign-in link emailed to a contact.

    The mail job draws the random token itself and stores only its SHA-256, so the
    token exists nowhere but in the email; the link counts from ``created_at``.
    """

    __tablename__ = "portal_links"
    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    used_at: Mapped[datetime | None]
    requested_by: Mapped[str] = mapped_column(String(120))  # "self" or the coordinator who invited
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    contact: Mapped[Contact] = relationship()


class PortalSession(_SignedInBrowser, Base):
    """A contact signed in to the portal: the ``__Host-portal`` cookie carries a token, the row its SHA-256.

    ``ended_why``: signed out, idle, expired, contact removed/changed.
    """

    __tablename__ = "portal_sessions"
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    contact: Mapped[Contact] = relationship()
    # The address the link went to: the session ends when the directory gives the contact another one.
    email: Mapped[str | None] = mapped_column(String(200), sort_order=1)  # after the shared columns


class PortalSignInEvent(Base):
    """Audit of portal sign-in: every link asked for (known address or not), sent, used, refused; also the rate limit's count."""

    __tablename__ = "portal_sign_in_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    event: Mapped[str] = mapped_column(String(32))  # requested, sent, send failed, signed in, refused, signed out
    email: Mapped[str | None] = mapped_column(String(200), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    remote_addr: Mapped[str | None] = mapped_column(String(64), index=True)
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


# --- email channel: the conversation with the client, inbound mail, attachments, address health -------------


class TicketMessage(Base):
    """One message of a ticket's conversation with the client (email or SMS, in or out) with its delivery state.

    Outgoing rows are keyed ``<ticket>:<event>:<n>`` (one per ticket and event occurrence) so a retried job
    never sends twice; their Message-ID is stored so a reply naming it threads onto the ticket.
    """

    __tablename__ = "ticket_messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(160), unique=True)
    direction: Mapped[str] = mapped_column(String(8))  # in, out
    channel: Mapped[str] = mapped_column(String(8))  # email, sms, portal
    event: Mapped[str] = mapped_column(String(32))  # created, first_response, ..., reply, client
    author: Mapped[str] = mapped_column(String(200))
    from_address: Mapped[str | None] = mapped_column(String(320))
    to_address: Mapped[str | None] = mapped_column(String(320), index=True)
    subject: Mapped[str] = mapped_column(String(400), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    message_id: Mapped[str | None] = mapped_column(String(400), index=True)
    in_reply_to: Mapped[str | None] = mapped_column(String(400))
    # queued, sending, sent, failed, suppressed (not sent, and why in ``error``), bounced, received
    state: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    auto_reason: Mapped[str | None] = mapped_column(String(200))  # inbound: why it gets no automatic answer
    automatic: Mapped[bool] = mapped_column(Boolean, default=True)  # outbound: a notice, not a person's reply
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_mail.id"))
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    tries: Mapped[int] = mapped_column(Integer, default=0)
    ticket: Mapped[Ticket] = relationship()
    attachments: Mapped[list[MailAttachment]] = relationship(
        back_populates="message", cascade="all, delete-orphan", order_by="MailAttachment.id"
    )


class InboundMail(Base):
    """A raw inbound message, stored before anything else happens to it; one row per (mailbox, Message-ID).

    ``dedupe_key`` is the Message-ID, or a hash of the headers when it has none, so the same message fetched
    twice or arriving by webhook and IMAP is stored once.
    """

    __tablename__ = "inbound_mail"
    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(320))
    dedupe_key: Mapped[str] = mapped_column(String(400))
    via: Mapped[str] = mapped_column(String(32))  # mailgun, sendgrid, imap, dev, cli
    received_at: Mapped[datetime]
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)  # over MAIL_MAX_BYTES: headers kept only
    # stored, ticketed, threaded, bounce, ignored, quarantined
    state: Mapped[str] = mapped_column(String(16), index=True)
    outcome: Mapped[str | None] = mapped_column(Text)  # what was done and why, in words
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    processed_at: Mapped[datetime | None]
    # The worker that started parsing it and when (committed before parsing): found set by a later attempt
    # whose worker is gone, it means the message killed its worker, and it is quarantined, not parsed again.
    attempt_by: Mapped[str | None] = mapped_column(String(200))
    attempt_started_at: Mapped[datetime | None]
    __table_args__ = (UniqueConstraint("mailbox", "dedupe_key"),)


class MailAttachment(Base):
    """A file that came with a client's email, stored beside the recordings (or not, and why)."""

    __tablename__ = "mail_attachments"
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("ticket_messages.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(120))
    size: Mapped[int] = mapped_column(Integer)
    path: Mapped[str | None] = mapped_column(String(500))  # None: not stored
    note: Mapped[str | None] = mapped_column(String(300))  # e.g. over the size cap
    message: Mapped[TicketMessage] = relationship(back_populates="attachments")


class MailAddress(Base):
    """What we know about an email address: bouncing addresses get no more mail until cleared."""

    __tablename__ = "mail_addresses"
    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(320), unique=True)  # lower case
    bouncing_since: Mapped[datetime | None]
    bounce_reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime]


class MailboxCursor(Base):
    """How far the IMAP poller has read a folder: its UIDVALIDITY and the highest UID stored."""

    __tablename__ = "mailbox_cursors"
    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(400), unique=True)  # user@host/folder
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime]


class SignInFailure(Base):
    """Failed console sign-ins counted per key: ``address:<ip>`` (throttle) and ``user:<name>@<ip>`` (lock-out).

    Counted with one atomic UPDATE each, so parallel attempts are never lost.
    """

    __tablename__ = "sign_in_failures"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime]
    locked_until: Mapped[datetime | None]


class Heartbeat(Base):
    """A row the readiness check and /metrics overwrite: the database proves it still commits a write."""

    __tablename__ = "heartbeats"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    at: Mapped[datetime]
