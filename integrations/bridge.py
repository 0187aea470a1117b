"""The PSA bridge: every ticket mirrored into the MSP's PSA, and the PSA's status changes brought back.

Out: the bridge reads the ticket audit log with a cursor of its own (``psa_cursors``) and turns each entry into
operations (``integrations.psa.operations_for``), stored in ``psa_operations`` and sent in order, per ticket,
with backoff. On PostgreSQL audit ids can commit out of order (a transaction that took id 7 may commit after
the one that took 8): the cursor re-reads a window of ids below the highest it has read and skips the ids it
has seen, so a late commit is still read, and the operation's unique key makes reading twice harmless.

Back: status changes made in the PSA arrive by its callback (``web/console/integrations_connectwise.py``) or
by polling ``changes_since`` and are applied with ``lifecycle.set_status`` as actor ``psa:<name>`` (audited;
the portal shows the ticket's status, so the client sees it), which ``operations_for`` never sends back.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

import runtime as rt
from integrations import connectwise
from integrations.psa import PSA_ACTOR_PREFIX, Change, NewTicket, Psa, PsaError, operations_for
from integrations.psa_models import PsaCursor, PsaLink, PsaOperation
from ticketing import lifecycle, outbox
from ticketing.audit import audit
from ticketing.db import transaction
from ticketing.errors import DomainError
from ticketing.models import AuditEntry, Status, Ticket
from ticketing.policy import SupportPolicy

log = logging.getLogger(__name__)

WINDOW = 500  # audit ids re-read below the highest one read (late commits land there)
BATCH = 1000
MAX_ATTEMPTS = 6  # then the operation is dead: listed on /integrations/connectwise with "Send again"
FIRST_RETRY_SECONDS = 30
LONGEST_RETRY_SECONDS = 3600


def actor_for(psa: str) -> str:
    """The audit actor of a change the PSA made."""
    return f"{PSA_ACTOR_PREFIX}{psa}"


def backoff(attempts: int) -> timedelta:
    """How long to wait after the ``attempts``-th failure: 30 s, 60 s, 120 s ... at most an hour."""
    return timedelta(seconds=min(LONGEST_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2 ** max(0, attempts - 1)))


def read_audit(session: Session, psa: str, now: datetime) -> int:
    """Turn the audit entries not yet read into operations; how many operations were added."""
    cursor = session.get(PsaCursor, psa, with_for_update=True)
    if cursor is None:
        cursor = PsaCursor(name=psa, high=0, seen=[])
        session.add(cursor)
        session.flush()
    low = max(0, cursor.high - WINDOW)
    seen = set(cursor.seen or [])
    rows = session.scalars(select(AuditEntry).where(AuditEntry.id > low).order_by(AuditEntry.id).limit(BATCH)).all()
    added = 0
    for entry in rows:
        if entry.id in seen:
            continue
        seen.add(entry.id)
        for operation in operations_for(entry.action, entry.actor, entry.detail or {}):
            key = f"{entry.id}:{operation.op}"
            exists = session.scalar(select(PsaOperation.id).where(PsaOperation.psa == psa, PsaOperation.key == key))
            if exists is not None:
                continue
            session.add(
                PsaOperation(
                    psa=psa,
                    key=key,
                    ticket_id=entry.ticket_id,
                    op=operation.op,
                    payload=operation.payload,
                    state="pending",
                    attempts=0,
                    next_at=now,
                    created_at=now,
                )
            )
            added += 1
    high = max(seen, default=cursor.high)
    cursor.high = max(cursor.high, high)
    cursor.seen = sorted(i for i in seen if i > cursor.high - WINDOW)
    return added


def send_due(runtime: rt.Runtime, psa: Psa, *, limit: int = 200) -> dict[str, int]:
    """Send every due pending operation, oldest first; a ticket's later operations wait behind its unsent ones."""
    now = runtime.now()
    done = {"sent": 0, "failed": 0}
    with runtime.sessions() as s:
        ids = s.scalars(
            select(PsaOperation.id)
            .where(PsaOperation.psa == psa.name, PsaOperation.state == "pending")
            .order_by(PsaOperation.id)
            .limit(limit)
        ).all()
    blocked: set[int] = set()
    for op_id in ids:
        with transaction(runtime.sessions) as s:
            op = s.get(PsaOperation, op_id, with_for_update=True)
            if op is None or op.state != "pending" or op.ticket_id in blocked:
                continue
            earlier = s.scalar(
                select(func.count(PsaOperation.id)).where(
                    PsaOperation.psa == psa.name,
                    PsaOperation.ticket_id == op.ticket_id,
                    PsaOperation.id < op.id,
                    PsaOperation.state != "done",
                )
            )
            if earlier or op.next_at > now:
                blocked.add(op.ticket_id)
                continue
            try:
                _send(s, runtime, psa, op)
            except PsaError as exc:
                _failed(s, op, exc, now)
                blocked.add(op.ticket_id)
                done["failed"] += 1
                continue
            op.state, op.done_at, op.last_error = "done", now, None
            op.attempts += 1
            done["sent"] += 1
    return done


