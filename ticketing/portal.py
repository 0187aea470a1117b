"""The client portal: sign-in links, portal sessions, who sees which ticket, and what a client does on a ticket.

Functions take the SQLAlchemy session and "now" and leave the commit to the caller.
Sign-in links and sessions are random tokens of which only the SHA-256 is stored;
every sign-in step is written to ``portal_sign_in_events`` (which the rate limits count).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session

from ticketing import audit, conversation, directory, lifecycle, outbox, voicemail
from ticketing.db import serialize_on
from ticketing.errors import InvalidInput, InvalidTransition, UnknownTicket
from ticketing.models import (
    Contact,
    PortalLink,
    PortalSession,
    PortalSignInEvent,
    Source,
    Status,
    Ticket,
    TicketAttachment,
)
from ticketing.policy import SupportPolicy
from ticketing.priority import Priority
from ticketing.triage import Triage, TriageAnswers

PORTAL = "client portal"
SEND_FAILED = "send failed"  # sign-in event: the mail server refused the link (or could not be reached)
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,}$")
# Touch a session's last-seen time at most this often.
_TOUCH_EVERY = timedelta(seconds=60)
MAX_REPLY = 10000


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalize_email(text: str | None) -> str | None:
    """An email address trimmed and lower-cased, or None when it is not one."""
    value = (text or "").strip().lower()
    return value if _EMAIL.match(value) and len(value) <= 200 else None


def contact_by_email(session: Session, email: str) -> Contact | None:
    """The directory contact with this address (case-insensitive), if exactly one has it."""
    rows = session.scalars(
        select(Contact).where(func.lower(Contact.email) == email, directory.matchable()).order_by(Contact.id)
    ).all()
    return rows[0] if len(rows) == 1 else None


def log_event(
    session: Session,
    event: str,
    *,
    now: datetime,
    email: str | None = None,
    contact_id: int | None = None,
    remote_addr: str | None = None,
    **detail: object,
) -> PortalSignInEvent:
    """Append a sign-in event to the portal's audit trail."""
    row = PortalSignInEvent(
        at=now,
        event=event,
        email=email,
        contact_id=contact_id,
        remote_addr=(remote_addr or "")[:64] or None,
        detail=dict(detail),
    )
    session.add(row)
    return row


def refused_links(session: Session, *, limit: int = 50) -> Sequence[PortalSignInEvent]:
    """The newest sign-in link emails that could not be sent, with the mail server's answer in ``detail``."""
    return session.scalars(
        select(PortalSignInEvent)
        .where(PortalSignInEvent.event == SEND_FAILED)
        .order_by(PortalSignInEvent.at.desc(), PortalSignInEvent.id.desc())
        .limit(limit)
    ).all()


@dataclass(frozen=True)
class LinkLimits:
    """How long a link lives, and how many may be asked for per address and per source in a window."""

    lifetime: timedelta
    per_address: int
    per_source: int
    window: timedelta


class RateLimited(InvalidInput):
    """Too many sign-in links asked for: the message is safe to show (it says nothing about the address)."""


