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
from typing import Any

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.orm import Session

from ticketing import outbox, service
from ticketing.calendar import BusinessCalendar
from ticketing.errors import InvalidTransition
from ticketing.models import Escalation, EscalationJoin, OutboxMessage, Page, Status, Ticket
from ticketing.oncall import OnCall, Person, Position, choose_policy, load_oncall
from ticketing.priority import Priority
from ticketing.transcripts import missing_note, ticket_number_note

ACTOR = "paging"

# Escalation states.
PAGING = "paging"  # steps still to come (or, after the fallback, the check whether anyone was reached)
EXHAUSTED = "exhausted"  # every round and the fallback paged and someone reached (or the horizon passed)
ACKNOWLEDGED = "acknowledged"
STOPPED = "stopped"  # the ticket was resolved, closed or re-triaged below P1
ACKNOWLEDGEABLE = (PAGING, EXHAUSTED)

# Page states and channels.
CLAIMED = "claimed"
SENT = "sent"
FAILED = "failed"  # the person cannot be reached on this channel (invalid number, carrier undelivered)
RETRYING = "retrying"  # the provider failed (5xx, 429, timeout, unreachable): tried again at next_try_at
CANCELLED = "cancelled"
SMS = "sms"
CALL = "call"
EMAIL = "email"
FOLLOW_UP = "follow-up"
PHONE_CHANNELS = (SMS, CALL)
PAGE_CHANNELS = (SMS, CALL, EMAIL)

# Delivery statuses (Twilio status callbacks) that say the page did not arrive.
FAILED_DELIVERY = {SMS: frozenset({"failed", "undelivered"}), CALL: frozenset({"failed"})}
# ... and those that say it did: the phone got the SMS, or the call was answered (by anyone).
DELIVERED = {SMS: frozenset({"delivered", "read"}), CALL: frozenset({"in-progress", "completed", "answered"})}
# AnsweredBy values of answering-machine detection that are not a person.
MACHINE_ANSWERS = frozenset({"machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax"})
# A scheduled job may fire a little before the database's clock says the step is due.
EARLY_TOLERANCE = timedelta(seconds=2)

