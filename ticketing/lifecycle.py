"""A ticket's life: open it, re-triage, pause and resume its clocks, meet milestones, assign, note, merge.

Each function takes the SQLAlchemy session, the support policy and "now" as
arguments, changes the ticket and its audit log together, and leaves the
commit to the caller, so a failed step changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ticketing import directory, outbox, phone
from ticketing.audit import audit, due_times, iso
from ticketing.calendar import require_aware
from ticketing.errors import InvalidInput, InvalidTransition, UnknownTicket
from ticketing.events import apply_exceptional_events
from ticketing.milestones import recompute_milestones
from ticketing.models import (
    AuditEntry,
    CallEvent,
    Client,
    Contact,
    Milestone,
    OutboxMessage,
    SlaPause,
    Source,
    Status,
    Ticket,
    TicketMessage,
    TranscriptionState,
)
from ticketing.policy import MILESTONES, SupportPolicy
from ticketing.priority import Priority
from ticketing.sla import calendar_for
from ticketing.text import one_line

# Ticket numbers start here, so every number has six digits.
NUMBER_BASE = 400000


def ticket_number_for(ticket_id: int) -> int:
    """The ticket number of the row with this primary key."""
    return NUMBER_BASE + ticket_id


def find_caller(session: Session, number: str | None) -> tuple[Client | None, Contact | None]:
    """The client (and contact) a caller ID belongs to, if the directory knows it."""
    e164 = phone.normalize(number)
    if e164 is None:
        return None, None
    contact = session.scalars(
        select(Contact).where(Contact.phone == e164, directory.matchable()).order_by(Contact.id)
    ).first()
    if contact is not None:
        return contact.client, contact
    client = session.scalars(select(Client).where(Client.main_number == e164)).first()
    return client, None


def open_ticket(
    session: Session,
    *,
    policy: SupportPolicy,
    now: datetime,
    priority: Priority | str,
    source: Source | str,
    actor: str,
    caller_number: str | None = None,
    summary: str = "",
    description: str = "",
    call_sid: str | None = None,
    critical_requested: bool = False,
    client_id: int | None = None,
    reason: str | None = None,
    contact_id: int | None = None,
    notify: bool = True,
    requester_email: str | None = None,
) -> Ticket:
    """Create a ticket with its SLA milestones and a 'created' audit entry; flushes to get its number.

    ``notify`` queues the client's "new ticket created" notice (sent when the contact has an email address).
    ``requester_email``: the address that wrote in, for a sender with no directory contact (its mail goes there).
    """
    require_aware(now, "now")
    prio = Priority.parse(priority)
    src = Source(source)
    e164 = phone.normalize(caller_number)
    client, contact = find_caller(session, caller_number)
    if client_id is not None:
        chosen = session.get(Client, client_id)
        if chosen is None:
            raise InvalidInput(f"unknown client id {client_id}")
        if client is None or client.id != chosen.id:
            client, contact = chosen, None
    if contact_id is not None:
        contact = session.get(Contact, contact_id)
        if contact is None:
            raise InvalidInput(f"unknown contact id {contact_id}")
        client = contact.client
    ticket = Ticket(
        priority=prio.value,
        status=Status.NEW.value,
        source=src.value,
        caller_number=e164 or (caller_number or None),
        client=client,
        contact=contact,
        summary=one_line(summary)[:200],  # one line: it becomes the subject of every reply
        description=description,
        opened_at=now,
        updated_at=now,
        call_sid=call_sid,
        critical_requested=critical_requested,
        requester_email=(requester_email or "").strip().lower()[:320] or None,
        after_hours=not calendar_for(policy).is_business_hours(now),
        sla_extension_seconds=0,
        transcription_attempts=0,
        transcript_low_confidence=False,
    )
    session.add(ticket)
    for name in MILESTONES:
        ticket.milestones.append(Milestone(name=name))
    recompute_milestones(ticket, policy)
    session.flush()
    ticket.number = ticket_number_for(ticket.id)
    audit(
        session,
        ticket,
        actor=actor,
        action="created",
        now=now,
        detail={"priority": prio.value, "source": src.value, "client": client.name if client else None},
        reason=reason,
    )
    apply_exceptional_events(session, ticket, policy=policy, now=now)
    if notify:
        notify_client(session, ticket, "created", now)
    return ticket


def mail_address(ticket: Ticket) -> str | None:
    """Where the client's mail about this ticket goes: its directory contact's address, else the address that
    opened it (``requester_email``). Never an address a later message came from (docs/email.md)."""
    if ticket.contact is not None and ticket.contact.email:
        return ticket.contact.email.strip()
    return ticket.requester_email or None


def has_email_recipient(session: Session, ticket: Ticket) -> bool:
    """Whether the ticket's client can be mailed (``mail_address``)."""
    return mail_address(ticket) is not None


