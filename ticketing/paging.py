"""P1 paging, persisted: escalations, pages and acknowledgements; every change audited on the ticket.

The database is the source of truth. Each escalation step is claimed by
advancing ``Escalation.next_position`` with a compare-and-set UPDATE, in the
same transaction that writes one ``Page`` row per (ticket, round, step,
person, channel) under a unique key; only the claimer sends. An
acknowledgement flips the escalation's state, and every send re-reads it first,
so no page goes out after an ack. Functions take the session and "now" and
leave the commit to the caller; nothing here talks to Twilio or Redis.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import and_, exists, select, update
from sqlalchemy.orm import Session

from ticketing import outbox, service
from ticketing.calendar import BusinessCalendar
from ticketing.errors import InvalidTransition
from ticketing.models import Escalation, OutboxMessage, Page, Status, Ticket
from ticketing.oncall import OnCall, Person, Position, choose_policy, load_oncall
from ticketing.priority import Priority
from ticketing.transcripts import missing_note

ACTOR = "paging"

# Escalation states.
PAGING = "paging"  # steps still to come
EXHAUSTED = "exhausted"  # the fallback was paged; still open to an ack
ACKNOWLEDGED = "acknowledged"
STOPPED = "stopped"  # the ticket was resolved, closed or re-triaged below P1
ACKNOWLEDGEABLE = (PAGING, EXHAUSTED)

# Page states and channels.
CLAIMED = "claimed"
SENT = "sent"
FAILED = "failed"
CANCELLED = "cancelled"
SMS = "sms"
CALL = "call"
FOLLOW_UP = "follow-up"
PAGE_CHANNELS = (SMS, CALL)

# Delivery statuses (Twilio status callbacks) that mean the number cannot be reached.
FAILED_DELIVERY = {SMS: frozenset({"failed", "undelivered"}), CALL: frozenset({"failed"})}
# AnsweredBy values of answering-machine detection that are not a person.
MACHINE_ANSWERS = frozenset({"machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax"})
# A scheduled job may fire a little before the database's clock says the step is due.
EARLY_TOLERANCE = timedelta(seconds=2)

SMS_LIMIT = 320  # two SMS segments
TRANSCRIPT_SMS_LIMIT = 300
_ACK = re.compile(r"^\s*(?:1|ack|acknowledge)\b[\s:#.-]*(?:#?\s*(\d{4,9}))?\s*[.!]*\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Claim:
    """A claimed escalation step: the pages to send now, and when the next step falls due."""

    ticket: int
    position: Position
    page_ids: tuple[int, ...]
    next_position: int | None
    next_due_at: datetime | None


@dataclass(frozen=True)
class Acknowledgement:
    """Who acknowledged a ticket's page, how and when; ``already`` when an earlier ack stands."""

    ticket: int
    by: str
    via: str
    at: datetime
    already: bool = False


@dataclass(frozen=True)
class PageContent:
    """What a page says: ticket number, client, caller and, once transcribed, the message."""

    ticket: int
    client: str
    caller: str | None
    transcript: str | None
    low_confidence: bool = False
    missing: str = ""  # "part of the message may be missing: listen to 0:08–0:16"


# --- configuration -------------------------------------------------------------------------------------

_cache: dict[Path, tuple[int, OnCall]] = {}


def oncall_from(path: Path) -> OnCall:
    """The on-call file, validated; reloaded when it changes on disk (so an override needs no restart)."""
    path = Path(path)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        stamp = -1
    cached = _cache.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    config = load_oncall(path)
    _cache[path] = (stamp, config)
    return config


# --- texts ---------------------------------------------------------------------------------------------