SMS_LIMIT = 320  # two SMS segments
ANOTHER_CALL_QUIET = timedelta(minutes=2)  # at most one "another call" text per escalation in this time
TRANSCRIPT_SMS_LIMIT = 300
# The languages a transcript may be translated from, as the pages name them.
LANGUAGE_NAMES = {"es": "Spanish", "en": "English"}
_ACK = re.compile(r"^\s*(?:1|ack|acknowledge)\b[\s:#.-]*(?:#?\s*(\d{4,9}))?\s*[.!]*\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Claim:
    """A claimed escalation step: the pages to send now, and when the next step falls due."""

    ticket: int
    position: Position
    page_ids: tuple[int, ...]
    next_position: int | None
    next_due_at: datetime | None
    cycle: int = 0


@dataclass(frozen=True)
class Delivery:
    """How many of an escalation's pages reached a phone or a mailbox, of how many tried."""

    delivered: int
    total: int


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
    ticket_url: str | None = None  # the ticket in the console (sign-in leads there)
    missing: str = ""  # "part of the message may be missing: listen to 0:08–0:16"
    numbers: str = ""  # "check 805 555 5018 (another reading heard 805 555 0188) against the recording"
    # A message in another language: the English translation is what the pages carry, marked as such
    # ("Translated from Spanish"), and ``transcript`` says so too (for pages that only read that).
    translated_from: str | None = None  # "Spanish"
    translation: str | None = None
    original: str | None = None  # the transcript in the language spoken
    caller_language: str | None = None  # "Spanish": the caller chose it on the call (the callback needs it)


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


def content_of(ticket: Ticket, console_url: str | None = None) -> PageContent:
    """The page content of a ticket as it stands now; with the console's base URL, a link to the ticket."""
    transcript = (ticket.transcript or "").strip() or None
    translation = (getattr(ticket, "transcript_translation", None) or "").strip() or None
    language = ticket.transcript_language or "en"
    translated_from = original = None
    if translation and transcript and language != "en":
        translated_from = LANGUAGE_NAMES.get(language, language)
        original = transcript
        transcript = f"Translated from {translated_from}: {translation}"
    number = int(ticket.number or 0)
    return PageContent(
        ticket=number,
        client=ticket.client.name if ticket.client is not None else "unknown client",
        caller=ticket.caller_number,
        transcript=transcript,
        low_confidence=bool(ticket.transcript_low_confidence) or _translation_doubtful(ticket, translated_from),
        ticket_url=f"{console_url.rstrip('/')}/tickets/{number}" if console_url else None,
        missing=missing_note(ticket.transcript_missing),
        numbers=ticket_number_note(
            ticket.transcript, getattr(ticket, "transcript_pass", None), getattr(ticket, "transcript_passes", None)
        ),
        translated_from=translated_from,
        translation=translation if translated_from else None,
        original=original,
        caller_language=LANGUAGE_NAMES.get(ticket.language, ticket.language)
        if getattr(ticket, "language", "en") not in (None, "", "en")
        else None,
    )


def _translation_doubtful(ticket: Ticket, translated_from: str | None) -> bool:
    """The translation a page quotes was marked low confidence (unsure, or a loop cut short)."""
    if not translated_from:
        return False
    passes = getattr(ticket, "transcript_passes", None) or ()
    return any(p.get("pass") == "translation" and p.get("low_confidence") for p in passes if isinstance(p, dict))


def page_sms(content: PageContent, company: str) -> str:
    """The page SMS: ticket number, client, caller number, 'reply 1 to acknowledge' (and the message, once known)."""
    head = (
        f"{company} P1 CRITICAL: ticket #{content.ticket}, {content.client}, "
        f"caller {content.caller or 'number withheld'}"
        + (f" ({content.caller_language}-speaking)" if content.caller_language else "")
        + ". Reply 1 to acknowledge."
        + (f" {content.ticket_url}" if content.ticket_url else "")
    )
    if content.transcript is None:
        return head
    label, text = _message_label(content, "Message")
    room = SMS_LIMIT - len(head) - len(f' {label}: ""')
    return head + (f' {label}: "{shorten(text, room)}"' if room >= 40 else "")


def _message_label(content: PageContent, label: str) -> tuple[str, str]:
    """The label and text a page quotes: the transcript, or its English translation marked as one."""
    if content.translated_from and content.translation:
        return f"Translated from {content.translated_from}", content.translation
    return label, content.transcript or ""


def follow_up_sms(content: PageContent, *, acknowledged: bool) -> str:
    """The transcript follow-up to people already paged, shortened to fit two SMS segments."""
    note = " (low confidence)" if content.low_confidence else ""
    notes = " ".join(f"({n[:1].upper()}{n[1:]}.)" for n in (content.numbers, content.missing) if n)
    tail = (f" {notes}" if notes else "") + ("" if acknowledged else " Reply 1 to acknowledge.")
    label, text = _message_label(content, "")
    head = f"Ticket #{content.ticket} transcript{note}" + (f". {label}: " if label else ": ")
    room = TRANSCRIPT_SMS_LIMIT - len(head) - len(tail) - 2
    return f'{head}"{shorten(text, room)}"{tail}'


def numbers_sms(content: PageContent, *, acknowledged: bool) -> str:
    """The follow-up to people already paged when a second reading puts a number of the transcript in doubt."""
    head = f"Ticket #{content.ticket}: the transcript's numbers may be misheard. "
    tail = ("." if acknowledged else ". Reply 1 to acknowledge.") + (
        f" {content.ticket_url}" if content.ticket_url else ""
    )
    note = shorten(content.numbers[:1].upper() + content.numbers[1:], SMS_LIMIT - len(head) - len(tail))
    return f"{head}{note}{tail}"


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
    session: Session,
    ticket: Ticket,
    *,
    oncall: OnCall,
    calendar: BusinessCalendar,
    now: datetime,
    horizon: timedelta = timedelta(hours=1),
    withheld: bool = False,
) -> Escalation:
    """The ticket's escalation, created once with its first step due now (business-hours or after-hours policy).

    While nobody has been reached it repeats until ``horizon`` after the ticket's first-response target.
    """
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
        cycle=0,
        repeat_until=(ticket.milestone("first_response").due_at or now) + horizon,
        withheld_caller=withheld,
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
    session: Session,
    ticket: Ticket,
    escalation: Escalation,
    position_index: int,
    *,
    oncall: OnCall,
    now: datetime,
    email: bool = True,
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
    # After the fallback, wait as long as a first step before deciding: exhausted, or round 1 again.
    next_due = now + (positions[0].wait if last else position.wait)
    claimed = session.execute(
        update(Escalation)
        .where(
            Escalation.id == escalation.id,
            Escalation.state == PAGING,
            Escalation.next_position == position_index,
        )
        .values(next_position=position_index + 1, next_due_at=next_due)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not claimed:
        return None
    session.refresh(escalation)
    if position_index > 0 or escalation.cycle > 0:
        _mark_unreached(session, ticket, escalation, now)
    people = oncall.people_for(position.target, now)
    channels = [(person, channel) for person in people for channel in PHONE_CHANNELS]
    if email:
        channels += [(person, EMAIL) for person in people if person.email]
    _supersede(session, escalation, [(p.key, c) for p, c in channels], now)
    pages = [_add_page(session, escalation, ticket, position, person, channel, now) for person, channel in channels]
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
            "channels": sorted({c for _p, c in channels}),
            "cycle": escalation.cycle + 1,
            "next_step_at": None if last else next_due.isoformat(),
        },
    )
    return Claim(
        ticket=int(ticket.number or 0),
        position=position,
        page_ids=tuple(p.id for p in pages),
        next_position=position_index + 1,
        next_due_at=next_due,
        cycle=escalation.cycle,
    )


