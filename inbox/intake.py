"""The intake pipeline: store the raw message first, then (in an RQ job) turn it into a ticket or a reply.

``store_raw`` is all a webhook or the IMAP poller does before answering: one row keyed on (mailbox,
Message-ID), plus the outbox message for the parsing job, in one transaction. ``process`` runs in the
worker, once per stored message; a message it cannot read is quarantined with a clear outcome and never
holds up the ones behind it (each has its own job).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from inbox.limits import MailLimits, MessageOverLimit, check_headers
from inbox.parse import ParsedMail, UnparsableMessage, dedupe_key, parse
from settings import Settings
from ticketing import audit, conversation, lifecycle, mailrules, outbox
from ticketing.models import InboundMail, MailAttachment, Source, Ticket, TicketMessage
from ticketing.policy import SupportPolicy
from ticketing.priority import Priority
from ticketing.text import one_line

log = logging.getLogger(__name__)
SYSTEM = "email intake"


@dataclass(frozen=True)
class Stored:
    """The stored row's id, and whether this call stored it (False: the same message was stored before)."""

    id: int
    new: bool


def mailbox_key(inbox_address: str, recipient: str | None = None) -> str:
    """The intake's mailbox key: the helpdesk address, else the address a provider says the mail was sent to."""
    return inbox_address or (recipient or "").strip().lower() or "helpdesk"


def typed_message(*, sender: str, to: str, subject: str, body: str, now: datetime) -> bytes:
    """A plain-text message as a mail client would send it, from fields a person typed (development mode)."""
    from email.message import EmailMessage
    from email.utils import format_datetime, make_msgid, parseaddr

    address = parseaddr(sender)[1]
    if "@" not in address:
        raise ValueError("From needs an email address, e.g. Dana Whitfield <dana@acme-dental.example>")
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid(domain=address.rsplit("@", 1)[1])
    msg.set_content(body or "")
    return msg.as_bytes()


def store_raw(session: Session, *, mailbox: str, raw: bytes, via: str, now: datetime, max_bytes: int) -> Stored:
    """Store a raw message once per (mailbox, Message-ID) and queue its parsing; the caller commits.

    A message over ``max_bytes`` keeps only its headers and is quarantined by the job, visibly.
    """
    key = dedupe_key(raw)
    box = mailbox.strip().lower()
    existing = session.scalar(select(InboundMail.id).where(InboundMail.mailbox == box, InboundMail.dedupe_key == key))
    if existing is not None:
        return Stored(existing, False)
    truncated = len(raw) > max_bytes
    body = raw if not truncated else _headers_only(raw)
    row = InboundMail(
        mailbox=box,
        dedupe_key=key,
        via=via,
        received_at=now,
        raw=body,
        size=len(raw),
        truncated=truncated,
        state="stored",
    )
    # A concurrent store of the same message (webhook and IMAP at once) hits the unique constraint:
    # the savepoint keeps the caller's transaction usable and the earlier row wins.
    from sqlalchemy.exc import IntegrityError

    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        existing = session.scalar(
            select(InboundMail.id).where(InboundMail.mailbox == box, InboundMail.dedupe_key == key)
        )
        return Stored(existing or 0, False)
    outbox.post(session, outbox.MAIL_IN, f"{outbox.MAIL_IN}:{row.id}", {"inbound": row.id}, now)
    return Stored(row.id, True)


def _headers_only(raw: bytes) -> bytes:
    for sep in (b"\r\n\r\n", b"\n\n"):
        if sep in raw[: 1024 * 1024]:
            return raw.split(sep, 1)[0] + sep
    return raw[:65536]


def quarantine(row: InboundMail, why: str, now: datetime) -> None:
    """Set a message aside with the reason; it is listed in the console and never retried by itself."""
    row.state = "quarantined"
    row.outcome = why[:2000]
    row.processed_at = now
    log.warning("inbound mail %s quarantined: %s", row.id, why)


Parser = Callable[[bytes, MailLimits], ParsedMail]


def _parse_here(raw: bytes, limits: MailLimits) -> ParsedMail:
    return parse(raw, limits=limits)