def shorten(text: str, limit: int) -> str:
    """Whitespace collapsed, cut at a sentence (or else word) end within ``limit`` characters, '…' when cut."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    room = flat[: limit - 1]
    sentence = max(room.rfind(". "), room.rfind("? "), room.rfind("! "))
    if sentence >= limit // 2:
        return room[: sentence + 1] + " …"
    word = room.rfind(" ")
    return (room[:word] if word >= limit // 2 else room).rstrip(" ,;:-") + "…"


def content_of(ticket: Ticket) -> PageContent:
    """The page content of a ticket as it stands now."""
    transcript = (ticket.transcript or "").strip() or None
    return PageContent(
        ticket=int(ticket.number or 0),
        client=ticket.client.name if ticket.client is not None else "unknown client",
        caller=ticket.caller_number,
        transcript=transcript,
        low_confidence=bool(ticket.transcript_low_confidence),
        missing=missing_note(ticket.transcript_missing),
    )


def page_sms(content: PageContent, company: str) -> str:
    """The page SMS: ticket number, client, caller number, 'reply 1 to acknowledge' (and the message, once known)."""
    head = (
        f"{company} P1 CRITICAL: ticket #{content.ticket}, {content.client}, "
        f"caller {content.caller or 'number withheld'}. Reply 1 to acknowledge."
    )
    if content.transcript is None:
        return head
    room = SMS_LIMIT - len(head) - len(' Message: ""')
    return head + (f' Message: "{shorten(content.transcript, room)}"' if room >= 40 else "")


def follow_up_sms(content: PageContent, *, acknowledged: bool) -> str:
    """The transcript follow-up to people already paged, shortened to fit two SMS segments."""
    note = " (low confidence)" if content.low_confidence else ""
    tail = (f" ({content.missing[:1].upper()}{content.missing[1:]}.)" if content.missing else "") + (
        "" if acknowledged else " Reply 1 to acknowledge."
    )
    head = f"Ticket #{content.ticket} transcript{note}: "
    room = TRANSCRIPT_SMS_LIMIT - len(head) - len(tail) - 2
    return f'{head}"{shorten(content.transcript or "", room)}"{tail}'


def parse_ack(body: str | None) -> tuple[bool, int | None]:
    """Is an SMS an acknowledgement ('1', 'ack', 'ACK 400127', any case), and for which ticket number?"""
    match = _ACK.match(body or "")
    if match is None:
        return False, None
    return True, int(match.group(1)) if match.group(1) else None


# --- escalations ---------------------------------------------------------------------------------------


def lock_ticket(session: Session, ticket_id: int) -> None:
    """Lock the ticket's row first in every paging write, so concurrent acks, sends and callbacks never deadlock."""
    session.execute(select(Ticket.id).where(Ticket.id == ticket_id).with_for_update())


def escalation_of(session: Session, ticket: Ticket, *, for_update: bool = False) -> Escalation | None:
    """The ticket's escalation, if paging ever started."""
    query = select(Escalation).where(Escalation.ticket_id == ticket.id)
    if for_update:
        query = query.with_for_update()
    return session.scalars(query).first()


def start_escalation(
    session: Session, ticket: Ticket, *, oncall: OnCall, calendar: BusinessCalendar, now: datetime
) -> Escalation:
    """The ticket's escalation, created once with its first step due now (business-hours or after-hours policy)."""
    existing = escalation_of(session, ticket)
    if existing is not None:
        return existing
    business_hours = calendar.is_business_hours(now)
    policy = choose_policy(oncall, now, calendar)
    escalation = Escalation(
        ticket_id=ticket.id,
        policy=policy.key,
        business_hours=business_hours,
        state=PAGING,
        started_at=now,
        next_position=0,
        next_due_at=now,
    )
    session.add(escalation)
    service.audit(
        session,
        ticket,
        actor=ACTOR,
        action="paging started",
        now=now,
        detail={
            "policy": policy.key,
            "business_hours": business_hours,
            "steps": [s.label for s in policy.steps],
            "rounds": policy.rounds,
        },
    )
    session.flush()
    return escalation


def positions_of(escalation: Escalation, oncall: OnCall) -> tuple[Position, ...]:
    """The escalation's positions under its policy (or, if the policy was renamed, the one for its hours)."""
    policy = oncall.policies.get(escalation.policy) or oncall.policy_for(escalation.business_hours)
    return policy.positions()


