"""Monitoring alerts: routing keys per client, and what a trigger, acknowledge or resolve does to a ticket.

A trigger opens a ticket whose priority follows the alert's severity (a critical one pages on-call exactly
as pressing 2 on the phone does); the same dedup key while that ticket is open adds a note to it instead.
Acknowledge stops the paging like a page acknowledgement; resolve resolves the ticket. Everything is
audited on the ticket's log.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ticketing import audit, lifecycle, paging, voicemail
from ticketing.errors import InvalidInput, InvalidTransition
from ticketing.models import Alert, AlertKey, Client, Source, Status
from ticketing.policy import SupportPolicy
from ticketing.priority import Priority
from ticketing.text import one_line

SEVERITIES = ("critical", "error", "warning", "info")
ACTIONS = ("trigger", "acknowledge", "resolve")
DEFAULT_PRIORITIES: Mapping[str, str] = {"critical": "P1", "error": "P2", "warning": "P3", "info": "P4"}
KEY_LENGTH = 32  # as PagerDuty's integration keys
ACTOR = "monitoring alert"


@dataclass(frozen=True)
class Outcome:
    """What an event did: its dedup key, the ticket it touched (None when none) and how."""

    dedup_key: str
    ticket: int | None
    result: str  # opened, added, acknowledged, resolved, ignored


def priority_for(severity: str, priorities: Mapping[str, str] = DEFAULT_PRIORITIES) -> Priority:
    """The ticket priority an alert of ``severity`` gets (the mapping comes from the settings)."""
    if severity not in SEVERITIES:
        raise InvalidInput(f"unknown severity {severity!r}: expected one of {', '.join(SEVERITIES)}")
    return Priority.parse(priorities.get(severity, DEFAULT_PRIORITIES[severity]))


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue_key(session: Session, *, client: str | int, name: str, actor: str, now: datetime) -> tuple[AlertKey, str]:
    """Issue a routing key for a client's monitoring tool; the key itself is returned once, never stored."""
    found = _client(session, client)
    label = one_line(name or "").strip()[:64]
    if not label:
        raise InvalidInput("a routing key needs a name (the tool that will use it)")
    key = secrets.token_hex(KEY_LENGTH // 2)
    row = AlertKey(
        client_id=found.id,
        name=label,
        key_hash=_digest(key),
        prefix=key[:8],
        created_at=now,
        created_by=actor,
    )
    session.add(row)
    session.flush()
    return row, key


def _client(session: Session, client: str | int) -> Client:
    if isinstance(client, int) or str(client).isdigit():
        found = session.get(Client, int(client))
    else:
        found = session.scalars(select(Client).where(Client.name == str(client).strip())).first()
    if found is None:
        raise InvalidInput(f"unknown client {client!r}")
    return found


def alert_keys(session: Session) -> Sequence[AlertKey]:
    """Every routing key, newest first (revoked ones too: the list shows when they stopped)."""
    return session.scalars(select(AlertKey).order_by(AlertKey.id.desc())).all()


def revoke_key(session: Session, key_id: int | str, *, actor: str, now: datetime) -> AlertKey:
    """Stop a routing key (by id or its shown prefix); its alerts' tickets stay as they are."""
    text = str(key_id).strip()
    row = session.get(AlertKey, int(text)) if text.isdigit() and len(text) < 8 else None
    if row is None:
        row = session.scalars(select(AlertKey).where(AlertKey.prefix == text.lower())).first()
    if row is None:
        raise InvalidInput(f"no routing key {key_id!r}")
    if row.revoked_at is None:
        row.revoked_at = now
    return row


def key_for(session: Session, presented: str) -> AlertKey | None:
    """The live routing key ``presented`` is, if any (looked up by its SHA-256, never compared as text)."""
    if len(presented) != KEY_LENGTH:
        return None
    row = session.scalars(select(AlertKey).where(AlertKey.key_hash == _digest(presented))).first()
    return row if row is not None and row.revoked_at is None else None


def new_dedup_key() -> str:
    """A dedup key for a trigger that came without one (32 hex characters, as PagerDuty makes them)."""
    return uuid.uuid4().hex


def receive(
    session: Session,
    key: AlertKey,
    *,
    action: str,
    dedup_key: str,
    summary: str = "",
    source: str = "",
    severity: str = "",
    details: str = "",
    policy: SupportPolicy,
    priorities: Mapping[str, str] = DEFAULT_PRIORITIES,
    now: datetime,
) -> Outcome:
    """Apply one event of ``key``'s client to its alert's ticket; leaves the commit to the caller.

    Events of one key run one after another (the first statement writes the key's row, which holds it until
    commit on both databases), so two triggers with one dedup key never open two tickets.
    """
    if action not in ACTIONS:
        raise InvalidInput(f"unknown event_action {action!r}")
    session.execute(update(AlertKey).where(AlertKey.id == key.id).values(last_used_at=now))
    alert = _open_alert(session, key.client_id, dedup_key)
    if action == "trigger":
        return _trigger(session, key, alert, dedup_key, summary, source, severity, details, policy, priorities, now)
    if alert is None:
        return Outcome(dedup_key, None, "ignored")  # PagerDuty too accepts events for keys it has no alert for
    if action == "acknowledge":
        return _acknowledge(session, alert, source, now)
    return _resolve(session, alert, source, policy, now)


def _open_alert(session: Session, client_id: int, dedup_key: str) -> Alert | None:
    alert = session.scalars(
        select(Alert).where(Alert.client_id == client_id, Alert.open_dedup_key == dedup_key)
    ).first()
    if alert is not None and not Status(alert.ticket.status).is_open:
        alert.open_dedup_key = None  # its ticket was resolved or closed elsewhere: the next trigger opens another
        session.flush()
        return None
    return alert


def _trigger(
    session: Session,
    key: AlertKey,
    alert: Alert | None,
    dedup_key: str,
    summary: str,
    source: str,
    severity: str,
    details: str,
    policy: SupportPolicy,
    priorities: Mapping[str, str],
    now: datetime,
) -> Outcome:
    priority = priority_for(severity, priorities)
    line = one_line(summary)
    if alert is not None:
        alert.triggers += 1
        alert.updated_at = now
        text = f"The alert fired again ({severity}, from {one_line(source)}): {line}"
        lifecycle.add_note(session, alert.ticket, text[:2000], actor=ACTOR, now=now)
        if priority.value < alert.ticket.priority:  # "P1" < "P2": the alert grew worse, never better
            lifecycle.change_priority(session, alert.ticket, priority, reason=f"the alert is now {severity}",
                                      actor=ACTOR, now=now, policy=policy)  # fmt: skip
            alert.severity = severity
            if priority == Priority.P1:
                alert.ticket.critical_requested = True
                voicemail.request_page(session, alert.ticket, now)
        return Outcome(dedup_key, alert.ticket.number, "added")
    ticket = lifecycle.open_ticket(
        session,
        policy=policy,
        now=now,
        priority=priority,
        source=Source.ALERT,
        actor=ACTOR,
        summary=line,
        description=_description(source, severity, dedup_key, key, details),
        client_id=key.client_id,
        critical_requested=priority == Priority.P1,
        reason=f"a {severity} alert from {one_line(source)[:100]}",
        notify=False,  # the client's own tool raised it: no "we received your request" mail
    )
    alert = Alert(
        client_id=key.client_id,
        key_id=key.id,
        dedup_key=dedup_key,
        open_dedup_key=dedup_key,
        ticket=ticket,
        severity=severity,
        triggers=1,
        triggered_at=now,
        updated_at=now,
    )
    session.add(alert)
    session.flush()
    if priority == Priority.P1:
        voicemail.request_page(session, ticket, now)  # the IVR's own path for a caller pressing 2
    return Outcome(dedup_key, ticket.number, "opened")


def _description(source: str, severity: str, dedup_key: str, key: AlertKey, details: str) -> str:
    lines = [
        f"Monitoring alert from {one_line(source)} (severity {severity}), sent with the routing key "
        f"{key.name!r} ({key.prefix}...).",
        f"Dedup key: {dedup_key}",
    ]
    if details:
        lines += ["", details]
    return "\n".join(lines)


def _acknowledge(session: Session, alert: Alert, source: str, now: datetime) -> Outcome:
    ticket = alert.ticket
    alert.updated_at = now
    via = "monitoring alert"
    if ticket.priority == Priority.P1.value:
        try:
            paging.acknowledge(session, ticket, ACTOR, now, via, counts_as_first_response=False, assign=False)
            return Outcome(alert.dedup_key, ticket.number, "acknowledged")
        except InvalidTransition:
            pass  # a P1 re-prioritised from below, never paged: logged below like any other
    audit.audit(session, ticket, actor=ACTOR, action="alert acknowledged", now=now, detail=_detail(source))
    return Outcome(alert.dedup_key, ticket.number, "acknowledged")


def _resolve(session: Session, alert: Alert, source: str, policy: SupportPolicy, now: datetime) -> Outcome:
    ticket = alert.ticket
    alert.open_dedup_key = None
    alert.updated_at = now
    reason = f"the monitoring alert resolved ({one_line(source)[:100] or 'no source given'})"
    lifecycle.set_status(session, ticket, Status.RESOLVED, actor=ACTOR, now=now, policy=policy, reason=reason)
    return Outcome(alert.dedup_key, ticket.number, "resolved")


def _detail(source: str) -> dict[str, Any]:
    return {"source": one_line(source)[:200]} if source else {}
