"""Known incidents: one public message for an outage everyone is calling about.

A coordinator declares one with a short message, a parent ticket (existing or opened with it) and, optionally,
the affected clients. Their callers hear the message after the greeting and, pressing 1, leave a short
message on a P3 joined to the parent; ending the incident resolves those tickets and can tell each contact
once. (Paging's own incidents are ``ticketing.paging``'s; these are what clients see.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ticketing import conversation, lifecycle, outbox
from ticketing.audit import audit
from ticketing.calendar import require_aware
from ticketing.errors import InvalidInput, InvalidTransition
from ticketing.models import OPEN_STATUSES, Client, IncidentCall, KnownIncident, Source, Status, Ticket
from ticketing.policy import SupportPolicy
from ticketing.priority import Priority

MAX_MESSAGE = 200
# How long an ended incident stays on the public status page.
RECENTLY_ENDED = timedelta(days=7)


def _message(text: str | None, *, required: bool, what: str = "the message") -> str | None:
    """A public message as given: one line, at most 200 characters, no control characters."""
    value = (text or "").strip()
    if not value:
        if required:
            raise InvalidInput(f"{what} is required")
        return None
    if any(ch in value for ch in "\r\n") or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise InvalidInput(f"{what} must be one line")
    if len(value) > MAX_MESSAGE:
        raise InvalidInput(f"{what} is at most {MAX_MESSAGE} characters")
    return value


def declare_known_incident(
    session: Session,
    *,
    message: str,
    actor: str,
    now: datetime,
    policy: SupportPolicy,
    message_es: str | None = None,
    parent_number: int | None = None,
    client_ids: Sequence[int] = (),
) -> KnownIncident:
    """Declare a known incident: its message, its parent ticket (opened now, P2, unless a number is given)."""
    require_aware(now, "now")
    text = _message(message, required=True)
    spanish = _message(message_es, required=False, what="the Spanish message")
    clients = sorted(set(client_ids))
    for client_id in clients:
        if session.get(Client, client_id) is None:
            raise InvalidInput(f"unknown client id {client_id}")
    if parent_number is not None:
        parent = lifecycle.get_ticket(session, parent_number)
        lifecycle.require_open(parent)
    else:
        parent = lifecycle.open_ticket(
            session,
            policy=policy,
            now=now,
            priority=Priority.P2,
            source=Source.MANUAL,
            actor=actor,
            summary=f"Known incident: {text}",
            notify=False,
        )
    incident = KnownIncident(
        message=text,
        message_es=spanish,
        parent=parent,
        client_ids=clients,
        started_at=now,
        updated_at=now,
        declared_by=actor[:120],
    )
    session.add(incident)
    session.flush()
    audit(
        session,
        parent,
        actor=actor,
        action="known incident declared",
        now=now,
        detail={"incident": incident.id, "message": text, "clients": clients},
    )
    return incident


def active_known_incidents(session: Session, now: datetime) -> Sequence[KnownIncident]:
    """Known incidents in force at ``now``, newest first."""
    return session.scalars(
        select(KnownIncident)
        .where(KnownIncident.started_at <= now)
        .where((KnownIncident.ended_at.is_(None)) | (KnownIncident.ended_at > now))
        .order_by(KnownIncident.started_at.desc(), KnownIncident.id.desc())
    ).all()


def affects(incident: KnownIncident, client_id: int | None) -> bool:
    """Whether the incident is about this client: every client when it names none."""
    return not incident.client_ids or (client_id is not None and client_id in incident.client_ids)


def for_client(session: Session, client_id: int | None, now: datetime) -> list[KnownIncident]:
    """The active known incidents this client's people are told about (portal banner), newest first."""
    return [i for i in active_known_incidents(session, now) if affects(i, client_id)]


def for_caller(session: Session, caller: str | None, now: datetime) -> KnownIncident | None:
    """The known incident a caller hears about: the newest one affecting the client of the caller ID."""
    incidents = active_known_incidents(session, now)
    if not incidents:
        return None
    client, _contact = lifecycle.find_caller(session, caller)
    client_id = client.id if client is not None else None
    return next((i for i in incidents if affects(i, client_id)), None)


def message_for(incident: KnownIncident, language: str) -> str:
    """The message in the caller's language: the Spanish text when given, else as the coordinator wrote it."""
    if language == "es" and incident.message_es:
        return incident.message_es
    return incident.message


def callers(session: Session, incident_id: int) -> int:
    """How many callers' tickets joined the incident."""
    return session.scalar(select(func.count(IncidentCall.id)).where(IncidentCall.incident_id == incident_id)) or 0