def _send(session: Session, runtime: rt.Runtime, psa: Psa, op: PsaOperation) -> None:
    ticket = session.get(Ticket, op.ticket_id)
    if ticket is None:
        return
    link = session.scalars(select(PsaLink).where(PsaLink.psa == psa.name, PsaLink.ticket_id == ticket.id)).first()
    if op.op == "create":
        if link is not None:
            return  # made by an earlier attempt
        external = psa.find_ticket(ticket.number) or psa.create_ticket(new_ticket(ticket))
        session.add(
            PsaLink(
                psa=psa.name,
                ticket_id=ticket.id,
                external_id=external,
                external_status=None,
                created_at=runtime.now(),
            )
        )
        session.flush()
        log.info("psa %s: ticket %s is %s there", psa.name, ticket.number, external)
        return
    if link is None:
        raise PsaError(f"ticket {ticket.number} is not in {psa.name} yet", retry=True)
    if op.op == "note":
        text = note_text(ticket, op.payload, runtime.settings.public_base_url)
        if text:
            psa.add_note(link.external_id, text)
    elif op.op == "status":
        psa.update_status(link.external_id, ticket.status)


def _failed(session: Session, op: PsaOperation, exc: PsaError, now: datetime) -> None:
    op.attempts += 1
    op.last_error = str(exc)[:1000]
    if exc.retry and op.attempts < MAX_ATTEMPTS:
        op.next_at = now + backoff(op.attempts)
        log.warning("psa %s: operation %s (%s) failed, again at %s: %s", op.psa, op.id, op.op, op.next_at, exc)
        return
    op.state = "dead"
    log.error("psa %s: operation %s (%s) given up: %s", op.psa, op.id, op.op, exc)
    ticket = session.get(Ticket, op.ticket_id)
    if ticket is not None:
        audit(
            session,
            ticket,
            actor="support line",
            action="psa failed",
            now=now,
            detail={"psa": op.psa, "operation": op.op, "attempts": op.attempts},
            reason=op.last_error,
        )


def new_ticket(ticket: Ticket) -> NewTicket:
    """What the PSA is told when the ticket is created."""
    contact = ticket.contact
    return NewTicket(
        number=ticket.number,
        summary=ticket.summary or f"{ticket.source} ticket",
        description=ticket.description or "",
        priority=ticket.priority,
        client=ticket.client.name if ticket.client is not None else None,
        contact_name=contact.name if contact is not None else None,
        contact_email=(contact.email if contact is not None else None) or ticket.requester_email,
        contact_phone=(contact.phone if contact is not None else None) or ticket.caller_number,
    )


def note_text(ticket: Ticket, payload: dict[str, Any], base_url: str) -> str:
    """A note's text, from the ticket as it is now (the transcript) or the audit entry's detail."""
    what, detail = payload.get("what"), payload.get("detail") or {}
    if what == "transcript":
        return f"Voicemail transcript:\n{ticket.transcript}" if ticket.transcript else ""
    if what == "translation":
        translated = ticket.transcript_translation
        return f"English translation of the voicemail:\n{translated}" if translated else ""
    if what == "recording":
        return f"Voicemail recording: {base_url.rstrip('/')}/tickets/{ticket.number}"
    if what == "triage":
        lines = [f"{k}: {v}" for k, v in detail.items() if v not in (None, "")]
        return "Portal triage answers:\n" + "\n".join(lines)
    if what == "reply":
        return f"Reply to the client ({detail.get('channel', '')}):\n{detail.get('text', '')}"
    if what == "client message":
        return f"The client wrote ({detail.get('channel', '')}): {detail.get('subject', '')}"
    return ""


