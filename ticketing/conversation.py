"""A ticket's conversation with the client: client messages onto tickets, public replies, who to write to.

Shared by the email intake, the console's "reply to client" box and the client portal. Like
``ticketing.lifecycle``, each function changes rows and their audit entries together and leaves the commit
to the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from ticketing import directory, lifecycle, mailrules, outbox, phone, summaries
from ticketing.audit import audit
from ticketing.errors import InvalidInput, InvalidTransition
from ticketing.models import (
    Client,
    Contact,
    MailAddress,
    MailAttachment,
    Source,
    Status,
    Ticket,
    TicketAttachment,
    TicketMessage,
)
from ticketing.policy import SupportPolicy

SYSTEM = "support line"
MAX_REPLY_CHARS = 20000


@dataclass(frozen=True)
class Landing:
    """Where a client's message went: the ticket, and whether it reopened one or opened a follow-up."""

    ticket: Ticket
    message: TicketMessage
    reopened: bool = False
    follow_up_of: int | None = None  # the resolved ticket a new one follows up


def find_sender(session: Session, address: str | None) -> tuple[Client | None, Contact | None]:
    """The contact (and client) of an email address, else the client whose contacts use its domain."""
    if not address or "@" not in address:
        return None, None
    addr = address.strip().lower()
    contact = session.scalars(
        select(Contact).where(func.lower(Contact.email) == addr, directory.matchable()).order_by(Contact.id)
    ).first()
    if contact is not None:
        return contact.client, contact
    domain = addr.rsplit("@", 1)[1]
    rows = session.execute(
        select(Contact.client_id, Contact.email).where(func.lower(Contact.email).like(f"%@{domain}"))
    ).all()
    by_client: dict[int, set[str]] = {}
    for client_id, email in rows:
        by_client.setdefault(client_id, set()).add(email.rsplit("@", 1)[1])
    client_id = mailrules.client_for_domain(domain, by_client)
    return (session.get(Client, client_id) if client_id else None), None


def requester_address(session: Session, ticket: Ticket) -> str | None:
    """Where the client's mail about this ticket goes (``lifecycle.mail_address``): its contact, else the address
    that opened it. A later message, whoever wrote it and whatever its Reply-To, never changes it."""
    return lifecycle.mail_address(ticket)


def sender_on_ticket(session: Session, ticket: Ticket, address: str | None) -> bool:
    """Whether mail from ``address`` may join ``ticket`` by its tag or a client's Message-ID
    (``mailrules.sender_on_ticket``: the ticket's contact or requester, a contact of its client, or an address
    at its client's domain). A ticket merged into another also accepts the senders of the one it went into."""
    if not address:
        return False
    seen: set[int] = set()
    current: Ticket | None = ticket
    while current is not None and current.id not in seen:
        seen.add(current.id)
        own = [a for a in (lifecycle.mail_address(current), current.requester_email) if a]
        client = (
            session.scalars(
                select(Contact.email).where(
                    Contact.client_id == current.client_id, Contact.email.is_not(None), directory.matchable()
                )
            ).all()
            if current.client_id is not None
            else []
        )
        if mailrules.sender_on_ticket(address, own, [c for c in client if c]):
            return True
        current = session.get(Ticket, current.merged_into_id) if current.merged_into_id is not None else None
    return False


def bouncing(session: Session, address: str | None) -> MailAddress | None:
    """The address's record when it is bouncing (no more mail goes to it), else None."""
    if not address:
        return None
    row = session.scalars(select(MailAddress).where(MailAddress.address == address.strip().lower())).first()
    return row if row is not None and row.bouncing_since is not None else None


def mark_bouncing(session: Session, address: str, reason: str, now: datetime) -> MailAddress:
    """A delivery-status report says mail to ``address`` fails: stop sending to it (shown in the console)."""
    addr = address.strip().lower()
    row = session.scalars(select(MailAddress).where(MailAddress.address == addr)).first()
    if row is None:
        row = MailAddress(address=addr, updated_at=now)
        session.add(row)
    if row.bouncing_since is None:
        row.bouncing_since = now
    row.bounce_reason = reason[:1000]
    row.updated_at = now
    return row


