"""The outbox: jobs recorded in the ticket's own transaction, handed to Redis later."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ticketing.models import OutboxMessage

TRANSCRIBE = "transcribe"
CONFIRM = "confirm"
PAGE = "page"
TRANSCRIPT_READY = "transcript-ready"
NUMBERS_TO_CHECK = "numbers-to-check"  # a P1's second reading put a number in doubt: tell the people paged
TRANSLATE = "translate"  # translate a transcript in another language into English (after the transcript is shown)
REFINE = "refine"  # read a transcript again for its numbers (a second pass, after the first is shown)
NOTIFY = "notify"  # a notice to the client about a ticket event (rendered and sent by the worker)
DELIVER = "deliver"  # send one stored conversation message (a person's reply)
MAIL_IN = "mail-in"  # parse a stored inbound message
PORTAL_LINK = "portal-link"  # email a sign-in link to the client portal
SMS_MEDIA = "sms-media"  # fetch a text's pictures (MMS media) from Twilio onto its message
PSA_SYNC = "psa-sync"  # mirror tickets into the PSA and read its changes back (integrations.bridge)
WEBHOOK = "webhook"  # one attempt of one outbound webhook delivery

WRITTEN = "outbox.written"  # Session.info key: messages posted in this session


def post(session: Session, kind: str, key: str, payload: dict[str, Any], now: datetime) -> bool:
    """Record a job once per key; False when that key was already recorded."""
    if any(isinstance(o, OutboxMessage) and o.key == key for o in session.new):
        return False
    with session.no_autoflush:  # a lookup by key needs no flush of the ticket being built
        if session.scalar(select(OutboxMessage.id).where(OutboxMessage.key == key)) is not None:
            return False
    message = OutboxMessage(kind=kind, key=key, payload=payload, created_at=now, attempts=0)
    session.add(message)
    session.info.setdefault(WRITTEN, []).append(message)
    return True


def written(session: Session) -> list[OutboxMessage]:
    """The messages ``post`` recorded in this session (its caller may claim them before committing)."""
    return list(session.info.get(WRITTEN, ()))


def withdraw(session: Session, message: OutboxMessage) -> None:
    """Take back a job ``post`` recorded in this session, before its commit: it is never dispatched."""
    posted = session.info.get(WRITTEN, [])
    if message in posted:
        posted.remove(message)
    if message in session.new:
        session.expunge(message)
    else:
        session.delete(message)


def repost(session: Session, key: str) -> bool:
    """Mark a recorded job for dispatch again (a retry); False when the key is unknown."""
    message = session.scalars(select(OutboxMessage).where(OutboxMessage.key == key)).first()
    if message is None:
        return False
    message.dispatched_at = None
    message.completed_at = None
    message.failed_at = None
    message.attempts = 0  # a person asked for it again: it gets a fresh set of attempts
    return True


def complete(session: Session, key: str, now: datetime) -> None:
    """The job for ``key`` finished: the sweeper stops watching it."""
    message = session.scalars(select(OutboxMessage).where(OutboxMessage.key == key)).first()
    if message is not None and message.completed_at is None:
        message.completed_at = now


def give_up(message: OutboxMessage, reason: str, now: datetime) -> None:
    """Stop trying ``message``: it is finished, as failed, with ``reason`` (the sweeper never dispatches it again)."""
    message.completed_at = now
    message.failed_at = now
    message.last_error = reason[:1000]