def stop_if_not_pageable(session: Session, ticket: Ticket, escalation: Escalation, now: datetime) -> bool:
    """Stop paging a ticket that was resolved, closed or re-triaged below P1; True when stopped."""
    if Status(ticket.status).is_open and ticket.priority == Priority.P1.value and ticket.merged_into_id is None:
        return False
    stopped = session.execute(
        update(Escalation)
        .where(Escalation.id == escalation.id, Escalation.state.in_(ACKNOWLEDGEABLE))
        .values(state=STOPPED, next_due_at=None, ended_at=now)
    ).rowcount
    if stopped:
        _cancel_claims(session, escalation.id, now)
        service.audit(
            session,
            ticket,
            actor=ACTOR,
            action="paging stopped",
            now=now,
            detail={"status": ticket.status, "priority": ticket.priority},
        )
    return True


def claim_step(
    session: Session, ticket: Ticket, escalation: Escalation, position_index: int, *, oncall: OnCall, now: datetime
) -> Claim | None:
    """Claim the step at ``position_index`` if it is due and unclaimed, writing its pages; None otherwise."""
    if escalation.state != PAGING or escalation.next_position != position_index:
        return None
    if escalation.next_due_at is None or escalation.next_due_at > now + EARLY_TOLERANCE:
        return None
    positions = positions_of(escalation, oncall)
    if position_index >= len(positions):
        return None
    position = positions[position_index]
    last = position_index == len(positions) - 1
    next_due = None if last else now + position.wait
    claimed = session.execute(
        update(Escalation)
        .where(
            Escalation.id == escalation.id,
            Escalation.state == PAGING,
            Escalation.next_position == position_index,
        )
        .values(next_position=position_index + 1, next_due_at=next_due, state=EXHAUSTED if last else PAGING)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not claimed:
        return None
    session.refresh(escalation)
    people = oncall.people_for(position.target, now)
    pages = [
        _add_page(session, escalation, ticket, position, person, channel, now)
        for person in people
        for channel in PAGE_CHANNELS
    ]
    session.flush()
    service.audit(
        session,
        ticket,
        actor=ACTOR,
        action="paged",
        now=now,
        detail={
            "position": position.label,
            "target": position.target.label,
            "people": [p.name for p in people],
            "next_step_at": next_due.isoformat() if next_due else None,
        },
    )
    if last:
        service.audit(
            session,
            ticket,
            actor=ACTOR,
            action="escalation exhausted",
            now=now,
            detail={"fallback": [p.name for p in people], "alert": True},
            reason="nobody acknowledged after every round of the escalation policy",
        )
    return Claim(
        ticket=int(ticket.number or 0),
        position=position,
        page_ids=tuple(p.id for p in pages),
        next_position=None if last else position_index + 1,
        next_due_at=next_due,
    )


def _add_page(
    session: Session,
    escalation: Escalation,
    ticket: Ticket,
    position: Position,
    person: Person,
    channel: str,
    now: datetime,
) -> Page:
    page = Page(
        escalation_id=escalation.id,
        key=f"{ticket.number}:{position.round}:{position.step}:{person.key}:{channel}",
        position=position.index,
        round=position.round,
        step=position.step,
        person=person.key,
        person_name=person.name[:120],
        to_number=person.mobile,
        channel=channel,
        state=CLAIMED,
        claimed_at=now,
        tries=0,
        updated_at=now,
    )
    session.add(page)
    return page


def hurry(session: Session, escalation: Escalation, position_index: int, now: datetime) -> bool:
    """Make the step at ``position_index`` due now (everyone of the previous step is unreachable)."""
    return bool(
        session.execute(
            update(Escalation)
            .where(
                Escalation.id == escalation.id,
                Escalation.state == PAGING,
                Escalation.next_position == position_index,
                Escalation.next_due_at > now,
            )
            .values(next_due_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
    )


def step_unreachable(session: Session, escalation_id: int, position_index: int) -> bool:
    """True when every person paged at this position is unreachable on every channel."""
    pages = session.scalars(
        select(Page).where(
            Page.escalation_id == escalation_id, Page.position == position_index, Page.channel.in_(PAGE_CHANNELS)
        )
    ).all()
    if not pages:
        return False
    by_person: dict[str, list[Page]] = {}
    for page in pages:
        by_person.setdefault(page.person, []).append(page)
    return all(all(page_failed(p) for p in group) for group in by_person.values())


def page_failed(page: Page) -> bool:
    """True when the page could not be sent, or Twilio reported the number unreachable."""
    return page.state == FAILED or (page.delivery_status or "") in FAILED_DELIVERY.get(page.channel, frozenset())


def due_steps(session: Session, now: datetime, limit: int = 100) -> list[tuple[int, int]]:
    """(ticket number, position) of every escalation step that is due, oldest first."""
    rows = session.execute(
        select(Ticket.number, Escalation.next_position)
        .join(Ticket, Ticket.id == Escalation.ticket_id)
        .where(Escalation.state == PAGING, Escalation.next_due_at.is_not(None), Escalation.next_due_at <= now)
        .order_by(Escalation.next_due_at)
        .limit(limit)
    ).all()
    return [(int(n), int(p)) for n, p in rows if n is not None]


def unstarted_pages(session: Session, before: datetime, limit: int = 100) -> list[int]:
    """Ticket numbers whose page request is older than ``before`` but whose paging never started (job lost)."""
    rows = session.execute(
        select(OutboxMessage.payload)
        .where(
            OutboxMessage.kind == outbox.PAGE,
            OutboxMessage.completed_at.is_(None),
            OutboxMessage.created_at <= before,
        )
        .order_by(OutboxMessage.id)
        .limit(limit)
    ).all()
    numbers = [int(p["ticket"]) for (p,) in rows if isinstance(p, dict) and "ticket" in p]
    if not numbers:
        return []
    started = session.scalars(
        select(Ticket.number).where(Ticket.number.in_(numbers), exists().where(Escalation.ticket_id == Ticket.id))
    ).all()
    return [n for n in numbers if n not in set(started)]


# --- pages ---------------------------------------------------------------------------------------------


def claimable_pages(session: Session, page_ids: Sequence[int]) -> list[Page]:
    """The given pages still waiting to be sent, for an escalation nobody has acknowledged."""
    if not page_ids:
        return []
    return list(
        session.scalars(
            select(Page)
            .join(Escalation, Escalation.id == Page.escalation_id)
            .where(Page.id.in_(page_ids), Page.state == CLAIMED)
            .where((Page.channel == FOLLOW_UP) | Escalation.state.in_(ACKNOWLEDGEABLE))
            .order_by(Page.id)
        ).all()
    )


def stale_claims(session: Session, before: datetime, limit: int = 100) -> list[int]:
    """Pages claimed before ``before`` and never sent (the sending process died): to be sent again."""
    return list(
        session.scalars(
            select(Page.id)
            .join(Escalation, Escalation.id == Page.escalation_id)
            .where(Page.state == CLAIMED, Page.claimed_at < before)
            .where((Page.channel == FOLLOW_UP) | Escalation.state.in_(ACKNOWLEDGEABLE))
            .order_by(Page.id)
            .limit(limit)
        ).all()
    )


def still_claimed(session: Session, page_id: int) -> bool:
    """True while a claimed page is still to be sent (an acknowledgement cancels it)."""
    return session.scalar(select(Page.state).where(Page.id == page_id)) == CLAIMED


def reclaim(session: Session, page_id: int, claimed_at: datetime, now: datetime) -> bool:
    """Take over a stale claim (compare-and-set on its claim time), so one sweeper resends it."""
    return bool(
        session.execute(
            update(Page)
            .where(Page.id == page_id, Page.state == CLAIMED, Page.claimed_at == claimed_at)
            .values(claimed_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
    )


def record_sent(session: Session, page: Page, *, sid: str | None, error: str | None, tries: int, now: datetime) -> None:
    """Record the outcome of sending a page (its Twilio SID, or the error after the last try)."""
    page.tries = (page.tries or 0) + tries
    page.updated_at = now
    if sid is not None:
        page.state = SENT
        page.twilio_sid = sid
        page.sent_at = now
        page.error = None
    else:
        page.state = FAILED
        page.error = (error or "unknown error")[:1000]
        ticket = page.escalation.ticket
        service.audit(
            session,
            ticket,
            actor=ACTOR,
            action="page failed",
            now=now,
            detail={
                "person": page.person_name,
                "channel": page.channel,
                "error": page.error[:300],
                "tries": page.tries,
            },
        )


def cancel_page(page: Page, now: datetime) -> None:
    """The page will not be sent (acknowledged meanwhile)."""
    page.state = CANCELLED
    page.updated_at = now


def _cancel_claims(session: Session, escalation_id: int, now: datetime) -> None:
    session.execute(
        update(Page)
        .where(Page.escalation_id == escalation_id, Page.state == CLAIMED, Page.channel != FOLLOW_UP)
        .values(state=CANCELLED, updated_at=now)
        .execution_options(synchronize_session=False)
    )


def page_by_id(session: Session, page_id: int | str | None) -> Page | None:
    """The page with this id (from a callback URL), or None."""
    try:
        return session.get(Page, int(str(page_id)))
    except (TypeError, ValueError):
        return None


def record_delivery(
    session: Session, page: Page, *, status: str, now: datetime, answered_by: str | None = None
) -> bool:
    """Store a status callback's delivery status; True when the escalation should move on now (step unreachable)."""
    if page.delivery_status == status[:24]:
        return False  # status callbacks arrive at least once
    escalation = page.escalation
    lock_ticket(session, escalation.ticket_id)
    page.delivery_status = status[:24]
    if answered_by:
        page.answered_by = answered_by[:32]
    page.updated_at = now
    if not page_failed(page):
        return False
    service.audit(
        session,
        escalation.ticket,
        actor=ACTOR,
        action="page not delivered",
        now=now,
        detail={"person": page.person_name, "channel": page.channel, "status": status},
    )
    session.flush()
    if escalation.state == PAGING and page.position == escalation.next_position - 1:
        if step_unreachable(session, escalation.id, page.position):
            return hurry(session, escalation, escalation.next_position, now)
    return False


def record_answer(session: Session, page: Page, *, answered_by: str | None, now: datetime) -> bool:
    """The page call was answered; True when a person (or an undecided detector) answered, False for a machine."""
    lock_ticket(session, page.escalation.ticket_id)
    if answered_by:
        page.answered_by = answered_by[:32]
    page.updated_at = now
    machine = (answered_by or "") in MACHINE_ANSWERS
    if machine:
        service.audit(
            session,
            page.escalation.ticket,
            actor=ACTOR,
            action="page call reached voicemail",
            now=now,
            detail={"person": page.person_name, "answered_by": answered_by},
            reason="a machine answering is not an acknowledgement",
        )
    return not machine


# --- acknowledgement -----------------------------------------------------------------------------------


def acknowledge(
    session: Session,
    ticket: Ticket | int | str,
    by: str,
    now: datetime,
    via: str,
    *,
    person: str | None = None,
    counts_as_first_response: bool = True,
) -> Acknowledgement:
    """Acknowledge a ticket's page: every pending escalation step stops at once; audited; first response met.

    Idempotent: a second acknowledgement returns the first with ``already`` set.
    Raises UnknownTicket, or InvalidTransition for a closed ticket or one never paged.
    """
    t = ticket if isinstance(ticket, Ticket) else service.get_ticket(session, ticket)
    lock_ticket(session, t.id)
    escalation = escalation_of(session, t, for_update=True)
    if escalation is not None and escalation.acknowledged_at is not None:
        return _existing(t, escalation)
    if not Status(t.status).is_open:
        raise InvalidTransition(f"ticket {t.number} is {t.status}")
    if escalation is None:
        if t.priority != Priority.P1.value:
            raise InvalidTransition(f"ticket {t.number} is not being paged (it is {t.priority})")
        # Acknowledged before the page job ran: the job will find nothing to page.
        escalation = Escalation(
            ticket_id=t.id, policy="", business_hours=False, state=PAGING, started_at=now, next_position=0
        )
        session.add(escalation)
        session.flush()
    who = by.strip() or "unknown"
    won = session.execute(
        update(Escalation)
        .where(Escalation.id == escalation.id, Escalation.acknowledged_at.is_(None))
        .values(
            state=ACKNOWLEDGED if escalation.state in ACKNOWLEDGEABLE else escalation.state,
            next_due_at=None,
            acknowledged_at=now,
            acknowledged_by=who[:120],
            acknowledged_person=person,
            acknowledged_via=via[:16],
            ended_at=now,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(escalation)
    if not won:
        return _existing(t, escalation)
    _cancel_claims(session, escalation.id, now)
    service.audit(
        session,
        t,
        actor=who,
        action="acknowledged",
        now=now,
        detail={"via": via, "person": person, "after_seconds": round((now - escalation.started_at).total_seconds())},
    )
    if counts_as_first_response:
        if t.milestone("first_response").met_at is None:
            service.meet_milestone(session, t, "first_response", actor=who, now=now, note=f"page acknowledged by {via}")
        if t.status == Status.NEW.value:
            t.status = Status.ACKNOWLEDGED.value
            service.audit(
                session,
                t,
                actor=who,
                action="status changed",
                now=now,
                detail={"from": Status.NEW.value, "to": Status.ACKNOWLEDGED.value},
            )
    if t.assignee is None:
        service.assign(session, t, who, actor=who, now=now)
    return Acknowledgement(ticket=int(t.number or 0), by=who, via=via, at=now)


def _existing(ticket: Ticket, escalation: Escalation) -> Acknowledgement:
    assert escalation.acknowledged_at is not None
    return Acknowledgement(
        ticket=int(ticket.number or 0),
        by=escalation.acknowledged_by or "unknown",
        via=escalation.acknowledged_via or "unknown",
        at=escalation.acknowledged_at,
        already=True,
    )


def paged_tickets_for(session: Session, number: str, *, since: datetime | None = None) -> list[tuple[Ticket, Page]]:
    """Tickets whose page went to ``number`` (E.164), most recently paged first, with that latest page."""
    query = (
        select(Ticket, Page)
        .join(Escalation, Escalation.ticket_id == Ticket.id)
        .join(Page, and_(Page.escalation_id == Escalation.id, Page.to_number == number))
        .order_by(Page.claimed_at.desc(), Page.id.desc())
    )
    if since is not None:
        query = query.where(Page.claimed_at >= since)
    seen: dict[int, tuple[Ticket, Page]] = {}
    for ticket, page in session.execute(query).all():
        seen.setdefault(ticket.id, (ticket, page))
    return list(seen.values())


def follow_up_targets(session: Session, escalation: Escalation) -> list[tuple[str, str, str]]:
    """(person key, name, number) of everyone paged so far; only the acknowledger once acknowledged."""
    people: dict[str, tuple[str, str, str]] = {}
    for page in escalation.pages:
        if page.channel in PAGE_CHANNELS and page.state != CANCELLED:
            people.setdefault(page.person, (page.person, page.person_name, page.to_number))
    if escalation.acknowledged_at is not None:
        return [p for key, p in people.items() if key == escalation.acknowledged_person]
    return list(people.values())


def add_follow_up(
    session: Session, escalation: Escalation, ticket: Ticket, person: tuple[str, str, str], now: datetime
) -> Page | None:
    """Claim the transcript follow-up SMS to one person (once per ticket and person); None when already claimed."""
    key = f"{ticket.number}:transcript:{person[0]}"
    if session.scalar(select(Page.id).where(Page.key == key)) is not None:
        return None
    page = Page(
        escalation_id=escalation.id,
        key=key,
        position=-1,
        round=0,
        step=0,
        person=person[0],
        person_name=person[1][:120],
        to_number=person[2],
        channel=FOLLOW_UP,
        state=CLAIMED,
        claimed_at=now,
        tries=0,
        updated_at=now,
    )
    session.add(page)
    session.flush()
    return page