def send_again(session: Session, ticket: Ticket, message_id: int, *, actor: str, now: datetime) -> TicketMessage:
    """Queue a failed outgoing message of ``ticket`` again (its cause fixed), with a fresh set of attempts; audited.

    Only a failed message: a suppressed one says why it is not sent (a bouncing address has its own remedy)."""
    row = session.get(TicketMessage, message_id)
    if row is None or row.ticket_id != ticket.id or row.direction != "out":
        raise InvalidInput(f"ticket {ticket.number} has no such outgoing message")
    if row.state != "failed":
        raise InvalidTransition(f"only a failed message can be sent again; this one is {row.state}")
    previous = row.error
    row.state = "queued"
    row.error = None
    # A notice was sent by its notify job (keyed on the notice), a reply by a deliver job; either is reposted.
    key = row.key if row.event != "reply" and row.key.startswith(f"{outbox.NOTIFY}:") else f"{outbox.DELIVER}:{row.id}"
    if not outbox.repost(session, key):
        outbox.post(session, outbox.DELIVER, f"{outbox.DELIVER}:{row.id}", {"message": row.id}, now)
    audit(
        session,
        ticket,
        actor=actor,
        action="message sent again",
        now=now,
        detail={"event": row.event, "channel": row.channel},
        reason=previous,
    )
    return row


def clear_bouncing(session: Session, ticket: Ticket, *, actor: str, now: datetime) -> str:
    """The ticket's address works again (a coordinator checked it): mail goes to it again, audited on the ticket.

    Messages already suppressed stay as they are; the next notice or reply is sent. Returns the address.
    """
    address = requester_address(session, ticket)
    row = bouncing(session, address)
    if address is None or row is None:
        raise InvalidInput(f"{address or 'this ticket has no email address, which'} is not marked bouncing")
    since, reason = row.bouncing_since, row.bounce_reason
    row.bouncing_since = None
    row.bounce_reason = None
    row.updated_at = now
    audit(
        session,
        ticket,
        actor=actor,
        action="address deliverable again",
        now=now,
        detail={"address": row.address, "bouncing_since": since.isoformat() if since else None},
        reason=f"address {row.address} marked deliverable again by {actor} (was bouncing: {reason or 'no reason'})",
    )
    return row.address


def add_client_message(
    session: Session,
    ticket: Ticket,
    *,
    body: str,
    author: str,
    now: datetime,
    policy: SupportPolicy,
    channel: str = "email",
    from_address: str | None = None,
    subject: str = "",
    message_id: str | None = None,
    key: str | None = None,
    auto_reason: str | None = None,
    reopen_days: int = 7,
    inbound_id: int | None = None,
) -> Landing:
    """A message from the client onto its ticket (email, portal), with what that means for the ticket.

    - waiting on client: the clocks resume;
    - resolved (or closed) within ``reopen_days``: the ticket reopens; later: a new ticket that links the old one;
    - merged: the message goes to the ticket it was merged into.
    An automatic message (``auto_reason``: out-of-office, list mail) is recorded but changes nothing.
    """
    ticket = _merged_destination(session, ticket)
    automatic = auto_reason is not None
    reopened = False
    follow_up_of = None
    status = Status(ticket.status)
    if not status.is_open and not automatic:
        resolved_at = ticket.milestone("resolved").met_at
        if status == Status.RESOLVED and mailrules.reopens(resolved_at, now, reopen_days):
            reason = f"the client wrote again ({channel})"
            lifecycle.set_status(
                session, ticket, Status.IN_PROGRESS, actor=author, now=now, policy=policy, reason=reason
            )
            reopened = True
        else:
            follow_up_of = ticket.number
            ticket = _follow_up(session, ticket, body=body, author=author, now=now, policy=policy, channel=channel)
    elif ticket.paused_at is not None and not automatic:
        lifecycle.resume_sla(
            session, ticket, actor=author, now=now, policy=policy, reason=f"the client answered ({channel})"
        )
    message = TicketMessage(
        ticket=ticket,
        key=key or f"in:{ticket.number}:{now.timestamp():.6f}:{author[:40]}",
        direction="in",
        channel=channel,
        event="client",
        author=author[:200],
        from_address=(from_address or None),
        subject=subject[:400],
        body=body,
        message_id=message_id,
        state="received",
        auto_reason=auto_reason,
        automatic=automatic,
        inbound_id=inbound_id,
        created_at=now,
        tries=0,
    )
    session.add(message)
    audit(
        session,
        ticket,
        actor=author,
        action="client message",
        now=now,
        detail={"channel": channel, "from": from_address, "subject": subject[:200], "automatic": automatic},
        reason=auto_reason,
    )
    if follow_up_of is not None:
        lifecycle.notify_client(session, ticket, "created", now)
    return Landing(ticket=ticket, message=message, reopened=reopened, follow_up_of=follow_up_of)


