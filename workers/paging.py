"""Paging jobs: page a P1 at once, escalate on timers, send the transcript follow-up, sweep for lost timers.

Timers are RQ scheduled jobs on the paging queue (``rq worker --with-scheduler``);
``sweep_escalations`` re-derives every due step from the database, so a restart of
Redis, the worker or the scheduler delays a step by one sweep at most and never sends
it twice: each step is claimed in the database before anything is sent. A page the
provider failed to take (not a number Twilio says is unreachable) waits in "retrying"
and the sweeper sends it again with backoff and jitter; the steps keep their timing.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage

from redis.exceptions import RedisError
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

import runtime as rt
from providers.mail import MailSendError, send_message
from providers.twilio_rest import (
    TwilioSendError,
    is_withheld,
    make_twilio_client,
    page_url,
    place_call,
    send_sms,
)
from ticketing import lifecycle, outbox, paging, texts, voicemail
from ticketing.db import serialize_on, transaction
from ticketing.errors import DomainError
from ticketing.models import Escalation, Page, Source, Status, Ticket
from ticketing.oncall import OnCall
from ticketing.priority import Priority
from ticketing.sla import calendar_for

log = logging.getLogger(__name__)

SEND_TIMEOUT_SECONDS = 5.0  # per Twilio request; a timeout counts as a failed try
RETRY_PAUSES = (0.25, 1.0, 2.0)  # seconds before the 2nd, 3rd, 4th try of one send
CLAIM_TIMEOUT = timedelta(seconds=60)  # a claimed page unsent this long: its sender died, send it again
START_GRACE = timedelta(seconds=15)  # a page request this old with no paging started: its job was lost
MAX_PARALLEL_SENDS = 8
ACK_SALT = "page-ack"
STEP_JOB = "workers.paging.escalation_step"
RETRY_BASE_SECONDS = 5.0  # the first pause before a page the provider failed is tried again; doubles each time


def retry_delay(tries: int, cap_seconds: float, rand: Callable[[], float] = random.random) -> timedelta:
    """Exponential backoff with jitter: base * 2^n, capped, then a random 50-100 % of it (no thundering herd)."""
    rounds = max(0, tries // 3)
    delay = min(float(cap_seconds), RETRY_BASE_SECONDS * (2**rounds))
    return timedelta(seconds=delay * (0.5 + 0.5 * rand()))


def oncall_of(runtime: rt.Runtime) -> OnCall:
    """The validated on-call configuration (reloaded when the file changes)."""
    return paging.oncall_from(runtime.settings.oncall_file)


# --- jobs ------------------------------------------------------------------------------------------------


def start_paging(runtime: rt.Runtime, ticket_number: int) -> str:
    """Page a P1 ticket now (its escalation policy's first step) and set the timer for the next step."""
    oncall = oncall_of(runtime)
    try:
        started = _start(runtime, ticket_number, oncall)
    except IntegrityError:  # a concurrent start won the race: its escalation stands
        started = _start(runtime, ticket_number, oncall)
    if started is None:
        return "not paged"
    return run_step(runtime, ticket_number, started)


def _start(runtime: rt.Runtime, number: int, oncall: OnCall) -> int | None:
    settings = runtime.settings
    now = runtime.now()
    joined: tuple[int, ...] = ()
    with transaction(runtime.sessions) as s:
        # One start at a time: a flood of press-2 calls must not each see "no open escalation".
        serialize_on(s, "paging:start")
        s.execute(update(Ticket).where(Ticket.number == number).values(updated_at=Ticket.updated_at))
        ticket = lifecycle.get_ticket(s, number, for_update=True)
        escalation = paging.escalation_of(s, ticket)
        outbox.complete(s, f"{outbox.PAGE}:{number}", now)
        if escalation is None:
            if ticket.priority != Priority.P1.value or not Status(ticket.status).is_open:
                log.info("ticket %s is %s %s: not paging", number, ticket.priority, ticket.status)
                return None
            if paging.joined_to(s, ticket) is not None:
                return None
            # A monitoring alert has no caller at all: never taken for a withheld number (whose P1s join one escalation).
            withheld = ticket.source != Source.ALERT.value and is_withheld(ticket.caller_number)
            join = paging.open_escalation_to_join(
                s,
                ticket,
                withheld=withheld,
                now=now,
                withheld_cap=settings.paging_withheld_cap,
                window=timedelta(minutes=settings.paging_withheld_window_minutes),
            )
            if join is not None:
                into, why = join
                joined = tuple(p.id for p in paging.join_escalation(s, ticket, into, why=why, now=now))
                log.info("ticket %s joined the escalation of ticket %s (%s)", number, into.ticket.number, why)
            else:
                escalation = paging.start_escalation(
                    s,
                    ticket,
                    oncall=oncall,
                    calendar=calendar_for(runtime.policy),
                    now=now,
                    horizon=timedelta(minutes=settings.paging_horizon_minutes),
                    withheld=withheld,
                )
    if escalation is None:
        send_pages(runtime, joined)
        return None
    return escalation.next_position


def escalation_step(ticket: int, position: int) -> str:
    """RQ job: page the escalation step at ``position`` if it is due and nobody has acknowledged."""
    return run_step(rt.current(), ticket, position)


def run_step(runtime: rt.Runtime, ticket_number: int, position: int) -> str:
    """Claim and page one due step; when everyone in it is unreachable, go straight on to the next.

    After the fallback's wait: exhausted once anyone was reached, else round 1 again (until the horizon).
    """
    oncall = oncall_of(runtime)
    outcome = "nothing due"
    while True:
        now = runtime.now()
        with transaction(runtime.sessions) as s:
            ticket = lifecycle.get_ticket(s, ticket_number, for_update=True)
            escalation = paging.escalation_of(s, ticket)
            if escalation is None:
                return "not paging"
            if paging.stop_if_not_pageable(s, ticket, escalation, now):
                return "stopped"
            if position == len(paging.positions_of(escalation, oncall)):
                ending = paging.finish_cycle(s, ticket, escalation, position, oncall=oncall, now=now)
                claim = None
            else:
                ending = None
                claim = paging.claim_step(
                    s, ticket, escalation, position, oncall=oncall, now=now, email=runtime.settings.paging_email
                )
            escalation_id = escalation.id
        if ending == "repeat":
            log.error("ALERT ticket %s: nobody reached after every round; paging again from round 1", ticket_number)
            position = 0
            continue
        if ending == "exhausted":
            log.error("ALERT ticket %s: escalation exhausted, nobody acknowledged", ticket_number)
            return "exhausted"
        if claim is None:
            return outcome
        log.info("ticket %s: paging %s (%s)", ticket_number, claim.position.label, claim.position.target.label)
        send_pages(runtime, claim.page_ids)
        outcome = f"paged {claim.position.label}"
        assert claim.next_position is not None
        with transaction(runtime.sessions) as s:
            hurried = False
            lifecycle.get_ticket(s, ticket_number, for_update=True)
            if paging.step_unreachable(s, escalation_id, position):
                escalation = s.get(Escalation, escalation_id)
                assert escalation is not None
                hurried = paging.hurry(s, escalation, claim.next_position, runtime.now())
                if hurried:
                    paging.audit(
                        s,
                        escalation.ticket,
                        action="escalated early",
                        now=runtime.now(),
                        detail={"position": claim.position.label},
                        reason="nobody in this step could be reached",
                    )
        if not hurried:
            assert claim.next_due_at is not None
            schedule_step(runtime, ticket_number, claim.next_position, claim.next_due_at, cycle=claim.cycle)
            return outcome
        position = claim.next_position


def schedule_step(runtime: rt.Runtime, ticket_number: int, position: int, due: datetime, *, cycle: int = 0) -> None:
    """Set the RQ timer for a step (best effort: the sweeper pages it on time if Redis loses it)."""
    step = f"c{cycle}-{position}" if cycle else str(position)
    try:
        runtime.paging_queue().enqueue_at(
            due,
            STEP_JOB,
            kwargs={"ticket": ticket_number, "position": position},
            job_id=f"page-step-{ticket_number}-{step}",
            job_timeout=120,
            result_ttl=3600,
            failure_ttl=7 * 86400,
        )
    except (RedisError, OSError) as exc:
        log.warning(
            "ticket %s: no timer for step %s (%s); the sweeper will page it",
            ticket_number,
            position,
            type(exc).__name__,
        )


def escalate_soon(runtime: rt.Runtime, ticket_number: int, position: int) -> None:
    """Run a step that became due early (its people unreachable) now, through the queue; best effort."""
    try:
        runtime.paging_queue().enqueue(
            STEP_JOB,
            kwargs={"ticket": ticket_number, "position": position},
            job_id=f"page-now-{ticket_number}-{position}-{int(time.time() * 1000)}",
            job_timeout=120,
            result_ttl=3600,
        )
    except (RedisError, OSError) as exc:
        log.warning(
            "ticket %s: could not enqueue step %s (%s); the sweeper will page it",
            ticket_number,
            position,
            type(exc).__name__,
        )


def send_transcript_follow_up(runtime: rt.Runtime, ticket_number: int, follow_up: str = "transcript") -> str:
    """Text the transcript to the people already paged (once each; only the acknowledger after an ack).

    ``follow_up="translation"``: the English translation of a transcript in another language, which
    follows the transcript as a second follow-up (it quotes the translation, marked as one).
    """
    if follow_up == voicemail.TRANSLATION_FOLLOW_UP:
        return _send_follow_up(
            runtime,
            ticket_number,
            outbox_kind=outbox.TRANSCRIPT_READY,
            kind=voicemail.TRANSLATION_FOLLOW_UP,
            action="translation sent to on-call",
            nothing=lambda ticket: "no translation" if not (ticket.transcript_translation or "").strip() else None,
            key=f"{outbox.TRANSCRIPT_READY}:{ticket_number}:{voicemail.TRANSLATION_FOLLOW_UP}",
        )
    return _send_follow_up(
        runtime,
        ticket_number,
        outbox_kind=outbox.TRANSCRIPT_READY,
        kind="transcript",
        action="transcript sent to on-call",
        nothing=lambda ticket: "no transcript" if not (ticket.transcript or "").strip() else None,
    )


def send_numbers_follow_up(runtime: rt.Runtime, ticket_number: int) -> str:
    """Text the numbers to check to the people already paged (once each; only the acknowledger after an ack)."""
    return _send_follow_up(
        runtime,
        ticket_number,
        outbox_kind=outbox.NUMBERS_TO_CHECK,
        kind=paging.NUMBERS_FOLLOW_UP,
        action="numbers to check sent to on-call",
        nothing=lambda ticket: "nothing to check" if not paging.content_of(ticket).numbers else None,
    )


def _send_follow_up(
    runtime: rt.Runtime,
    ticket_number: int,
    *,
    outbox_kind: str,
    kind: str,
    action: str,
    nothing: Callable[[Ticket], str | None],
    key: str | None = None,
) -> str:
    """One follow-up SMS of ``kind`` to each person already paged, unless ``nothing`` says why not."""
    now = runtime.now()
    with transaction(runtime.sessions) as s:
        ticket = lifecycle.get_ticket(s, ticket_number, for_update=True)
        outbox.complete(s, key or f"{outbox_kind}:{ticket_number}", now)
        escalation = paging.escalation_of(s, ticket)
        if escalation is None:
            return "not paged yet"  # the first page will carry the transcript (and its notes)
        why_not = nothing(ticket)
        if why_not:
            return why_not
        pages = [
            paging.add_follow_up(s, escalation, ticket, person, now, kind)
            for person in paging.follow_up_targets(s, escalation)
        ]
        ids = tuple(p.id for p in pages if p is not None)
        if ids:
            paging.audit(
                s,
                ticket,
                action=action,
                now=now,
                detail={"people": [p.person_name for p in pages if p is not None]},
            )
    send_pages(runtime, ids)
    return f"sent to {len(ids)}"


def sweep_escalations(runtime: rt.Runtime) -> int:
    """Re-derive paging work from the database: lost page jobs, due steps, stale claims; returns steps and pages sent."""
    now = runtime.now()
    done = 0
    with runtime.sessions() as s:
        unstarted = paging.unstarted_pages(s, now - START_GRACE)
        due = paging.due_steps(s, now)
    for number in unstarted:
        log.warning("ticket %s: page request found unstarted, paging now", number)
        done += _guarded(lambda n=number: start_paging(runtime, n))
    for number, position in due:
        done += _guarded(lambda n=number, p=position: run_step(runtime, n, p))
    ids: list[int] = []
    with transaction(runtime.sessions) as s:
        for page_id in paging.stale_claims(s, now - CLAIM_TIMEOUT):
            page = s.get(Page, page_id)
            if page is not None and paging.reclaim(s, page_id, page.claimed_at, now):
                ids.append(page_id)
    if ids:
        log.warning("resending %s page(s) whose sender died after claiming them", len(ids))
        send_pages(runtime, ids)
        done += len(ids)
    done += retry_pages(runtime)
    return done


def retry_pages(runtime: rt.Runtime) -> int:
    """Send again every page whose provider failed and whose pause is over; returns how many went out now."""
    with transaction(runtime.sessions) as s:
        ids = paging.retry_due(s, runtime.now())
    if not ids:
        return 0
    log.warning("retrying %s page(s) the provider failed to take", len(ids))
    return send_pages(runtime, ids)


def _guarded(work: Callable[[], str]) -> int:
    try:
        result = work()
    except (DomainError, SQLAlchemyError) as exc:
        log.exception("paging sweep failed: %s", type(exc).__name__)
        return 0
    return 1 if result.startswith("paged") else 0


# --- sending ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Send:
    page_id: int
    ticket_id: int
    channel: str
    to: str
    body: str | None  # SMS text; None for a call
    email: EmailMessage | None = None


@dataclass(frozen=True)
class _Result:
    page_id: int
    sid: str | None
    error: str | None
    tries: int
    unreachable: bool = False  # the provider said the person's number/address cannot be reached


def send_pages(runtime: rt.Runtime, page_ids: tuple[int, ...] | list[int]) -> int:
    """Send claimed pages in parallel (each channel retried on its own); returns how many went out."""
    settings = runtime.settings
    with runtime.sessions() as s:
        pages = paging.claimable_pages(s, page_ids)
        sends: list[_Send] = []
        for page in pages:
            escalation = page.escalation
            content = paging.content_of(escalation.ticket, console_url=settings.public_base_url)
            email = None
            if page.channel == paging.CALL:
                body = None
            elif page.channel == paging.EMAIL:
                body, email = None, page_email(runtime, page, content)
            elif page.channel == paging.FOLLOW_UP and paging.is_another_call(page):
                body = another_call_text(runtime, s, page)
            elif page.channel == paging.FOLLOW_UP and paging.is_numbers_follow_up(page):
                body = paging.numbers_sms(content, acknowledged=escalation.acknowledged_at is not None)
            elif page.channel == paging.FOLLOW_UP:
                body = paging.follow_up_sms(content, acknowledged=escalation.acknowledged_at is not None)
            else:
                body = paging.page_sms(content, settings.company_name)
            sends.append(_Send(page.id, escalation.ticket_id, page.channel, page.to_number, body, email))
    skipped = set(page_ids) - {send.page_id for send in sends}
    if skipped:
        with transaction(runtime.sessions) as s:
            for page_id in skipped:
                page = s.get(Page, page_id)
                if page is not None and page.state == paging.CLAIMED:
                    paging.cancel_page(page, runtime.now())
    if not sends:
        return 0
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_SENDS, len(sends))) as pool:
        results = list(pool.map(lambda send: _deliver(runtime, send), sends))
    with transaction(runtime.sessions) as s:
        for ticket_id in sorted({send.ticket_id for send in sends}):
            paging.lock_ticket(s, ticket_id)
        for result in results:
            page = s.get(Page, result.page_id)
            # A page sent just as an ack cancelled it still gets its SID recorded: it did go out.
            if page is not None and (page.state == paging.CLAIMED or (result.sid and page.state == paging.CANCELLED)):
                retry_at = None
                if result.sid is None and not result.unreachable:
                    delay = retry_delay(page.tries + result.tries, settings.paging_retry_max_seconds)
                    retry_at = runtime.now() + delay
                paging.record_sent(
                    s,
                    page,
                    sid=result.sid,
                    error=result.error,
                    tries=result.tries,
                    now=runtime.now(),
                    retry_at=retry_at,
                )
    for result in results:
        if result.error is not None:
            what = "person unreachable" if result.unreachable else "provider failure, will retry"
            log.warning("page %s failed after %s tries (%s): %s", result.page_id, result.tries, what, result.error)
    return sum(1 for r in results if r.sid is not None)