def join(session: Session, incident_id: int, ticket: Ticket, *, now: datetime, policy: SupportPolicy) -> int:
    """A caller pressed 1: their ticket (a P3) joins the incident's parent; counted and audited on both."""
    incident = session.get(KnownIncident, incident_id)
    if incident is None:
        raise InvalidInput(f"no known incident {incident_id}")
    if incident.ended_at is not None and incident.ended_at <= now:
        raise InvalidTransition(f"known incident {incident_id} has ended")
    joined = session.scalar(select(IncidentCall).where(IncidentCall.ticket_id == ticket.id))
    if joined is None:
        if ticket.priority != Priority.P3.value and not ticket.critical_requested:
            lifecycle.change_priority(
                session,
                ticket,
                Priority.P3,
                reason="joined a known incident",
                actor="support line",
                now=now,
                policy=policy,
            )
        session.add(IncidentCall(incident_id=incident.id, ticket_id=ticket.id, joined_at=now))
        ticket.summary = f"Caller about the known incident (ticket {incident.parent.number})"
        session.flush()
        count = callers(session, incident.id)
        incident.updated_at = now
        audit(
            session,
            ticket,
            actor="support line",
            action="joined known incident",
            now=now,
            detail={"incident": incident.id, "parent": incident.parent.number},
        )
        audit(
            session,
            incident.parent,
            actor="support line",
            action="caller joined known incident",
            now=now,
            detail={"incident": incident.id, "ticket": ticket.number, "callers": count},
        )
    return callers(session, incident.id)


@dataclass(frozen=True)
class Ended:
    """What ending an incident did: tickets resolved and contacts told (once each)."""

    resolved: int
    notified: int


def end_known_incident(
    session: Session,
    incident_id: int,
    *,
    actor: str,
    now: datetime,
    policy: SupportPolicy,
    note: str | None = None,
    notify: bool = False,
) -> Ended:
    """End an incident: its callers' tickets are resolved with it; ``notify`` tells each contact once (email or
    SMS, through the outbox, audited) with ``note`` or a sentence naming the message."""
    incident = session.get(KnownIncident, incident_id)
    if incident is None:
        raise InvalidInput(f"no known incident {incident_id}")
    if incident.ended_at is not None:
        raise InvalidTransition(f"known incident {incident_id} has already ended")
    text = _message(note, required=False, what="the closing note") or f"Resolved: {incident.message}"
    incident.ended_at = now
    incident.updated_at = now
    incident.ended_by = actor[:120]
    incident.end_note = text
    told: set[tuple[str, str]] = set()
    resolved = 0
    for joined in incident.calls:
        ticket = joined.ticket
        if ticket.status not in OPEN_STATUSES or ticket.merged_into_id is not None:
            continue
        route = conversation.reply_route(session, ticket) if notify else None
        key = (route[0], route[1].lower()) if route is not None else None
        if key is not None and key not in told:
            told.add(key)
            conversation.compose(
                session, ticket, text, public=True, then="resolved", actor=actor, now=now, policy=policy
            )
        else:
            posted = len(outbox.written(session))
            lifecycle.set_status(
                session, ticket, Status.RESOLVED, actor=actor, now=now, policy=policy, reason="known incident ended"
            )
            for message in outbox.written(session)[posted:]:
                if message.kind == outbox.NOTIFY:
                    outbox.withdraw(session, message)  # told once already, or the coordinator chose not to tell
        resolved += 1
    audit(
        session,
        incident.parent,
        actor=actor,
        action="known incident ended",
        now=now,
        detail={"incident": incident.id, "resolved": resolved, "notified": len(told)},
    )
    return Ended(resolved=resolved, notified=len(told))


@dataclass(frozen=True)
class PublicIncident:
    """What the public status page shows of an incident: no client, caller or ticket."""

    message: str
    started_at: datetime
    updated_at: datetime
    ended_at: datetime | None


def public_status(session: Session, now: datetime) -> tuple[list[PublicIncident], list[PublicIncident]]:
    """The active incidents and those that ended in the last week, newest first, as the public may see them."""
    rows = session.scalars(
        select(KnownIncident)
        .where(KnownIncident.started_at <= now)
        .where((KnownIncident.ended_at.is_(None)) | (KnownIncident.ended_at > now - RECENTLY_ENDED))
        .order_by(KnownIncident.started_at.desc(), KnownIncident.id.desc())
    ).all()
    views = [PublicIncident(i.message, i.started_at, i.updated_at, i.ended_at if i.ended_at else None) for i in rows]
    active = [v for v in views if v.ended_at is None or v.ended_at > now]
    ended = [v for v in views if v.ended_at is not None and v.ended_at <= now]
    return active, ended