def finish_cycle(
    session: Session, ticket: Ticket, escalation: Escalation, position_index: int, *, oncall: OnCall, now: datetime
) -> str | None:
    """After the fallback's wait: "exhausted" once anyone was reached (or past the horizon), else "repeat".

    Never "exhausted" while no page was delivered and the horizon has not passed: the escalation
    starts again at round 1 (a new cycle) and the ticket stays in "nobody reached". None: not due.
    """
    positions = positions_of(escalation, oncall)
    if escalation.state != PAGING or escalation.next_position != position_index or position_index != len(positions):
        return None
    if escalation.next_due_at is None or escalation.next_due_at > now + EARLY_TOLERANCE:
        return None
    reached = delivery_of(escalation).delivered > 0
    horizon = escalation.repeat_until
    repeat = not reached and horizon is not None and now < horizon  # no horizon: an escalation from before repeats
    values: dict[str, object] = (
        {"next_position": 0, "next_due_at": now, "cycle": escalation.cycle + 1}
        if repeat
        else {"state": EXHAUSTED, "next_due_at": None}
    )
    won = session.execute(
        update(Escalation)
        .where(Escalation.id == escalation.id, Escalation.state == PAGING, Escalation.next_position == position_index)
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not won:
        return None
    session.refresh(escalation)
    if repeat:
        _mark_unreached(session, ticket, escalation, now)
        service.audit(
            session,
            ticket,
            actor=ACTOR,
            action="paging repeated",
            now=now,
            detail={"cycle": escalation.cycle + 1, "until": horizon.isoformat() if horizon else None, "alert": True},
            reason="no page has been delivered to anyone yet: the escalation starts again at round 1",
        )
        return "repeat"
    fallback = [p.person_name for p in escalation.pages if p.position == position_index - 1 and page_delivered(p)]
    service.audit(
        session,
        ticket,
        actor=ACTOR,
        action="escalation exhausted",
        now=now,
        detail={"fallback": sorted(set(fallback)), "nobody_reached": not reached, "alert": True},
        reason="nobody acknowledged after every round of the escalation policy"
        + ("" if reached else "; no page was delivered before the paging horizon"),
    )
    return "exhausted"


def _mark_unreached(session: Session, ticket: Ticket, escalation: Escalation, now: datetime) -> None:
    """A step's wait passed: if no page has been delivered yet, the ticket shows "paging failed — nobody reached"."""
    if escalation.unreached_since is not None or escalation.acknowledged_at is not None:
        return
    counts = delivery_of(escalation)
    if counts.delivered:
        return
    escalation.unreached_since = now
    service.audit(
        session,
        ticket,
        actor=ACTOR,
        action="nobody reached",
        now=now,
        detail={"pages_delivered": 0, "pages": counts.total, "alert": True},
        reason="paging failed: no page has been delivered to anyone yet; paging goes on",
    )


def mark_reached(session: Session, page: Page, now: datetime) -> None:
    """A page was delivered: the ticket leaves "nobody reached" (audited once)."""
    escalation = page.escalation
    if escalation.unreached_since is None:
        return
    escalation.unreached_since = None
    service.audit(
        session,
        escalation.ticket,
        actor=ACTOR,
        action="page delivered",
        now=now,
        detail={"person": page.person_name, "channel": page.channel},
        reason="a page reached someone after nobody had been reached",
    )


def page_delivered(page: Page) -> bool:
    """True when Twilio reported the page delivered to the phone (SMS delivered, call answered).

    An email page accepted by the mail server is a second way out, not proof that anyone was
    reached: it never ends "nobody reached" on its own (see ``emails_sent``).
    """
    if page.channel not in PHONE_CHANNELS:
        return False
    return (page.delivery_status or "") in DELIVERED.get(page.channel, frozenset()) or bool(page.answered_by)


def delivery_of(escalation: Escalation) -> Delivery:
    """The "N of M pages delivered": SMS and call pages tried (not those an ack cancelled unsent), and how many
    Twilio reported delivered."""
    pages = [p for p in escalation.pages if p.channel in PHONE_CHANNELS and (p.state != CANCELLED or p.tries)]
    return Delivery(delivered=sum(1 for p in pages if page_delivered(p)), total=len(pages))


def emails_sent(escalation: Escalation) -> int:
    """Email pages the mail server accepted."""
    return sum(1 for p in escalation.pages if p.channel == EMAIL and p.state == SENT)


def _supersede(session: Session, escalation: Escalation, targets: Sequence[tuple[str, str]], now: datetime) -> None:
    """A new page to the same person on the same channel replaces one still waiting for the provider to come back."""
    for page in escalation.pages:
        if page.state == RETRYING and (page.person, page.channel) in targets:
            page.state = CANCELLED
            page.next_try_at = None
            page.error = ((page.error or "") + " (superseded by a later page)")[:1000]
            page.updated_at = now


def _add_page(
    session: Session,
    escalation: Escalation,
    ticket: Ticket,
    position: Position,
    person: Person,
    channel: str,
    now: datetime,
) -> Page:
    cycle = f"c{escalation.cycle}:" if escalation.cycle else ""
    page = Page(
        escalation_id=escalation.id,
        key=f"{ticket.number}:{cycle}{position.round}:{position.step}:{person.key}:{channel}",
        position=position.index,
        round=position.round,
        step=position.step,
        person=person.key,
        person_name=person.name[:120],
        to_number="" if channel == EMAIL else person.mobile,
        to_address=person.email if channel == EMAIL else None,
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
    """True when every person paged at this position is unreachable on every phone channel.

    Only a failure about the number counts (state "failed"); a provider failure ("retrying")
    never makes a step unreachable, so failing sends never speed the escalation up.
    """
    pages = session.scalars(
        select(Page).where(
            Page.escalation_id == escalation_id, Page.position == position_index, Page.channel.in_(PHONE_CHANNELS)
        )
    ).all()
    if not pages:
        return False
    by_person: dict[str, list[Page]] = {}
    for page in pages:
        by_person.setdefault(page.person, []).append(page)
    return all(all(page_failed(p) for p in group) for group in by_person.values())


def page_failed(page: Page) -> bool:
    """True when Twilio said the person's number cannot be reached (when sending, or in a status callback)."""
    return page.state == FAILED


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


def record_sent(
    session: Session,
    page: Page,
    *,
    sid: str | None,
    error: str | None,
    tries: int,
    now: datetime,
    retry_at: datetime | None = None,
) -> None:
    """Record the outcome of sending a page: its SID (or mail server), or the error after this round of tries.

    ``retry_at`` set: a provider failure, the page waits in "retrying" (audited the first time);
    unset: the person cannot be reached on this channel ("failed", audited).
    """
    page.tries = (page.tries or 0) + tries
    page.updated_at = now
    if sid is not None:
        page.state = SENT
        if page.channel == EMAIL:
            page.delivery_status = "accepted"  # by the mail server
        else:
            page.twilio_sid = sid
        page.sent_at = now
        page.next_try_at = None
        page.error = None
        return
    first = page.state != RETRYING and not page.error
    page.error = (error or "unknown error")[:1000]
    detail = {"person": page.person_name, "channel": page.channel, "error": page.error[:300], "tries": page.tries}
    if retry_at is not None:
        page.state = RETRYING
        page.next_try_at = retry_at
        if first:
            service.audit(
                session,
                page.escalation.ticket,
                actor=ACTOR,
                action="page retrying",
                now=now,
                detail=detail,
                reason="the provider failed (not the person's number): trying again until it works",
            )
        return
    page.state = FAILED
    page.next_try_at = None
    service.audit(session, page.escalation.ticket, actor=ACTOR, action="page failed", now=now, detail=detail)


def retry_due(session: Session, now: datetime, limit: int = 100) -> list[int]:
    """Pages waiting for the provider whose retry is due, claimed for sending now (compare-and-set)."""
    ids = list(
        session.scalars(
            select(Page.id)
            .join(Escalation, Escalation.id == Page.escalation_id)
            .where(Page.state == RETRYING, Page.next_try_at <= now)
            .where(
                (Page.channel == FOLLOW_UP)
                | (Escalation.state == PAGING)
                | (Escalation.state.in_(ACKNOWLEDGEABLE) & (Escalation.repeat_until > now))
            )
            .order_by(Page.next_try_at)
            .limit(limit)
        ).all()
    )
    claimed = []
    for page_id in ids:
        if session.execute(
            update(Page)
            .where(Page.id == page_id, Page.state == RETRYING)
            .values(state=CLAIMED, claimed_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount:
            claimed.append(page_id)
    return claimed


def provider_failing(session: Session, channels: Sequence[str] | None = None) -> tuple[int, str | None]:
    """Pages now waiting for the provider to come back (on ``channels``), and the latest error among them.

    A page waits ("retrying") only after PAGING_SEND_TRIES tries in a row failed, so one is already
    repeated provider errors.
    """
    query = select(Page.error).where(Page.state == RETRYING)
    if channels is not None:
        query = query.where(Page.channel.in_(channels))
    rows = session.execute(query.order_by(Page.updated_at.desc()).limit(1000)).all()
    return len(rows), (rows[0][0] if rows else None)


def cancel_page(page: Page, now: datetime) -> None:
    """The page will not be sent (acknowledged meanwhile)."""
    page.state = CANCELLED
    page.next_try_at = None
    page.updated_at = now


def _cancel_claims(session: Session, escalation_id: int, now: datetime) -> None:
    session.execute(
        update(Page)
        .where(Page.escalation_id == escalation_id, Page.state.in_((CLAIMED, RETRYING)), Page.channel != FOLLOW_UP)
        .values(state=CANCELLED, next_try_at=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )


def page_by_id(session: Session, page_id: int | str | None) -> Page | None:
    """The page with this id (from a callback URL), or None."""
    try:
        return session.get(Page, int(str(page_id)))
    except (TypeError, ValueError):
        return None


def record_delivery(
    session: Session,
    page: Page,
    *,
    status: str,
    now: datetime,
    answered_by: str | None = None,
    error_code: str | None = None,
    about_number: bool = True,
    retry_at: datetime | None = None,
) -> bool:
    """Store a status callback's delivery status; True when the escalation should move on now (step unreachable).

    A failed delivery is the person's (their number, ``about_number``) or the provider's: the
    first marks the page failed and may hurry the escalation; the second sends it again at ``retry_at``.
    """
    if page.delivery_status == status[:24]:
        return False  # status callbacks arrive at least once
    escalation = page.escalation
    lock_ticket(session, escalation.ticket_id)
    page.delivery_status = status[:24]
    if answered_by:
        page.answered_by = answered_by[:32]
    page.updated_at = now
    if page_delivered(page):
        mark_reached(session, page, now)
        return False
    if status not in FAILED_DELIVERY.get(page.channel, frozenset()):
        return False
    detail = {"person": page.person_name, "channel": page.channel, "status": status, "error_code": error_code}
    if not about_number and page.state == SENT and retry_at is not None:
        page.state = RETRYING
        page.next_try_at = retry_at
        page.error = f"delivery {status} (Twilio error {error_code})"
        service.audit(
            session,
            escalation.ticket,
            actor=ACTOR,
            action="page retrying",
            now=now,
            detail=detail,
            reason="the carrier or provider failed (not the person's number): sending again",
        )
        return False
    page.state = FAILED
    service.audit(session, escalation.ticket, actor=ACTOR, action="page not delivered", now=now, detail=detail)
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
    join = joined_to(session, t) if escalation is None else None
    if join is not None and join.escalation.ticket_id != t.id:
        # A repeat call's ticket: acknowledging it acknowledges the escalation it joined.
        service.audit(session, t, actor=by.strip() or "unknown", action="acknowledged", now=now,
                      detail={"via": via, "person": person, "escalation_of": join.escalation.ticket.number})  # fmt: skip
        return acknowledge(
            session,
            join.escalation.ticket,
            by,
            now,
            via,
            person=person,
            counts_as_first_response=counts_as_first_response,
        )
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
    session: Session,
    escalation: Escalation,
    ticket: Ticket,
    person: tuple[str, str, str],
    now: datetime,
    kind: str = "transcript",
) -> Page | None:
    """Claim a follow-up SMS to one person (the transcript, or ``NUMBERS_FOLLOW_UP``), once per ticket, kind and
    person; None when already claimed."""
    key = f"{ticket.number}:{kind}:{person[0]}"
    if session.scalar(select(Page.id).where(Page.key == key)) is not None:
        return None
    page = _claimed_follow_up(escalation, key, person, now)
    session.add(page)
    session.flush()
    return page


def _claimed_follow_up(escalation: Escalation, key: str, person: tuple[str, str, str], now: datetime) -> Page:
    """A follow-up SMS row to one person, claimed for sending (not a step of the escalation)."""
    return Page(
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


# --- coordinator actions -------------------------------------------------------------------------------


def page_again(session: Session, ticket: Ticket, *, by: str, now: datetime) -> Escalation:
    """Restart the escalation from round 1 step 1 now (a new cycle); audited. Raises InvalidTransition."""
    lock_ticket(session, ticket.id)
    escalation = escalation_of(session, ticket, for_update=True)
    if escalation is None or not escalation.policy:
        raise InvalidTransition(f"ticket {ticket.number} has no escalation to restart")
    if not Status(ticket.status).is_open or ticket.priority != Priority.P1.value:
        raise InvalidTransition(f"ticket {ticket.number} is {ticket.priority} {ticket.status}: nothing to page")
    if escalation.acknowledged_at is not None:
        raise InvalidTransition(f"ticket {ticket.number} was acknowledged by {escalation.acknowledged_by}")
    _cancel_claims(session, escalation.id, now)
    session.execute(
        update(Escalation)
        .where(Escalation.id == escalation.id)
        .values(
            state=PAGING,
            next_position=0,
            next_due_at=now,
            cycle=Escalation.cycle + 1,
            ended_at=None,
            repeat_until=func.coalesce(Escalation.repeat_until, now),
        )
        .execution_options(synchronize_session=False)
    )
    session.refresh(escalation)
    if escalation.repeat_until is not None and escalation.repeat_until < now + timedelta(hours=1):
        escalation.repeat_until = now + timedelta(hours=1)  # a restart by hand gets at least another hour
    service.audit(session, ticket, actor=by, action="page again", now=now, detail={"cycle": escalation.cycle + 1})
    return escalation


def escalate_now(session: Session, ticket: Ticket, *, by: str, now: datetime) -> Escalation:
    """Make the next step due at once; audited. Raises InvalidTransition when no step is to come."""
    lock_ticket(session, ticket.id)
    escalation = escalation_of(session, ticket, for_update=True)
    if escalation is None or escalation.state != PAGING or escalation.acknowledged_at is not None:
        raise InvalidTransition(f"ticket {ticket.number} has no escalation step to come (restart it: page again)")
    escalation.next_due_at = now
    service.audit(
        session, ticket, actor=by, action="escalated now", now=now, detail={"position": escalation.next_position}
    )
    return escalation


# --- repeated calls join the open escalation -----------------------------------------------------------


def open_escalation_to_join(
    session: Session,
    ticket: Ticket,
    *,
    withheld: bool,
    now: datetime,
    withheld_cap: int,
    window: timedelta,
) -> tuple[Escalation, str] | None:
    """The escalation a new P1 should join instead of paging again, and why; None: start its own.

    Same caller (withheld numbers count as one caller) with an escalation not yet acknowledged:
    join it. Withheld callers beyond ``withheld_cap`` escalations started in ``window``: join the
    latest open (or, if none is open, latest) withheld escalation. Never joins a resolved ticket's.
    """
    candidates = select(Escalation).join(Ticket, Ticket.id == Escalation.ticket_id).where(Ticket.id != ticket.id)
    open_ones = candidates.where(Escalation.state.in_(ACKNOWLEDGEABLE), Escalation.acknowledged_at.is_(None))
    if withheld:
        same = open_ones.where(Escalation.withheld_caller.is_(True))
    elif ticket.caller_number:
        same = open_ones.where(Ticket.caller_number == ticket.caller_number, Escalation.withheld_caller.is_(False))
    else:
        return None
    found = session.scalars(same.order_by(Escalation.started_at.desc(), Escalation.id.desc()).limit(1)).first()
    if found is not None:
        return found, "same caller"
    if not withheld:
        return None
    recent = session.scalar(
        select(func.count(Escalation.id)).where(
            Escalation.withheld_caller.is_(True), Escalation.started_at > now - window, Escalation.policy != ""
        )
    )
    if (recent or 0) < withheld_cap:
        return None
    latest = session.scalars(
        candidates.where(Escalation.withheld_caller.is_(True), Escalation.policy != "")
        .where(Ticket.status.in_([s.value for s in Status if s.is_open]))
        .order_by(Escalation.started_at.desc(), Escalation.id.desc())
        .limit(1)
    ).first()
    return (latest, "withheld cap") if latest is not None else None


def join_escalation(
    session: Session, ticket: Ticket, escalation: Escalation, *, why: str, now: datetime, tz: Any = None
) -> list[Page]:
    """Link ``ticket`` to ``escalation`` (audited on both tickets) and claim one follow-up SMS per person paged."""
    session.add(EscalationJoin(ticket_id=ticket.id, escalation_id=escalation.id, joined_at=now, why=why))
    main = escalation.ticket
    service.audit(
        session,
        ticket,
        actor=ACTOR,
        action="joined escalation",
        now=now,
        detail={"into": main.number, "why": why},
        reason=f"paging for this call joined the open escalation of ticket #{main.number} instead of paging again",
    )
    service.audit(
        session, main, actor=ACTOR, action="another call", now=now, detail={"ticket": ticket.number, "why": why}
    )
    pages: list[Page] = []
    recent = session.scalar(
        select(func.count(Page.id)).where(
            Page.escalation_id == escalation.id,
            Page.key.contains(":call:"),
            Page.claimed_at > now - ANOTHER_CALL_QUIET,
        )
    )
    if recent:
        return pages  # a flood of calls: one "another call" text per quiet period, every call audited
    for person in follow_up_targets(session, escalation):
        key = f"{main.number}:call:{ticket.number}:{person[0]}"
        page = _claimed_follow_up(escalation, key, person, now)
        session.add(page)
        pages.append(page)
    session.flush()
    return pages


def another_call_sms(main: int, joined: Ticket, at_local: str) -> str:
    """The one follow-up SMS for a repeat call: "another call from the caller at 21:14"."""
    return (
        f"Ticket #{main}: another call from the caller at {at_local} (ticket #{joined.number}). "
        "Paging continues for the first ticket; reply 1 to acknowledge."
    )


def joined_to(session: Session, ticket: Ticket) -> EscalationJoin | None:
    """The escalation this ticket's paging joined, if it did."""
    return session.scalars(select(EscalationJoin).where(EscalationJoin.ticket_id == ticket.id)).first()


def joined_from(session: Session, escalation: Escalation) -> list[EscalationJoin]:
    """The tickets whose paging joined this escalation, oldest first."""
    return list(
        session.scalars(
            select(EscalationJoin).where(EscalationJoin.escalation_id == escalation.id).order_by(EscalationJoin.id)
        ).all()
    )


NUMBERS_FOLLOW_UP = "numbers"  # the follow-up SMS naming numbers to check against the recording


def is_numbers_follow_up(page: Page) -> bool:
    """True for the follow-up SMS that names the transcript's numbers to check."""
    return page.channel == FOLLOW_UP and f":{NUMBERS_FOLLOW_UP}:" in page.key


def is_another_call(page: Page) -> bool:
    """True for the follow-up SMS that tells the people paged about a repeat call."""
    return page.channel == FOLLOW_UP and ":call:" in page.key


def another_call_ticket(page: Page) -> int | None:
    """The ticket number of the repeat call a follow-up SMS is about."""
    try:
        return int(page.key.split(":call:", 1)[1].split(":", 1)[0])
    except (IndexError, ValueError):
        return None


def page_email_text(content: PageContent, *, company: str, ack_url: str, ticket_url: str, support_number: str) -> str:
    """The email page's text: the page SMS's facts, the message once known, how to acknowledge."""
    lines = [
        f"{company} P1 CRITICAL page",
        "",
        f"Ticket:  #{content.ticket}",
        f"Client:  {content.client}",
        f"Caller:  {content.caller or 'number withheld'}"
        + (f" ({content.caller_language}-speaking)" if content.caller_language else ""),
    ]
    if content.transcript and content.translated_from and content.translation:
        note = " (low confidence: listen to the audio)" if content.low_confidence else ""
        lines += [
            "",
            f"Message, translated from {content.translated_from} by machine{note}:",
            shorten(content.translation, 1500),
            "",
            f"Original ({content.translated_from}):",
            shorten(content.original or "", 1500),
        ]
    elif content.transcript:
        note = " (low confidence: listen to the audio)" if content.low_confidence else ""
        lines += ["", f"Message{note}:", shorten(content.transcript, 1500)]
    lines += [
        "",
        "Acknowledge (stops the escalation; opens a confirmation page):",
        ack_url,
        "",
        f"Or reply 1 to the page SMS, or text ACK {content.ticket} from your on-call phone to {support_number}.",
        "",
        "The ticket in the console:",
        ticket_url,
    ]
    return "\n".join(lines) + "\n"
