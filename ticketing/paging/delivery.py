"""Sending pages and what came of it: claims to send, send outcomes, retries, delivery reports and answers.

An acknowledgement flips the escalation's state, and every send re-reads the page's
claim first, so no page goes out after an ack. The provider's reports arrive here
already in the domain's words (see ``ticketing.paging.states``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ticketing.models import Escalation, Page
from ticketing.paging.escalation import audit, hurry, lock_ticket, step_unreachable
from ticketing.paging.states import (
    ACCEPTED,
    ACKNOWLEDGEABLE,
    BY_MACHINE,
    CANCELLED,
    CLAIMED,
    EMAIL,
    FAILED,
    FOLLOW_UP,
    NOT_DELIVERED,
    PAGING,
    PHONE_CHANNELS,
    PROVIDER_FAILED,
    RETRYING,
    SENT,
    page_delivered,
)


def mark_reached(session: Session, page: Page, now: datetime) -> None:
    """A page was delivered: the ticket leaves "nobody reached" (audited once)."""
    escalation = page.escalation
    if escalation.unreached_since is None:
        return
    escalation.unreached_since = None
    audit(
        session,
        escalation.ticket,
        action="page delivered",
        now=now,
        detail={"person": page.person_name, "channel": page.channel},
        reason="a page reached someone after nobody had been reached",
    )


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
            page.delivery_status = ACCEPTED
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
            audit(
                session,
                page.escalation.ticket,
                action="page retrying",
                now=now,
                detail=detail,
                reason="the provider failed (not the person's number): trying again until it works",
            )
        return
    page.state = FAILED
    page.next_try_at = None
    audit(session, page.escalation.ticket, action="page failed", now=now, detail=detail)


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
    outcome: str | None,
    now: datetime,
    answer: str | None = None,
    report: Mapping[str, str | None] | None = None,
    note: str = "",
    retry_at: datetime | None = None,
) -> bool:
    """Store a delivery report; True when the escalation should move on now (step unreachable).

    ``outcome`` and ``answer`` are paging's words (``states``); None: no news yet. ``report`` (the
    provider's own words, kept for the audit) and ``note`` (the page's error) are recorded, never read.
    A page not delivered is the person's (UNREACHABLE) or the provider's (PROVIDER_FAILED): the first
    marks the page failed and may hurry the escalation; the second sends it again at ``retry_at``.
    """
    if outcome is None and not answer:
        return False
    if outcome is not None and page.delivery_status == outcome:
        return False  # delivery reports arrive at least once
    escalation = page.escalation
    lock_ticket(session, escalation.ticket_id)
    if outcome is not None:
        page.delivery_status = outcome
    if answer:
        page.answered_by = answer
    page.updated_at = now
    if page_delivered(page):
        mark_reached(session, page, now)
        return False
    if outcome not in NOT_DELIVERED or page.channel not in PHONE_CHANNELS:
        return False  # a follow-up SMS that did not arrive changes nothing
    detail = {"person": page.person_name, "channel": page.channel, **(report or {})}
    if outcome == PROVIDER_FAILED and page.state == SENT and retry_at is not None:
        page.state = RETRYING
        page.next_try_at = retry_at
        page.error = note[:1000] or None
        audit(
            session,
            escalation.ticket,
            action="page retrying",
            now=now,
            detail=detail,
            reason="the carrier or provider failed (not the person's number): sending again",
        )
        return False
    page.state = FAILED
    audit(session, escalation.ticket, action="page not delivered", now=now, detail=detail)
    session.flush()
    if escalation.state == PAGING and page.position == escalation.next_position - 1:
        if step_unreachable(session, escalation.id, page.position):
            return hurry(session, escalation, escalation.next_position, now)
    return False


def record_answer(session: Session, page: Page, *, answer: str | None, now: datetime) -> bool:
    """The page call was answered; True when a person (or an undecided detector) answered, False for a machine."""
    lock_ticket(session, page.escalation.ticket_id)
    if answer:
        page.answered_by = answer
    page.updated_at = now
    machine = answer == BY_MACHINE
    if machine:
        audit(
            session,
            page.escalation.ticket,
            action="page call reached voicemail",
            now=now,
            detail={"person": page.person_name, "answered_by": answer},
            reason="a machine answering is not an acknowledgement",
        )
    return not machine