def request_link(
    session: Session,
    email_text: str,
    *,
    now: datetime,
    limits: LinkLimits,
    remote_addr: str | None,
    requested_by: str = "self",
) -> PortalLink | None:
    """Someone asks for a sign-in link: when the address is a contact's, queue the email.

    Returns the link row for a coordinator's invitation (None for an unknown address); a link asked for by
    the person themself is made by the mail job (None here), and the caller answers the same either way.
    Counted against the limits whether or not the address is known, so the limit tells nothing either.
    Raises InvalidInput for something that is not an email address, RateLimited past a limit (the caller
    audits the refusal: this transaction is rolled back).
    """
    email = normalize_email(email_text)
    if email is None:
        raise InvalidInput("Please enter your email address, e.g. name@example.com.")
    # Racing requests for one address or from one source are counted one after another, so a limit holds
    # exactly: PostgreSQL takes the locks; on SQLite the event below is the first write, which holds the
    # database until commit, and the counts come after it (they include this request).
    serialize_on(session, f"portal-link:{email}")
    if remote_addr:
        serialize_on(session, f"portal-link-from:{remote_addr[:64]}")
    contact = contact_by_email(session, email)
    requested = log_event(
        session,
        "requested",
        now=now,
        email=email,
        contact_id=contact.id if contact else None,
        remote_addr=remote_addr,
        known=contact is not None,
        by=requested_by,
    )
    session.flush()
    if requested_by == "self":
        _check_link_limits(session, email, remote_addr, now=now, limits=limits)
        # The same work for every address, known or not (one event, one queued job), so the answer's timing
        # tells nothing either: the mail job makes the link when the address is a contact's.
        outbox.post(
            session, outbox.PORTAL_LINK, f"{outbox.PORTAL_LINK}:request:{requested.id}", {"request": requested.id}, now
        )
        return None
    if contact is None:
        return None
    link = PortalLink(
        contact_id=contact.id,
        email=email,
        created_at=now,
        expires_at=now + limits.lifetime,
        requested_by=requested_by[:120],
        remote_addr=(remote_addr or "")[:64] or None,
    )
    session.add(link)
    session.flush()
    outbox.post(session, outbox.PORTAL_LINK, f"{outbox.PORTAL_LINK}:{link.id}", {"link": link.id}, now)
    return link


