"""Follow-up SMS to the people already paged: the transcript, numbers to check, another call."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ticketing.models import Escalation, Page, Ticket
from ticketing.paging.states import CANCELLED, CLAIMED, FOLLOW_UP, PAGE_CHANNELS


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
    page = claimed_follow_up(escalation, key, person, now)
    session.add(page)
    session.flush()
    return page


def claimed_follow_up(escalation: Escalation, key: str, person: tuple[str, str, str], now: datetime) -> Page:
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