def notify_client(session: Session, ticket: Ticket, event: str, now: datetime, **detail: Any) -> None:
    """Queue the client's notice of ``event`` (the worker decides by configuration whether and where to send it).

    One outbox message per ticket and occurrence of the event, so a retry never sends twice; internal
    notes never come here. Nothing is queued for a ticket nobody can be mailed about (no contact address,
    no email from the client).
    """
    if not has_email_recipient(session, ticket):
        return
    if event == "created":
        # A ticket is created once: every path that confirms it (a place in line, then its message) names the
        # same outbox message, so the client gets one "new ticket created" email however many ask.
        occurrence = 1
    else:
        occurrence = 1 + sum(
            1
            for o in session.new
            if isinstance(o, OutboxMessage)
            and o.kind == outbox.NOTIFY
            and o.payload.get("ticket") == ticket.number
            and o.payload.get("event") == event
        )
        with session.no_autoflush:
            occurrence += (
                session.scalar(
                    select(func.count(OutboxMessage.id)).where(
                        OutboxMessage.key.like(f"{outbox.NOTIFY}:{ticket.number}:{event}:%")
                    )
                )
                or 0
            )
    key = f"{outbox.NOTIFY}:{ticket.number}:{event}:{occurrence}"
    payload = {"ticket": ticket.number, "event": event, "key": key, "detail": detail}
    outbox.post(session, outbox.NOTIFY, key, payload, now)


def get_ticket(session: Session, number: int | str, *, for_update: bool = False) -> Ticket:
    """The ticket with this number; raises UnknownTicket."""
    try:
        value = int(str(number).strip())
    except ValueError:
        raise UnknownTicket(f"no ticket {number!r}") from None
    query = select(Ticket).where(Ticket.number == value)
    if for_update:
        query = query.with_for_update()
    ticket = session.scalars(query).first()
    if ticket is None:
        raise UnknownTicket(f"no ticket {value}")
    return ticket


def change_priority(
    session: Session,
    ticket: Ticket,
    new: Priority | str,
    *,
    reason: str,
    actor: str,
    now: datetime,
    policy: SupportPolicy,
) -> None:
    """Re-triage: new priority, due times recomputed from the original opening time."""
    prio = Priority.parse(new)
    if not reason or not reason.strip():
        raise InvalidInput("a priority change needs a reason")
    require_open(ticket)
    old = ticket.priority
    if old == prio.value:
        raise InvalidTransition(f"ticket {ticket.number} is already {prio.value}")
    before = due_times(ticket)
    ticket.priority = prio.value
    recompute_milestones(ticket, policy)
    audit(
        session,
        ticket,
        actor=actor,
        action="priority changed",
        now=now,
        detail={
            "from": old,
            "to": prio.value,
            "due_before": before,
            "due_after": due_times(ticket),
        },
        reason=reason.strip(),
    )


def pause_sla(session: Session, ticket: Ticket, *, actor: str, now: datetime, reason: str | None = None) -> None:
    """Waiting on client: stop every running clock."""
    require_open(ticket)
    if ticket.paused_at is not None:
        raise InvalidTransition(f"ticket {ticket.number} is already waiting on client")
    ticket.paused_at = now
    ticket.pauses.append(SlaPause(started_at=now))
    previous = ticket.status
    ticket.status = Status.WAITING_ON_CLIENT.value
    audit(session, ticket, actor=actor, action="waiting on client", now=now, detail={"from": previous}, reason=reason)
    notify_client(session, ticket, "waiting", now, question=reason or "", actor=actor)


def resume_sla(
    session: Session,
    ticket: Ticket,
    *,
    actor: str,
    now: datetime,
    policy: SupportPolicy,
    status: Status = Status.IN_PROGRESS,
    reason: str | None = None,
) -> None:
    """The client answered: restart the clocks, pushing due times out by the paused clock time."""
    if ticket.paused_at is None:
        raise InvalidTransition(f"ticket {ticket.number} is not waiting on client")
    open_pause = next(p for p in ticket.pauses if p.ended_at is None)
    open_pause.ended_at = max(now, open_pause.started_at)
    ticket.paused_at = None
    ticket.status = status.value
    recompute_milestones(ticket, policy)
    audit(
        session,
        ticket,
        actor=actor,
        action="resumed",
        now=now,
        detail={"paused_from": iso(open_pause.started_at), "due": due_times(ticket)},
        reason=reason,
    )