def _merged_destination(session: Session, ticket: Ticket) -> Ticket:
    """The ticket a client's message about ``ticket`` lands on: the one it was merged into, if any."""
    origin = ticket
    while ticket.merged_into_id is not None:
        into = session.get(Ticket, ticket.merged_into_id)
        if into is None or lifecycle.merge_refusal(origin, into) is not None:
            break  # merged across clients before such merges were refused: a follow-up of its own
        ticket = into
    return ticket


def _follow_up(
    session: Session, old: Ticket, *, body: str, author: str, now: datetime, policy: SupportPolicy, channel: str
) -> Ticket:
    """A new ticket for a client who wrote about ``old`` too long after it ended to reopen it; both audited."""
    ticket = lifecycle.open_ticket(
        session,
        policy=policy,
        now=now,
        priority=old.priority if old.priority != "P1" else "P3",
        source={"email": Source.EMAIL, "sms": Source.SMS}.get(channel, Source.PORTAL),
        actor=author,
        caller_number=old.caller_number,
        # What the client was told the old ticket is about (never a voicemail's transcript: this one is mailed).
        summary=summaries.client_summary(old, tz=policy.timezone),
        description=f"Follow-up of ticket #{old.number}.\n\n{body}".strip(),
        client_id=old.client_id,
        contact_id=old.contact_id,
        reason=f"follow-up of ticket #{old.number}, {old.status} too long ago to reopen",
        notify=False,
        requester_email=old.requester_email,
    )
    audit(session, old, actor=author, action="followed up", now=now, detail={"ticket": ticket.number})
    return ticket


def reply_route(session: Session, ticket: Ticket) -> tuple[str, str] | None:
    """Where a person's reply goes, as (channel, address): back on the channel the client used last.

    A client whose latest message on the ticket came by text gets an SMS to the number it came from, even
    with an email address on file; otherwise the ticket's email address (``requester_address``), else an
    SMS to the caller's number. None when the client can be reached neither way.
    """
    last = session.scalars(
        select(TicketMessage)
        .where(TicketMessage.ticket_id == ticket.id, TicketMessage.direction == "in")
        .where(TicketMessage.automatic.is_(False))
        .order_by(TicketMessage.created_at.desc(), TicketMessage.id.desc())
        .limit(1)
    ).first()
    number = phone.normalize(ticket.caller_number)
    if last is not None and last.channel == "sms":
        texted = phone.normalize(last.from_address) or number
        if texted is not None:
            return "sms", texted
    address = requester_address(session, ticket)
    if address is not None:
        return "email", address
    return ("sms", number) if number is not None else None