def page_email(runtime: rt.Runtime, page: Page, content: paging.PageContent) -> EmailMessage:
    """The email page: the same facts as the SMS, a signed acknowledge link and the ticket's console link."""
    settings = runtime.settings
    base = settings.public_base_url
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = page.to_address or ""
    message["Subject"] = f"[#{content.ticket}] {settings.company_name} P1 CRITICAL page: {content.client}"
    message["X-Priority"] = "1"
    # The token in the query string, never the path: access logs record paths (see the Procfile).
    ack = f"{base}/ack?token={ack_token(settings.secret_key, page.id)}"
    message.set_content(
        paging.page_email_text(
            content,
            company=settings.company_name,
            ack_url=ack,
            ticket_url=content.ticket_url or f"{base}/tickets/{content.ticket}",
            support_number=settings.support_number,
        )
    )
    return message


def ack_token(secret_key: str, page_id: int) -> str:
    """A signed, URL-safe token naming one page: the email page's acknowledge link carries it."""
    from itsdangerous import URLSafeTimedSerializer

    return URLSafeTimedSerializer(secret_key, salt=ACK_SALT).dumps({"page": page_id})


def another_call_text(runtime: rt.Runtime, session: Session, page: Page) -> str:
    """The "another call from the caller at 21:14" SMS of a repeat call that joined this escalation."""
    number = paging.another_call_ticket(page)
    joined = lifecycle.get_ticket(session, number) if number else None
    if joined is None:
        return f"Ticket #{page.escalation.ticket.number}: another call from the caller."
    local = joined.opened_at.astimezone(runtime.policy.timezone).strftime("%H:%M")
    return paging.another_call_sms(int(page.escalation.ticket.number or 0), joined, local)