def apply_change(session: Session, psa: Psa, change: Change, *, policy: SupportPolicy, now: datetime) -> str | None:
    """Bring a PSA ticket's status back to ours (audited); the new status, or None when nothing changed."""
    link = session.scalars(
        select(PsaLink).where(PsaLink.psa == psa.name, PsaLink.external_id == change.external_id)
    ).first()
    if link is None:
        return None
    link.external_status = change.status
    config_status = psa.our_status(change.status)
    if config_status is None:
        return None
    ticket = session.get(Ticket, link.ticket_id, with_for_update=True)
    if ticket is None or ticket.status == config_status or ticket.status == Status.CLOSED.value:
        return None
    unsent = session.scalar(
        select(func.count(PsaOperation.id)).where(
            PsaOperation.psa == psa.name,
            PsaOperation.ticket_id == ticket.id,
            PsaOperation.op == "status",
            PsaOperation.state != "done",
        )
    )
    if unsent:
        return None  # our newer change is still on its way to the PSA: it wins, and the PSA hears of it
    try:
        lifecycle.set_status(
            session,
            ticket,
            config_status,
            actor=actor_for(psa.name),
            now=now,
            policy=policy,
            reason=f"changed in {psa.name}",
        )
    except DomainError as exc:
        log.warning("psa %s: status %s not applied to %s: %s", psa.name, change.status, ticket.number, exc)
        return None
    return config_status


def poll(runtime: rt.Runtime, psa: Psa) -> int:
    """Ask the PSA for the tickets changed since the last poll and apply them; how many statuses changed."""
    with runtime.sessions() as s:
        cursor = s.get(PsaCursor, psa.name)
        since = cursor.polled_at if cursor is not None else None
    changes = psa.changes_since(since)
    applied = 0
    newest = since
    for change in changes:
        with transaction(runtime.sessions) as s:
            if apply_change(s, psa, change, policy=runtime.policy, now=runtime.now()):
                applied += 1
        newest = change.updated_at if newest is None else max(newest, change.updated_at)
    if newest is not None and newest != since:
        with transaction(runtime.sessions) as s:
            cursor = s.get(PsaCursor, psa.name)
            if cursor is None:
                cursor = PsaCursor(name=psa.name, high=0, seen=[])
                s.add(cursor)
            cursor.polled_at = newest
    return applied


def configured(runtime: rt.Runtime) -> connectwise.ConnectWise | None:
    """The configured PSA (ConnectWise), or None when the bridge is off."""
    path = runtime.settings.connectwise_file
    if path is None:
        return None
    cached = runtime.cache.get("psa")
    if cached is None:
        cached = connectwise.ConnectWise(connectwise.load_config(path))
        runtime.cache["psa"] = cached
    return cached


def sync(
    psa: Psa | None = None, *, key: str | None = None, poll_changes: bool = True, runtime: rt.Runtime | None = None
) -> dict[str, int]:
    """The bridge's job: read the audit log, send what is due, read the PSA's changes back."""
    runtime = runtime or rt.current()
    psa = psa or configured(runtime)
    done = {"operations": 0, "sent": 0, "failed": 0, "changed": 0}
    if psa is not None:
        with transaction(runtime.sessions) as s:
            done["operations"] = read_audit(s, psa.name, runtime.now())
        done |= send_due(runtime, psa)
        if poll_changes:
            try:
                done["changed"] = poll(runtime, psa)
            except PsaError as exc:
                log.warning("psa %s: reading changes failed: %s", psa.name, exc)
    if key is not None:
        with transaction(runtime.sessions) as s:
            outbox.complete(s, key, runtime.now())
    return done


def post_sync(session: Session, runtime: rt.Runtime) -> bool:
    """Record the bridge's job (the sweeper calls this): once per new audit entry, and once a minute to poll."""
    if runtime.settings.connectwise_file is None:
        return False
    now = runtime.now()
    newest = session.scalar(select(func.max(AuditEntry.id))) or 0
    key = f"{outbox.PSA_SYNC}:{newest}:{now.strftime('%Y%m%dT%H%M')}"
    return outbox.post(session, outbox.PSA_SYNC, key, {"key": key}, now)


def send_again(session: Session, op_id: int, now: datetime) -> PsaOperation | None:
    """Put a dead operation back in line with a fresh set of attempts."""
    op = session.get(PsaOperation, op_id, with_for_update=True)
    if op is None or op.state != "dead":
        return None
    op.state, op.attempts, op.next_at = "pending", 0, now
    return op


def dead_letters(session: Session, psa: str, *, limit: int = 100) -> list[tuple[PsaOperation, int | None]]:
    """The operations given up, newest first, with their ticket's number."""
    rows = session.execute(
        select(PsaOperation, Ticket.number)
        .join(Ticket, Ticket.id == PsaOperation.ticket_id)
        .where(PsaOperation.psa == psa, PsaOperation.state == "dead")
        .order_by(PsaOperation.id.desc())
        .limit(limit)
    ).all()
    return [(op, number) for op, number in rows]