def reply_to_client(
    session: Session,
    ticket: Ticket,
    text: str,
    *,
    actor: str,
    now: datetime,
    tag_prefix: str = "#",
    tz: tzinfo = UTC,
    translate: summaries.Translate = summaries.english,
) -> TicketMessage:
    """A public reply from a coordinator or engineer, on the channel ``reply_route`` picks (email, or SMS to a
    client who texted or has no email address). Queued through the outbox; internal notes never leave.

    A person's reply is the ticket's first response (``lifecycle.first_response_by_person``). Its subject is the
    client summary (``summaries.client_summary``: ``tz`` the policy's time zone, ``translate`` the ticket's
    language), never a voicemail's transcript."""
    body = (text or "").strip()
    if not body:
        raise InvalidInput("a reply needs some text")
    if len(body) > MAX_REPLY_CHARS:
        raise InvalidInput(f"a reply is at most {MAX_REPLY_CHARS} characters")
    if ticket.merged_into_id is not None:
        raise InvalidTransition(f"ticket {ticket.number} was merged: reply on the ticket it went into")
    route = reply_route(session, ticket)
    if route is None:
        raise InvalidTransition("this client has no email address or phone number to reply to")
    address, sms_to = (route[1], None) if route[0] == "email" else (None, route[1])
    count = (
        session.scalar(
            select(func.count(TicketMessage.id)).where(
                TicketMessage.ticket_id == ticket.id, TicketMessage.event == "reply"
            )
        )
        or 0
    )
    last_in = session.scalars(
        select(TicketMessage)
        .where(TicketMessage.ticket_id == ticket.id, TicketMessage.direction == "in")
        .where(TicketMessage.message_id.is_not(None))
        .order_by(TicketMessage.id.desc())
        .limit(1)
    ).first()
    message = TicketMessage(
        ticket=ticket,
        key=f"{ticket.number}:reply:{count + 1}",
        direction="out",
        channel="email" if address else "sms",
        event="reply",
        author=actor[:200],
        to_address=address or sms_to,
        subject=mailrules.tagged_subject(
            f"Re: {summaries.client_summary(ticket, tz=tz, translate=translate) or 'your request'}",
            ticket.number,
            tag_prefix,
        ),
        body=body,
        in_reply_to=last_in.message_id if last_in is not None else None,
        state="queued",
        automatic=False,
        created_at=now,
        tries=0,
    )
    session.add(message)
    session.flush()
    outbox.post(session, outbox.DELIVER, f"{outbox.DELIVER}:{message.id}", {"message": message.id}, now)
    audit(
        session,
        ticket,
        actor=actor,
        action="reply to client",
        now=now,
        detail={"channel": message.channel, "to": address or phone.mask(sms_to), "text": body[:500]},
    )
    lifecycle.first_response_by_person(session, ticket, by=actor, how=message.channel, now=now)
    return message


MAX_NOTE_CHARS = 10000
# What the composer may do to the status in the same action as its message ("keep" changes nothing).
STATUS_AFTER = {"keep": None, "waiting": Status.WAITING_ON_CLIENT, "resolved": Status.RESOLVED}


@dataclass(frozen=True)
class Composed:
    """What one composer action did: the reply queued (None for a note) and the status it left."""

    reply: TicketMessage | None
    status: str