def begin_attempt(
    session: Session, inbound_id: int, *, by: str, alive: Callable[[str], bool], now: datetime
) -> str | None:
    """Record that ``by`` starts parsing this message; the caller commits before parsing.

    When an earlier attempt was started by a process that is no longer alive and never finished, the message
    killed it (or was in hand when it was killed): it is quarantined instead of parsed again, so one mail
    can take a worker down once, not at every restart. Returns the outcome when there is nothing to parse.
    """
    row = session.get(InboundMail, inbound_id, with_for_update=True)
    if row is None:
        return "unknown"
    if row.state != "stored":
        return f"already {row.state}"
    if row.attempt_by and not alive(row.attempt_by):
        started = f"{row.attempt_started_at:%Y-%m-%d %H:%M:%S} UTC" if row.attempt_started_at else "earlier"
        quarantine(
            row,
            f"a worker died while processing this message (worker {row.attempt_by}, started {started}); "
            "not parsed again",
            now,
        )
        return "quarantined"
    row.attempt_by = by[:200]
    row.attempt_started_at = now
    return None


def end_attempt(session: Session, inbound_id: int, by: str) -> None:
    """Forget ``by``'s attempt: it ended without the process dying (an exception, a shutdown)."""
    row = session.get(InboundMail, inbound_id)
    if row is not None and row.attempt_by == by[:200]:
        row.attempt_by = None
        row.attempt_started_at = None


def process(
    session: Session,
    inbound_id: int,
    *,
    settings: Settings,
    policy: SupportPolicy,
    now: datetime,
    parser: Parser | None = None,
) -> str:
    """Turn one stored message into a ticket, a reply on a ticket, a bounce, or nothing (with the reason).

    ``parser`` parses the raw message within the limits (the worker's is a child process held to a memory
    and time budget, ``inbox.sandbox``); the header caps are checked on the bytes before it is called.
    """
    row = session.get(InboundMail, inbound_id, with_for_update=True)
    if row is None:
        return "unknown"
    if row.state != "stored":
        return f"already {row.state}"
    if row.truncated:
        quarantine(
            row, f"message of {row.size} bytes is over MAIL_MAX_BYTES ({settings.mail_max_bytes}); headers kept", now
        )
        return "quarantined"
    mail = _parse_within_limits(row, settings, parser, now)
    if mail is None:
        return "quarantined"
    row.processed_at = now
    if mail.attachments_not_read:
        mail = _with_attachment_note(mail, settings)
    own = settings.inbox_address
    if mail.own_ticket or (mail.sender and mail.sender == own):
        row.state = "ignored"
        row.outcome = "our own outgoing mail came back: not ticketed, not answered"
        return "ignored"
    if mail.bounce is not None:
        return _bounce(session, row, mail, now)
    ids = mailrules.message_ids(mail.in_reply_to, mail.references)
    if mail.message_id and session.scalar(
        select(TicketMessage.id).where(TicketMessage.message_id == mail.message_id, TicketMessage.direction == "out")
    ):
        row.state = "ignored"
        row.outcome = f"Message-ID {mail.message_id} is one we sent: not ticketed"
        return "ignored"
    ticket, mentioned = _thread(session, mail, ids, settings.mail_tag_prefix)
    if ticket is not None:
        return _add_reply(session, row, mail, ticket, settings, policy, now)
    return _new_ticket(session, row, mail, settings, policy, now, mentioned=mentioned)


def _parse_within_limits(
    row: InboundMail, settings: Settings, parser: Parser | None, now: datetime
) -> ParsedMail | None:
    """The stored message parsed within the hostile-mail limits; None when it was quarantined instead."""
    limits = MailLimits.from_settings(settings)
    over = check_headers(row.raw, limits)
    if over is not None:
        quarantine(row, f"over a limit on hostile mail: {over}; not parsed", now)
        return None
    try:
        return (parser or _parse_here)(row.raw, limits)
    except MessageOverLimit as exc:
        quarantine(row, f"over a limit on hostile mail: {exc}", now)
    except UnparsableMessage as exc:
        quarantine(row, f"unparsable: {exc}", now)
    except Exception as exc:  # noqa: BLE001 - any parser failure on hostile input is this message's problem only
        quarantine(row, f"unparsable: {type(exc).__name__}: {exc}", now)
    return None


def _add_reply(
    session: Session,
    row: InboundMail,
    mail: ParsedMail,
    ticket: Ticket,
    settings: Settings,
    policy: SupportPolicy,
    now: datetime,
) -> str:
    """A reply joins its ticket (reopening it, or opening a follow-up ticket when it was resolved long ago)."""
    auto = mail.auto_reason
    landing = _land(session, ticket, mail, row, settings, policy, now, reopen_days=settings.mail_reopen_days)
    row.ticket_id = landing.ticket.id
    if landing.follow_up_of is not None:
        row.state = "ticketed"
        row.outcome = f"reply to resolved ticket #{landing.follow_up_of}: new ticket #{landing.ticket.number}"
    else:
        row.state = "threaded"
        how = "reopened" if landing.reopened else "added"
        row.outcome = f"{how} on ticket #{landing.ticket.number}" + (f" (automatic: {auto})" if auto else "")
    return row.state