def meet_milestone(
    session: Session,
    ticket: Ticket,
    name: str,
    *,
    actor: str,
    now: datetime,
    estimate: datetime | None = None,
    note: str | None = None,
    notify: bool = True,
    via: str | None = None,
) -> Milestone:
    """Record that a milestone was met now; the resolution plan carries the estimated resolution time.

    ``via``: how it was met, kept in the audit detail (a person's email reply, a connected call back, ...)."""
    if name not in MILESTONES:
        raise InvalidInput(f"unknown milestone {name!r}: expected one of {', '.join(MILESTONES)}")
    milestone = ticket.milestone(name)
    if milestone.met_at is not None:
        raise InvalidTransition(f"{name.replace('_', ' ')} of ticket {ticket.number} was already met")
    if name == "resolution_plan":
        if estimate is None:
            raise InvalidInput("a resolution plan needs the estimated resolution time")
        require_aware(estimate, "estimate")
        if estimate < now:
            raise InvalidInput("the estimated resolution time must not be in the past")
        milestone.estimate = estimate
        if ticket.milestone("first_response").met_at is None:
            # A plan follows a diagnosis: the client has had a response by then (the plan's notice says so).
            meet_milestone(session, ticket, "first_response", actor=actor, now=now, notify=False)
    milestone.met_at = now
    milestone.met_in_time = milestone.due_at is None or now <= milestone.due_at
    audit(
        session,
        ticket,
        actor=actor,
        action=f"{name.replace('_', ' ')} met",
        now=now,
        detail={
            "due": iso(milestone.due_at),
            "in_time": milestone.met_in_time,
            "estimate": iso(estimate),
            **({"via": via} if via else {}),
        },
        reason=note,
    )
    if notify and name in ("first_response", "resolution_plan"):
        notify_client(session, ticket, name, now, estimate=iso(estimate), note=note or "", actor=actor)
    return milestone


# How a person's public contact with the client reached them: each meets the first response (policy: the MSP
# "begins addressing the service request"). Automatic notices (confirmation, waiting, SLA notices) never do.
PERSONAL_CONTACT = {
    "email": "an email reply",
    "sms": "a text message reply",
    "portal": "a reply in the portal",
    "call back": "a connected call back",
}


def first_response_by_person(session: Session, ticket: Ticket, *, by: str, how: str, now: datetime) -> Milestone | None:
    """A person's public reply or connected call back is the ticket's first response, as a page's ack already is.

    ``how`` is one of ``PERSONAL_CONTACT`` (email, sms, portal, call back). Meets the first response when it is
    still unmet (audited with who and how, and no "we are working on it" notice: the client has just heard from a
    person), and moves a new ticket to acknowledged. Returns the milestone it met, else None (met already, or
    the ticket ended or was merged).
    """
    if how not in PERSONAL_CONTACT:
        raise InvalidInput(f"unknown way of responding {how!r}: expected one of {', '.join(PERSONAL_CONTACT)}")
    who = one_line(by)[:120]  # the audit's actor: one line
    if not who:
        raise InvalidInput("a first response by a person needs who responded")
    if ticket.merged_into_id is not None or not Status(ticket.status).is_open:
        return None
    milestone = ticket.milestone("first_response")
    if milestone.met_at is not None:
        return None
    met = meet_milestone(
        session,
        ticket,
        "first_response",
        actor=who,
        now=now,
        note=f"{PERSONAL_CONTACT[how]} by {who}",
        notify=False,
        via=how,
    )
    if ticket.status == Status.NEW.value:
        ticket.status = Status.ACKNOWLEDGED.value
        audit(
            session,
            ticket,
            actor=who,
            action="status changed",
            now=now,
            detail={"from": Status.NEW.value, "to": Status.ACKNOWLEDGED.value, "via": how},
        )
    return met