def compose(
    session: Session,
    ticket: Ticket,
    text: str,
    *,
    public: bool,
    then: str,
    actor: str,
    now: datetime,
    policy: SupportPolicy,
    tag_prefix: str = "#",
) -> Composed:
    """The ticket page's one composer: a public reply (``reply_to_client``) or an internal note, and with it
    "then" (``STATUS_AFTER``: keep the status, waiting on client, resolved); all audited, all or nothing.

    The client hears of it at most once: the public reply itself. The status change's own notice (the
    "we need information" or "resolved" email) is withdrawn, as the reply already says it and a note says
    nothing to the client; the Actions panel's own buttons still send those notices.
    """
    if then not in STATUS_AFTER:
        raise InvalidInput(f"unknown status change {then!r}: expected one of {', '.join(STATUS_AFTER)}")
    body = (text or "").strip()
    reply = None
    if public:
        reply = reply_to_client(session, ticket, body, actor=actor, now=now, tag_prefix=tag_prefix)
    else:
        if len(body) > MAX_NOTE_CHARS:
            raise InvalidInput(f"a note is at most {MAX_NOTE_CHARS} characters")
        lifecycle.add_note(session, ticket, body, actor=actor, now=now)
    status = STATUS_AFTER[then]
    if status is not None:
        posted = len(outbox.written(session))
        reason = "with a public reply" if public else "with an internal note"
        lifecycle.set_status(session, ticket, status, actor=actor, now=now, policy=policy, reason=reason)
        for message in outbox.written(session)[posted:]:
            if message.kind == outbox.NOTIFY:
                outbox.withdraw(session, message)
    return Composed(reply=reply, status=ticket.status)


def conversation(session: Session, ticket: Ticket) -> Sequence[TicketMessage]:
    """Every message of the ticket's conversation, oldest first, with attachments."""
    return session.scalars(
        select(TicketMessage)
        .where(TicketMessage.ticket_id == ticket.id)
        .options(selectinload(TicketMessage.attachments))
        .order_by(TicketMessage.created_at, TicketMessage.id)
    ).all()


def ticket_for_message_ids(session: Session, ids: Sequence[str], *, sent_by_us: bool = False) -> Ticket | None:
    """The ticket a reply belongs to by In-Reply-To/References: the newest Message-ID we know wins.

    ``sent_by_us``: only Message-IDs of messages we sent (random, known only to their recipients), which
    identify the ticket whoever replies; a client's own Message-ID is known to everyone they copied.
    """
    if not ids:
        return None
    query = select(TicketMessage.message_id, TicketMessage.ticket_id).where(TicketMessage.message_id.in_(list(ids)))
    if sent_by_us:
        query = query.where(TicketMessage.direction == "out")
    known = {mid: tid for mid, tid in session.execute(query).all()}
    for mid in reversed(ids):
        if mid in known:
            return session.get(Ticket, known[mid])
    return None


@dataclass(frozen=True)
class ClientFile:
    """A file the client sent on a ticket, whichever way it came: uploaded in the portal or attached to an email.

    The two are stored in their own tables (``kind`` says which, ``id`` is the row's); ``path`` is None for an
    email attachment that was not stored (``note`` says why, e.g. over the size cap).
    """

    kind: str  # "portal" (TicketAttachment) or "email" (MailAttachment)
    id: int
    filename: str
    content_type: str
    size: int
    path: str | None
    at: datetime
    note: str | None = None


def client_files(session: Session, ticket: Ticket) -> list[ClientFile]:
    """Every file the client sent on this ticket, portal uploads and email attachments, in the order they came."""
    uploads = session.scalars(
        select(TicketAttachment).where(TicketAttachment.ticket_id == ticket.id).order_by(TicketAttachment.id)
    ).all()
    mailed = session.execute(
        select(MailAttachment, TicketMessage.created_at)
        .join(TicketMessage, MailAttachment.message_id == TicketMessage.id)
        .where(TicketMessage.ticket_id == ticket.id, TicketMessage.direction == "in")
        .order_by(MailAttachment.id)
    ).all()
    files = [ClientFile("portal", a.id, a.filename, a.content_type, a.size, a.path, a.uploaded_at) for a in uploads] + [
        ClientFile("email", a.id, a.filename, a.content_type, a.size, a.path, at, a.note) for a, at in mailed
    ]
    return sorted(files, key=lambda f: (f.at, f.kind, f.id))


def client_file(session: Session, ticket: Ticket, kind: str, file_id: int) -> ClientFile | None:
    """One of the ticket's client files (None when it is not this ticket's)."""
    return next((f for f in client_files(session, ticket) if f.kind == kind and f.id == file_id), None)