def _land(
    session: Session,
    ticket: Ticket,
    mail: ParsedMail,
    row: InboundMail,
    settings: Settings,
    policy: SupportPolicy,
    now: datetime,
    **extra: Any,
) -> conversation.Landing:
    """The message on a ticket, with its attachments."""
    landing = conversation.add_client_message(
        session,
        ticket,
        body=mail.text,
        author=mail.sender or "unknown sender",
        now=now,
        policy=policy,
        # The From address: who wrote it. Where the ticket's mail goes is its contact's (or requester's)
        # address, never this one nor a Reply-To (conversation.requester_address).
        from_address=mail.sender or None,
        subject=mail.subject,
        message_id=mail.message_id,
        key=f"in:{row.id}",
        auto_reason=mail.auto_reason,
        inbound_id=row.id,
        **extra,
    )
    _store_attachments(landing.message, mail, row, settings)
    return landing


def _thread(session: Session, mail: ParsedMail, ids: list[str], prefix: str) -> tuple[Ticket | None, Ticket | None]:
    """The ticket a reply joins, else the ticket it names but may not join (a new ticket will mention it).

    A reply naming a Message-ID we sent joins that message's ticket: only the people we wrote to know it.
    A tag in the subject (ticket numbers are sequential, anyone can write one) or a client's Message-ID
    (known to everyone they copied) only names a ticket: the mail joins it when its sender is on the ticket
    (``conversation.sender_on_ticket``). Never by subject text.
    """
    ours = conversation.ticket_for_message_ids(session, ids, sent_by_us=True)
    if ours is not None:
        return ours, None
    named = None
    number = mailrules.find_tag(mail.subject, prefix)
    if number is not None:
        named = session.scalars(select(Ticket).where(Ticket.number == number)).first()
    if named is None:
        named = conversation.ticket_for_message_ids(session, ids)
    if named is None:
        return None, None
    if conversation.sender_on_ticket(session, named, mail.sender):
        return named, None
    return None, named


def _new_ticket(
    session: Session,
    row: InboundMail,
    mail: ParsedMail,
    settings: Settings,
    policy: SupportPolicy,
    now: datetime,
    *,
    mentioned: Ticket | None = None,
) -> str:
    client, contact = conversation.find_sender(session, mail.sender)
    unknown = contact is None
    machine = mailrules.is_machine_sender(mail.sender)
    if machine and contact is None and mail.reply_to:
        # A notification robot writing for a person (Reply-To): the ticket is that person's when the directory
        # knows them, so a coordinator's reply reaches them; no automatic answer goes to anyone.
        client, contact = conversation.find_sender(session, mail.reply_to)
        unknown = contact is None
    subject = mail.subject
    if mentioned is not None and mentioned.number is not None:
        # Its notices must not carry the other ticket's tag: replies to them would name that ticket again.
        subject = mailrules.without_tag(subject, mentioned.number, settings.mail_tag_prefix)
    summary = subject or "(no subject)"
    who = f"{mail.sender_name} <{mail.sender}>" if mail.sender_name else (mail.sender or "no sender address")
    notes = [" (unknown sender)" if unknown else ""]
    if mail.reply_to and mail.reply_to != mail.sender:
        notes.append(f", Reply-To {mail.reply_to} (not written to unless it is the ticket's contact)")
    why = None
    if mentioned is not None:
        why = f"mentions #{mentioned.number}, sender not on that ticket"
        notes.append(f"; {why}: merge by hand if it belongs there")
    elif unknown:
        why = "unknown sender"
    description = f"Email from {who}" + "".join(notes) + f":\n\n{mail.text}"
    ticket = lifecycle.open_ticket(
        session,
        policy=policy,
        now=now,
        priority=Priority.P3,
        source=Source.EMAIL,
        actor=SYSTEM,
        summary=summary,
        description=description[:100000],
        client_id=client.id if client is not None else None,
        contact_id=contact.id if contact is not None else None,
        reason=why,
        notify=False,
        # A machine sender is never written to; a person with no directory contact is, at the From address.
        requester_email=mail.sender if contact is None and not machine and "@" in mail.sender else None,
    )
    _land(session, ticket, mail, row, settings, policy, now)
    lifecycle.notify_client(session, ticket, "created", now)
    row.ticket_id = ticket.id
    row.state = "ticketed"
    row.outcome = f"new ticket #{ticket.number}" + (f": {why}" if mentioned is not None else "")
    if mentioned is not None:
        row.outcome += f" ({mail.sender or 'no sender address'})"
    elif unknown:
        row.outcome += " (unknown sender)"
    if mail.auto_reason:
        row.outcome += f"; no automatic answer ({mail.auto_reason})"
    return "ticketed"