def set_status(
    session: Session,
    ticket: Ticket,
    status: Status | str,
    *,
    actor: str,
    now: datetime,
    policy: SupportPolicy,
    reason: str | None = None,
) -> None:
    """Move a ticket to ``status``; responding and resolving also meet the matching milestones."""
    try:
        new = Status(status)
    except ValueError:
        raise InvalidInput(f"unknown status {status!r}: expected one of {', '.join(s.value for s in Status)}") from None
    old = Status(ticket.status)
    if new == old:
        raise InvalidTransition(f"ticket {ticket.number} is already {new.value}")
    if old == Status.CLOSED:
        raise InvalidTransition(f"ticket {ticket.number} is closed")
    if new == Status.WAITING_ON_CLIENT:
        pause_sla(session, ticket, actor=actor, now=now, reason=reason)
        return
    resumed = ticket.paused_at is not None
    if resumed:
        resume_sla(session, ticket, actor=actor, now=now, policy=policy, status=new, reason=reason)
    if (
        new in (Status.ACKNOWLEDGED, Status.IN_PROGRESS, Status.RESOLVED)
        and ticket.milestone("first_response").met_at is None
    ):
        # Resolved at once: the client gets the resolution notice only.
        meet_milestone(session, ticket, "first_response", actor=actor, now=now, notify=new != Status.RESOLVED)
    if new == Status.RESOLVED and ticket.milestone("resolved").met_at is None:
        meet_milestone(session, ticket, "resolved", actor=actor, now=now)
    if new == Status.RESOLVED:
        notify_client(session, ticket, "resolved", now, note=reason or "", actor=actor)
    if old == Status.RESOLVED and new.is_open:
        # Reopened: the resolved clock runs again from its original due time.
        resolved = ticket.milestone("resolved")
        resolved.met_at = None
        resolved.met_in_time = None
        recompute_milestones(ticket, policy)
    ticket.status = new.value
    if not resumed:  # resuming has already logged the change of status
        audit(
            session,
            ticket,
            actor=actor,
            action="status changed",
            now=now,
            detail={"from": old.value, "to": new.value},
            reason=reason,
        )


def add_note(session: Session, ticket: Ticket, text: str, *, actor: str, now: datetime) -> AuditEntry:
    """Add a note to the ticket's log."""
    if not text or not text.strip():
        raise InvalidInput("a note needs some text")
    return audit(session, ticket, actor=actor, action="note", now=now, detail={"text": text.strip()})


def assign(session: Session, ticket: Ticket, engineer: str | None, *, actor: str, now: datetime) -> None:
    """Assign the ticket to an engineer (None unassigns)."""
    require_open(ticket)
    previous = ticket.assignee
    ticket.assignee = engineer.strip() if engineer and engineer.strip() else None
    audit(session, ticket, actor=actor, action="assigned", now=now, detail={"from": previous, "to": ticket.assignee})


def merge_refusal(ticket: Ticket, into: Ticket) -> str | None:
    """Why ``ticket`` may not go into ``into`` because of who sees what in the portal; None when it may.

    A merged ticket's later messages (a portal reply and its files, an email reply) land on the ticket it
    went into, so everyone who sees that ticket in the portal must already see this one: the same client
    (a client's primary contacts see all its tickets), and never a colleague's own ticket. A ticket of a
    caller the directory does not know has no portal viewer to protect and may go into any ticket.
    """
    if into.client_id is None:
        return None  # no portal user sees a ticket without a client
    if ticket.client_id is None:
        return None  # a caller the directory does not know: the coordinator judged it the same request
    if ticket.client_id != into.client_id:
        here = ticket.client.name if ticket.client is not None else "one client"
        there = into.client.name if into.client is not None else "another client"
        return (
            f"ticket {ticket.number} ({here}) cannot be merged into ticket {into.number} ({there}): "
            "tickets of different clients are never merged, or the client's later replies and files "
            "would show to the other client"
        )
    contact = into.contact
    if contact is not None and contact.id != ticket.contact_id and not contact.primary:
        return (
            f"ticket {ticket.number} cannot be merged into ticket {into.number}: that is {contact.name}'s own ticket, "
            f"who cannot see this one in the portal; merge it the other way round or into a primary contact's ticket"
        )
    return None


def merge_ticket(
    session: Session, ticket: Ticket, into: Ticket, *, actor: str, now: datetime, reason: str | None = None
) -> None:
    """A repeat caller: close ``ticket`` as merged into the open ticket ``into``; both audited."""
    if ticket.id == into.id:
        raise InvalidInput("a ticket cannot be merged into itself")
    if ticket.merged_into_id is not None:
        raise InvalidTransition(f"ticket {ticket.number} is already merged")
    require_open(ticket)
    if into.merged_into_id is not None:
        raise InvalidTransition(f"ticket {into.number} was itself merged; merge into the ticket it went into")
    if not Status(into.status).is_open:
        raise InvalidTransition(f"ticket {into.number} is {into.status}: merge into an open ticket")
    refusal = merge_refusal(ticket, into)
    if refusal is not None:
        raise InvalidTransition(refusal)
    previous = ticket.status
    ticket.merged_into_id = into.id
    ticket.status = Status.CLOSED.value
    if ticket.paused_at is not None:
        next(p for p in ticket.pauses if p.ended_at is None).ended_at = now
        ticket.paused_at = None
    note = reason.strip() if reason and reason.strip() else None
    audit(
        session,
        ticket,
        actor=actor,
        action="merged",
        now=now,
        detail={"into": into.number, "from_status": previous},
        reason=note,
    )
    audit(
        session,
        into,
        actor=actor,
        action="merged in",
        now=now,
        detail={"ticket": ticket.number, "caller": ticket.caller_number, "recording": ticket.recording_sid is not None},
        reason=note,
    )