def _deliver(runtime: rt.Runtime, send: _Send) -> _Result:
    """One page on one channel; retryable Twilio failures (5xx, 429, timeouts) are tried again."""
    settings = runtime.settings
    if send.email is not None:
        return _deliver_email(runtime, send)
    if send.body is not None:
        with runtime.sessions() as s:
            opted_out = texts.refusal(s, send.to)
        if opted_out is not None:  # the number texted STOP: no SMS to it (Twilio would refuse it, 21610)
            return _Result(send.page_id, None, opted_out, 0, unreachable=True)
    client = make_twilio_client(settings, timeout=SEND_TIMEOUT_SECONDS)
    tries, error = 0, "not sent"
    for pause in (0.0, *RETRY_PAUSES[: max(settings.paging_send_tries, 1) - 1]):
        if pause:
            time.sleep(pause)
        # Re-read before every try: an acknowledgement since the claim cancels the page.
        with runtime.sessions() as s:
            if not paging.still_claimed(s, send.page_id):
                return _Result(send.page_id, None, "cancelled: acknowledged", tries)
        tries += 1
        try:
            if send.body is None:
                sid = place_call(
                    client,
                    from_=settings.support_number,
                    to=send.to,
                    url=page_url(settings, "call", page=send.page_id),
                    status_callback=page_url(settings, "call-status", page=send.page_id),
                    timeout=settings.paging_ring_seconds,
                    machine_detection="Enable" if settings.paging_machine_detection else None,
                )
            else:
                sid = send_sms(
                    client,
                    from_=settings.support_number,
                    to=send.to,
                    body=send.body,
                    status_callback=page_url(settings, "sms-status", page=send.page_id),
                )
            return _Result(send.page_id, sid, None, tries)
        except TwilioSendError as exc:
            error = str(exc)
            if exc.person_unreachable:
                return _Result(send.page_id, None, error, tries, unreachable=True)
            if not exc.retryable:
                break
    return _Result(send.page_id, None, error, tries)


def _deliver_email(runtime: rt.Runtime, send: _Send) -> _Result:
    settings = runtime.settings
    assert send.email is not None
    with runtime.sessions() as s:
        if not paging.still_claimed(s, send.page_id):
            return _Result(send.page_id, None, "cancelled: acknowledged", 0)
    try:
        where = send_message(send.email, smtp_url=settings.smtp_url, dev_mailbox=settings.dev_mailbox_dir, timeout=10)
    except MailSendError as exc:
        # A refused recipient is the person's address; anything else is the mail server's failure.
        unreachable = not exc.retryable and "recipient" in str(exc)
        return _Result(send.page_id, None, f"mail: {exc}", 1, unreachable=unreachable)
    return _Result(send.page_id, where, None, 1)