def _bounce(session: Session, row: InboundMail, mail: ParsedMail, now: datetime) -> str:
    """A delivery-status report counts only when it names a Message-ID we sent (random, so a forger cannot
    guess it), and marks only the addresses that message went to: anyone can write a report."""
    assert mail.bounce is not None
    original = None
    if mail.bounce.original_message_id:
        original = session.scalars(
            select(TicketMessage).where(
                TicketMessage.message_id == mail.bounce.original_message_id,
                TicketMessage.direction == "out",
                TicketMessage.channel == "email",
            )
        ).first()
    if original is None:
        row.state = "ignored"
        row.outcome = "delivery-status report naming no message we sent: ignored"
        return "ignored"
    sent_to = (original.to_address or "").strip().lower()
    failed = [(a, w) for a, w in mail.bounce.failed if a == sent_to]
    others = sorted({a for a, _w in mail.bounce.failed if a != sent_to})
    row.ticket_id = original.ticket_id
    if not failed:
        row.state = "ignored"
        named = ", ".join(others) or "no failed recipient"
        row.outcome = (
            f"delivery-status report names {named}, but message {original.message_id} went to {sent_to or 'nobody'}:"
            " ignored"
        )
        return "ignored"
    row.state = "bounce"
    for address, why in failed:
        conversation.mark_bouncing(session, address, why or "delivery failed", now)
    original.state = "bounced"
    original.error = "; ".join(f"{a}: {w}" for a, w in failed)[:2000] or "delivery failed"
    audit.audit(
        session,
        original.ticket,
        actor=SYSTEM,
        action="email bounced",
        now=now,
        detail={"to": [a for a, _w in failed], "subject": original.subject},
        reason=original.error,
    )
    row.outcome = (
        f"delivery-status report: {sent_to} marked bouncing; bounced message on ticket #{original.ticket.number}"
    )
    if others:
        row.outcome += f"; {', '.join(others)} not a recipient of that message: left alone"
    return "bounce"


SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _attachments_not_stored(mail: ParsedMail, settings: Settings) -> str:
    return (
        f"{mail.attachments_not_read} more attachments not stored: over MAIL_ATTACHMENT_MAX_COUNT "
        f"({settings.mail_attachment_max_count} per message)"
    )


def _with_attachment_note(mail: ParsedMail, settings: Settings) -> ParsedMail:
    """The message with a line saying how many attachments were left out, so the ticket says so."""
    from dataclasses import replace

    note = f"[{_attachments_not_stored(mail, settings)}]"
    return replace(mail, text=f"{mail.text}\n\n{note}" if mail.text else note)


def _store_attachments(message: TicketMessage, mail: ParsedMail, row: InboundMail, settings: Settings) -> None:
    """Attachments go beside the recordings (``RECORDINGS_DIR/mail/<inbound id>/``), up to the size cap."""
    folder = Path(settings.recordings_dir) / "mail" / str(row.id)
    for i, part in enumerate(mail.attachments):
        name = SAFE_NAME.sub("_", Path(part.filename).name).strip("._")[:120] or f"attachment-{i}"
        attachment = MailAttachment(
            filename=(one_line(part.filename) or f"attachment-{i}")[:255],
            content_type=part.content_type[:120],
            size=len(part.data),
        )
        if len(part.data) > settings.mail_attachment_max_bytes:
            attachment.note = (
                f"not stored: {len(part.data)} bytes is over the {settings.mail_attachment_max_bytes}-byte cap"
            )
        else:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{i}-{name}"
            path.write_bytes(part.data)
            attachment.path = str(path)
        message.attachments.append(attachment)
    if mail.attachments_not_read:
        # One row for all the rest: a message of 10,000 tiny parts must not become 10,000 rows.
        message.attachments.append(
            MailAttachment(
                filename=f"{mail.attachments_not_read} more attachments",
                content_type="application/octet-stream",
                size=0,
                note=f"not stored: {_attachments_not_stored(mail, settings)}"[:300],
            )
        )