def correct_transcript(
    session: Session, ticket: Ticket, text: str, *, actor: str, now: datetime, reason: str | None = None
) -> None:
    """Replace the transcript with a coordinator's correction; the original stays in the audit detail."""
    corrected = (text or "").strip()
    if not corrected:
        raise InvalidInput("a corrected transcript needs some text")
    if len(corrected) > 20000:
        raise InvalidInput("a transcript is at most 20000 characters")
    if corrected == (ticket.transcript or "").strip():
        raise InvalidInput("the transcript is unchanged")
    original = ticket.transcript
    ticket.transcript = corrected
    if ticket.transcription_state in (
        TranscriptionState.NONE.value,
        TranscriptionState.NO_SPEECH.value,
        TranscriptionState.FAILED.value,
    ):
        previous_state = ticket.transcription_state
        ticket.transcription_state = TranscriptionState.DONE.value
    else:
        previous_state = None
    ticket.transcript_low_confidence = False
    audit(
        session,
        ticket,
        actor=actor,
        action="transcript corrected",
        now=now,
        detail={"original": original, "corrected": corrected, "previous_state": previous_state},
        reason=reason.strip() if reason and reason.strip() else None,
    )


def call_events(session: Session, call_sid: str | None) -> Sequence[CallEvent]:
    """The steps of a call (menu choices, ring outcome, recording), in order."""
    if not call_sid:
        return []
    return session.scalars(
        select(CallEvent).where(CallEvent.call_sid == call_sid).order_by(CallEvent.at, CallEvent.id)
    ).all()


def outbox_failed(session: Session, message: OutboxMessage, reason: str, now: datetime) -> None:
    """Give up an outbox message after its last attempt, and say so on its ticket.

    A client message (a reply or a notice) is shown failed with the reason in the conversation; any
    other job of a ticket (a page, a confirmation SMS) leaves an audit entry. Either way a person sees it.
    """
    outbox.give_up(message, reason, now)
    payload = message.payload or {}
    row: TicketMessage | None = None
    if message.kind == outbox.DELIVER and payload.get("message") is not None:
        row = session.get(TicketMessage, int(payload["message"]))
    elif message.kind == outbox.NOTIFY:
        row = session.scalars(select(TicketMessage).where(TicketMessage.key == message.key)).first()
    if row is not None:
        if row.state in ("sent", "bounced", "suppressed", "failed"):
            return  # the job settled the message itself before it died
        row.state = "failed"
        row.error = f"not sent after {message.attempts} attempts: {reason}"[:1000]
        audit(
            session,
            row.ticket,
            actor="support line",
            action="email failed" if row.channel == "email" else "sms failed",
            now=now,
            detail={"event": row.event, "to": row.to_address if row.channel == "email" else phone.mask(row.to_address)},
            reason=row.error,
        )
        return
    ticket: Ticket | None = None
    if payload.get("ticket") is not None:
        ticket = session.scalars(select(Ticket).where(Ticket.number == int(payload["ticket"]))).first()
    elif message.kind in (outbox.TRANSCRIBE, outbox.TRANSLATE) and payload.get("recording_sid"):
        ticket = session.scalars(select(Ticket).where(Ticket.recording_sid == payload["recording_sid"])).first()
        if (
            message.kind == outbox.TRANSCRIBE
            and ticket is not None
            and ticket.transcription_state == TranscriptionState.PENDING.value
        ):
            # Shown as a failed transcription, which the console offers to retry, not "pending" for ever.
            ticket.transcription_state = TranscriptionState.FAILED.value
            ticket.transcription_error = f"not transcribed after {message.attempts} attempts: {reason}"[:1000]
    if ticket is not None:
        audit(
            session,
            ticket,
            actor="support line",
            action="job failed",
            now=now,
            detail={"kind": message.kind, "event": payload.get("event"), "attempts": message.attempts},
            reason=reason[:1000],
        )


def require_open(ticket: Ticket) -> None:
    """Refuse a change to a resolved or closed ticket."""
    if not Status(ticket.status).is_open:
        raise InvalidTransition(f"ticket {ticket.number} is {ticket.status}")