def _check_link_limits(
    session: Session, email: str, remote_addr: str | None, *, now: datetime, limits: LinkLimits
) -> None:
    """Raise RateLimited when this address, or this source, has asked for more links in the window than allowed."""
    since = now - limits.window

    def requests(where: ColumnElement[bool]) -> int:
        return (
            session.scalar(
                select(func.count(PortalSignInEvent.id)).where(
                    PortalSignInEvent.event == "requested", where, PortalSignInEvent.at >= since
                )
            )
            or 0
        )

    by_address = requests(PortalSignInEvent.email == email)
    by_source = requests(PortalSignInEvent.remote_addr == remote_addr[:64]) if remote_addr else 0
    if by_address > limits.per_address or by_source > limits.per_source:
        minutes = int(limits.window.total_seconds() // 60)
        raise RateLimited(
            f"Too many sign-in links were asked for. Please wait {minutes} minutes and try again, "
            "or call us if you need help now."
        )


def link_for_request(session: Session, request_id: int, *, lifetime: timedelta) -> int | None:
    """The mail job's first step for a link someone asked for: the link's id when the address is a contact's.

    Made once (a retried job finds it again), counting from when it was asked for.
    """
    event = session.scalars(
        select(PortalSignInEvent).where(PortalSignInEvent.id == request_id).with_for_update()
    ).first()
    if event is None or event.event != "requested" or event.email is None:
        return None
    made = (event.detail or {}).get("link")
    if isinstance(made, int):
        return made
    contact = contact_by_email(session, event.email)
    if contact is None:
        return None
    link = PortalLink(
        contact_id=contact.id,
        email=event.email,
        created_at=event.at,
        expires_at=event.at + lifetime,
        requested_by="self",
        remote_addr=event.remote_addr,
    )
    session.add(link)
    session.flush()
    event.detail = {**(event.detail or {}), "link": link.id}
    return link.id


def invite(session: Session, contact: Contact, *, now: datetime, limits: LinkLimits, actor: str) -> PortalLink:
    """A coordinator invites a contact to the portal: a sign-in link to the contact's address."""
    if not contact.email or normalize_email(contact.email) is None:
        raise InvalidInput(f"{contact.name} has no email address in the directory")
    link = request_link(session, contact.email, now=now, limits=limits, remote_addr=None, requested_by=actor)
    if link is None:
        raise InvalidInput(f"{contact.email} belongs to more than one contact: fix the directory first")
    return link


def arm_link(session: Session, link_id: int, *, now: datetime) -> tuple[PortalLink, str] | None:
    """The mail job draws the link's token (only its hash is kept); None when there is nothing to send."""
    link = session.scalars(select(PortalLink).where(PortalLink.id == link_id).with_for_update()).first()
    if link is None or link.sent_at is not None or link.used_at is not None or link.expires_at <= now:
        return None
    token = secrets.token_urlsafe(32)
    link.token_hash = _digest(token)
    return link, token


@dataclass(frozen=True)
class LinkCheck:
    """The contact a sign-in link is for, or why it does not work."""

    contact: Contact | None
    why: str | None = None  # unknown, used, expired


def check_link(session: Session, token: str | None, *, now: datetime, for_update: bool = False) -> LinkCheck:
    """Whether ``token`` is a live sign-in link (the confirm page asks; pressing its button uses it)."""
    if not token or len(token) > 200:
        return LinkCheck(None, "unknown")
    query = select(PortalLink).where(PortalLink.token_hash == _digest(token))
    if for_update:
        query = query.with_for_update()
    link = session.scalars(query).first()
    if link is None:
        return LinkCheck(None, "unknown")
    if link.used_at is not None:
        return LinkCheck(None, "used")
    if link.expires_at <= now:
        return LinkCheck(None, "expired")
    contact = link.contact
    if normalize_email(contact.email) != link.email:
        return LinkCheck(None, "unknown")  # the directory changed since the link was sent
    return LinkCheck(contact)


def sign_in(
    session: Session, token: str, *, now: datetime, remote_addr: str | None, user_agent: str | None
) -> tuple[Contact, str]:
    """Use a sign-in link: a new portal session; returns the contact and the session token for the cookie.

    Raises InvalidTransition naming why (unknown, used, expired); the caller audits the refusal.
    """
    check = check_link(session, token, now=now, for_update=True)
    if check.contact is None:
        raise InvalidTransition(check.why or "unknown")
    # Single use, also when two presses race: only one update finds the link unused.
    used = session.execute(
        update(PortalLink)
        .where(PortalLink.token_hash == _digest(token), PortalLink.used_at.is_(None))
        .values(used_at=now)
    ).rowcount
    if not used:
        raise InvalidTransition("used")
    contact = check.contact
    session_token = secrets.token_urlsafe(32)
    session.add(
        PortalSession.opened(
            _digest(session_token),
            now=now,
            remote_addr=remote_addr,
            user_agent=user_agent,
            contact_id=contact.id,
            email=normalize_email(contact.email),
        )
    )
    log_event(session, "signed in", now=now, email=contact.email, contact_id=contact.id, remote_addr=remote_addr)
    return contact, session_token


@dataclass(frozen=True)
class PortalViewer:
    """The signed-in contact, detached from the database."""

    contact_id: int
    client_id: int
    name: str
    email: str
    client_name: str
    primary: bool


@dataclass(frozen=True)
class SessionCheck:
    """The contact behind a portal session token, or why there is none."""

    viewer: PortalViewer | None
    ended_why: str | None = None


def check_session(
    session: Session, token: str | None, *, now: datetime, idle: timedelta, lifetime: timedelta
) -> SessionCheck:
    """The signed-in contact behind ``token``; ends it when idle too long, too old, or the contact's address is gone or changed."""
    if not token or len(token) > 200:
        return SessionCheck(None)
    row = session.scalars(select(PortalSession).where(PortalSession.token_hash == _digest(token))).first()
    if row is None or row.ended_at is not None:
        return SessionCheck(None, row.ended_why if row is not None else None)

    def contact_gone() -> str | None:
        address = normalize_email(row.contact.email)
        if address is None:
            return "contact removed"
        if row.email is not None and address != row.email:
            return "contact changed"  # the address that proved who this is no longer theirs
        return None

    why = row.end_if_lapsed(contact_gone, now=now, idle=idle, lifetime=lifetime, touch_every=_TOUCH_EVERY)
    if why is not None:
        return SessionCheck(None, why)
    c = row.contact
    return SessionCheck(PortalViewer(c.id, c.client_id, c.name, c.email or "", c.client.name, bool(c.primary)))


def end_session(session: Session, token: str | None, *, now: datetime, remote_addr: str | None = None) -> None:
    """Sign out of the portal: the token no longer counts, whoever holds a copy of the cookie."""
    if not token:
        return
    row = session.scalars(
        select(PortalSession).where(PortalSession.token_hash == _digest(token), PortalSession.ended_at.is_(None))
    ).first()
    if row is None:
        return
    row.ended_at = now
    row.ended_why = "signed out"
    log_event(
        session, "signed out", now=now, email=row.contact.email, contact_id=row.contact_id, remote_addr=remote_addr
    )


# --- who sees what -------------------------------------------------------------------------------------


def visible(ticket: Ticket, viewer: PortalViewer) -> bool:
    """A contact sees their own tickets; the client's primary contact sees every ticket of the client."""
    if ticket.client_id is None or ticket.client_id != viewer.client_id:
        return False
    return viewer.primary or ticket.contact_id == viewer.contact_id


def tickets_for(session: Session, viewer: PortalViewer) -> Sequence[Ticket]:
    """The tickets the contact may see, open ones first, newest first."""
    # Merged (repeat) tickets stay listed, closed: the contact who reported one still finds it and where it went.
    query = select(Ticket).where(Ticket.client_id == viewer.client_id)
    if not viewer.primary:
        query = query.where(Ticket.contact_id == viewer.contact_id)
    rows = session.scalars(query.order_by(Ticket.opened_at.desc(), Ticket.id.desc())).all()
    return sorted(rows, key=lambda t: not Status(t.status).is_open)


def ticket_for(session: Session, viewer: PortalViewer, number: int | str, *, for_update: bool = False) -> Ticket:
    """The ticket with this number if the contact may see it; UnknownTicket otherwise (never 'forbidden')."""
    try:
        ticket = lifecycle.get_ticket(session, number, for_update=for_update)
    except UnknownTicket:
        raise UnknownTicket(f"no ticket {number}") from None
    if not visible(ticket, viewer):
        raise UnknownTicket(f"no ticket {number}")
    return ticket


# --- what a client does --------------------------------------------------------------------------------


def submit_portal_ticket(
    session: Session,
    viewer: PortalViewer,
    *,
    policy: SupportPolicy,
    now: datetime,
    summary: str,
    description: str,
    answers: TriageAnswers,
    result: Triage,
) -> Ticket:
    """A contact submits a ticket with the triage answers; a P1 pages on-call exactly as "press 2" does."""
    summary = (summary or "").strip()
    if not summary:
        raise InvalidInput("Please say in a few words what the problem is.")
    if len(summary) > 200:
        raise InvalidInput("The short summary is at most 200 characters: put the rest in the details.")
    if len(description or "") > 20000:
        raise InvalidInput("The details are at most 20000 characters.")
    contact = session.get(Contact, viewer.contact_id)
    if contact is None:
        raise InvalidInput("Your contact record is no longer in the directory.")
    critical = result.priority == Priority.P1
    ticket = lifecycle.open_ticket(
        session,
        policy=policy,
        now=now,
        priority=result.priority,
        source=Source.PORTAL,
        actor=f"{contact.name} (portal)",
        caller_number=contact.phone,
        summary=summary,
        description=(description or "").strip(),
        critical_requested=critical,
        client_id=contact.client_id,
        contact_id=contact.id,
        reason=f"portal triage: {result.reason}",
    )
    ticket.client = contact.client
    ticket.contact = contact
    audit.audit(
        session,
        ticket,
        actor=f"{contact.name} (portal)",
        action="portal triage",
        now=now,
        detail={**answers.as_dict(), "priority": result.priority.value, "reason": result.reason},
    )
    if critical:
        voicemail.request_page(session, ticket, now)
    return ticket


def record_portal_reply(
    session: Session,
    ticket: Ticket,
    viewer: PortalViewer,
    text: str,
    *,
    policy: SupportPolicy,
    now: datetime,
    reopen_days: int = 7,
) -> conversation.Landing:
    """A client's reply from the portal: the portal's checks, then the conversation's rules, as for an email.

    A waiting clock resumes; a resolved ticket reopens (or, resolved too long ago, a follow-up opens); a
    merged ticket's reply goes to the ticket it went into. Returns where the reply landed.
    """
    body = _reply_body(text)
    if not body:
        raise InvalidInput("Please write your reply first.")
    if ticket.status == Status.CLOSED.value and ticket.merged_into_id is None:
        raise InvalidTransition("This ticket is closed: please submit a new one.")
    return _add_portal_message(session, ticket, viewer, body, policy=policy, now=now, reopen_days=reopen_days)


def _reply_body(text: str | None) -> str:
    """The client's words, trimmed; refused when longer than a reply may be."""
    body = (text or "").strip()
    if len(body) > MAX_REPLY:
        raise InvalidInput(f"A reply is at most {MAX_REPLY} characters.")
    return body


def _add_portal_message(
    session: Session,
    ticket: Ticket,
    viewer: PortalViewer,
    body: str,
    *,
    policy: SupportPolicy,
    now: datetime,
    reopen_days: int = 7,
) -> conversation.Landing:
    """The client's words on the ticket, from the portal, under the conversation's rules (as for an email)."""
    return conversation.add_client_message(
        session,
        ticket,
        body=body,
        author=f"{viewer.name} (portal)",
        now=now,
        policy=policy,
        channel="portal",
        from_address=viewer.email or None,
        reopen_days=reopen_days,
    )


def confirm_resolved(
    session: Session, ticket: Ticket, viewer: PortalViewer, *, policy: SupportPolicy, now: datetime
) -> None:
    """ "This is resolved": the client confirms a resolved ticket, which closes it."""
    if ticket.status != Status.RESOLVED.value:
        raise InvalidTransition("Only a resolved ticket can be confirmed.")
    lifecycle.set_status(
        session,
        ticket,
        Status.CLOSED,
        actor=f"{viewer.name} (portal)",
        now=now,
        policy=policy,
        reason="client confirmed it is resolved",
    )


def still_broken(
    session: Session, ticket: Ticket, viewer: PortalViewer, text: str, *, policy: SupportPolicy, now: datetime
) -> None:
    """ "Still broken": the client reopens a resolved ticket (its resolved clock runs again), saying why."""
    if ticket.status != Status.RESOLVED.value:
        raise InvalidTransition("Only a resolved ticket can be reopened.")
    body = _reply_body(text)
    lifecycle.set_status(
        session,
        ticket,
        Status.IN_PROGRESS,
        actor=f"{viewer.name} (portal)",
        now=now,
        policy=policy,
        reason="client says it is still broken",
    )
    if body:
        _add_portal_message(session, ticket, viewer, body, policy=policy, now=now)


def add_attachment(
    session: Session,
    ticket: Ticket,
    *,
    filename: str,
    content_type: str,
    size: int,
    sha256: str,
    path: str,
    now: datetime,
    contact_id: int | None,
    source: str = Source.PORTAL.value,
) -> TicketAttachment:
    """Record a stored file on the ticket; audited."""
    row = TicketAttachment(
        ticket=ticket,
        filename=filename[:200],
        content_type=content_type[:100],
        size=size,
        sha256=sha256,
        path=path,
        source=source,
        uploaded_at=now,
        contact_id=contact_id,
    )
    session.add(row)
    audit.audit(
        session,
        ticket,
        actor=PORTAL,
        action="attachment added",
        now=now,
        detail={"filename": row.filename, "bytes": size, "via": source},
    )
    return row
