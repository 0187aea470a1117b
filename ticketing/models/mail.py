"""The email channel: the conversation with the client, inbound mail, attachments, address health, IMAP cursors."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ticketing.models.base import Base
from ticketing.models.tickets import Ticket


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


class SmsOptOut(Base):
    """A phone number that texted an opt-out keyword (STOP...): no SMS goes to it until it texts START."""

    __tablename__ = "sms_opt_outs"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)  # E.164
    opted_out_at: Mapped[datetime | None]  # None: opted in again (START)
    keyword: Mapped[str] = mapped_column(String(16))  # the last keyword it texted
    updated_at: Mapped[datetime]


class MailboxCursor(Base):
    """How far the IMAP poller has read a folder: its UIDVALIDITY and the highest UID stored."""

    __tablename__ = "mailbox_cursors"
    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(400), unique=True)  # user@host/folder
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime]
