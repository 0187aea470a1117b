"""What the console and the JSON API show of a ticket: SLA milestones, paging state, timeline entries.

Plain functions from ORM rows (already loaded) and "now" to small frozen values,
so templates and JSON stay free of business rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ticketing import outbox, service
from ticketing.models import AuditEntry, CallEvent, Escalation, OutboxMessage, Status, Ticket
from ticketing.paging import PAGE_CHANNELS
from ticketing.policy import SupportPolicy
from ticketing.priority import Priority
from ticketing.sla import AT_RISK, BREACHED, MET_LATE
from ticketing.transcripts import missing_note

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2}|Z)$")
MILESTONE_LABELS = {
    "first_response": "First response",
    "resolution_plan": "Resolution plan",
    "resolved": "Resolved",
}


@dataclass(frozen=True)
class MilestoneView:
    """One SLA milestone as shown: due time, state and when it turns at risk."""

    name: str
    label: str
    due_at: datetime | None
    met_at: datetime | None
    met_in_time: bool | None
    state: str
    risk_at: datetime | None  # when the at-risk warning starts (None: no target)
    estimate: datetime | None

    @property
    def breached(self) -> bool:
        """Overdue now, or met after its due time."""
        return self.state in (BREACHED, MET_LATE)

    @property
    def css(self) -> str:
        """The state as a CSS class name."""
        return "st-" + self.state.replace(" ", "-")


@dataclass(frozen=True)
class PagingView:
    """Where a ticket's P1 paging stands, and who was paged or acknowledged it."""

    state: str  # none, requested, paging, exhausted, acknowledged, stopped
    people: tuple[str, ...] = ()
    by: str | None = None
    at: datetime | None = None
    via: str | None = None
    policy: str | None = None

    @property
    def acknowledgeable(self) -> bool:
        """A person can still acknowledge it."""
        return self.state in ("requested", "paging", "exhausted")


@dataclass(frozen=True)
class TicketView:
    """A ticket with what the queue and the ticket page compute about it."""

    ticket: Ticket
    milestones: tuple[MilestoneView, ...]
    next: MilestoneView | None
    paging: PagingView
    client: str | None
    caller_name: str | None
    hints: Mapping[str, Any] = field(default_factory=dict)

    @property
    def priority_label(self) -> str:
        """E.g. 'P1 - Critical'."""
        return Priority.parse(self.ticket.priority).label

    @property
    def worst(self) -> str:
        """The most urgent state of any unmet milestone (breached, at risk, ...), for row colouring."""
        states = [m.state for m in self.milestones]
        for state in (BREACHED, AT_RISK):
            if state in states:
                return state
        return self.next.state if self.next is not None else "none"

    @property
    def missing_note(self) -> str:
        """'part of the message may be missing: listen to 0:08–0:16', or ''."""
        return missing_note(self.ticket.transcript_missing)

    @property
    def has_audio(self) -> bool:
        """A stored recording the console can play."""
        return bool(self.ticket.audio_path)


def milestone_views(ticket: Ticket, policy: SupportPolicy, now: datetime) -> tuple[MilestoneView, ...]:
    """Every milestone of a ticket with its state at ``now``."""
    states = service.milestone_states(ticket, policy, now)
    target = policy.target(ticket.priority)
    out = []
    for m in ticket.milestones:
        duration = target.for_milestone(m.name)
        risk_at = m.due_at - duration * policy.at_risk_fraction if m.due_at is not None and duration else None
        out.append(
            MilestoneView(
                name=m.name,
                label=MILESTONE_LABELS.get(m.name, m.name),
                due_at=m.due_at,
                met_at=m.met_at,
                met_in_time=m.met_in_time,
                state=states[m.name],
                risk_at=risk_at,
                estimate=m.estimate,
            )
        )
    return tuple(out)


def paging_view(ticket: Ticket, escalation: Escalation | None, page_requested: bool) -> PagingView:
    """The paging state of one ticket from its escalation (pages loaded) and whether a page was requested."""
    if escalation is None:
        return PagingView("requested" if page_requested and _is_open(ticket) else "none")
    latest = escalation.next_position - 1
    people = tuple(
        dict.fromkeys(p.person_name for p in escalation.pages if p.position == latest and p.channel in PAGE_CHANNELS)
    )
    if escalation.acknowledged_at is not None:
        return PagingView(
            "acknowledged",
            people=people,
            by=escalation.acknowledged_by,
            at=escalation.acknowledged_at,
            via=escalation.acknowledged_via,
            policy=escalation.policy,
        )
    return PagingView(escalation.state, people=people, policy=escalation.policy)


def _is_open(ticket: Ticket) -> bool:
    return Status(ticket.status).is_open and ticket.merged_into_id is None


def ticket_views(session: Session, tickets: Sequence[Ticket], policy: SupportPolicy, now: datetime) -> list[TicketView]:
    """Views of many tickets with two extra queries (escalations with pages, page requests), not one per ticket."""
    ids = [t.id for t in tickets]
    escalations: dict[int, Escalation] = {}
    requested: set[str] = set()
    if ids:
        for e in session.scalars(
            select(Escalation).where(Escalation.ticket_id.in_(ids)).options(selectinload(Escalation.pages))
        ).all():
            escalations[e.ticket_id] = e
        keys = [f"{outbox.PAGE}:{t.number}" for t in tickets]
        requested = set(session.scalars(select(OutboxMessage.key).where(OutboxMessage.key.in_(keys))).all())
    out = []
    for t in tickets:
        milestones = milestone_views(t, policy, now)
        hints = dict(t.hints or {})
        out.append(
            TicketView(
                ticket=t,
                milestones=milestones,
                next=_next(t, milestones),
                paging=paging_view(t, escalations.get(t.id), f"{outbox.PAGE}:{t.number}" in requested),
                client=t.client.name if t.client is not None else None,
                caller_name=(t.contact.name if t.contact is not None else None) or hints.get("caller_name") or None,
                hints=hints,
            )
        )
    return out


def _next(ticket: Ticket, milestones: Iterable[MilestoneView]) -> MilestoneView | None:
    nxt = service.next_milestone(ticket)
    if nxt is None:
        return None
    return next(m for m in milestones if m.name == nxt.name)


# --- timeline ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineEntry:
    """One line of a ticket's timeline: a step of the call or an audited change."""

    at: datetime
    kind: str  # call, audit
    who: str
    what: str
    text: str
    alert: bool = False


def _join(parts: Iterable[str | None]) -> str:
    return " · ".join(p for p in parts if p)


def describe_call_event(event: CallEvent, tz: tzinfo | None = None) -> str:
    """A short description of a call step."""
    d = event.detail or {}
    if event.event == "incoming":
        return "business hours" if d.get("business_hours") else "after hours"
    if event.event == "menu":
        return _join([f"pressed {d['digits']}" if d.get("digits") else "no key", f"→ {d.get('route')}"])
    if event.event == "coordinator ring":
        return _join([str(d.get("status") or ""), "accepted" if d.get("accepted") else "not accepted"])
    if event.event == "voicemail":
        return "critical (P1) voicemail" if d.get("critical") else "voicemail"
    return describe_detail(d, tz=tz)


def describe_audit(entry: AuditEntry, tz: tzinfo | None = None) -> str:
    """A short description of an audited change (the audit table shows the full detail)."""
    d = entry.detail or {}
    a = entry.action
    if a == "priority changed":
        return f"{d.get('from')} → {d.get('to')}"
    if a in ("status changed", "assigned"):
        return f"{d.get('from') or '—'} → {d.get('to') or '—'}"
    if a == "note":
        return str(d.get("text", ""))
    if a == "paged":
        return _join([str(d.get("position") or ""), ", ".join(d.get("people") or [])])
    if a == "acknowledged":
        secs = d.get("after_seconds")
        return _join(
            [f"via {d.get('via')}", f"after {secs // 60} min {secs % 60} s" if isinstance(secs, int) else None]
        )
    if a == "exceptional event":
        return f"targets extended by {_duration(d.get('extension_seconds'))}"
    if a == "transcript corrected":
        return "original kept in the audit log"
    if a == "merged":
        return f"into #{d.get('into')}"
    if a == "merged in":
        return f"#{d.get('ticket')} merged into this ticket"
    return describe_detail(d, skip=("due_before", "due_after", "due", "steps", "original", "corrected"), tz=tz)


def describe_detail(detail: Mapping[str, Any], skip: Iterable[str] = (), tz: tzinfo | None = None) -> str:
    """``key: value`` pairs of a detail mapping, short values only; instants shown in ``tz``."""
    skipped = set(skip)
    parts = []
    for key, value in detail.items():
        if key in skipped or value is None or value == "" or isinstance(value, (dict, list)):
            continue
        if isinstance(value, bool):
            text = "yes" if value else "no"
        elif key.endswith("_seconds") and isinstance(value, (int, float)):
            key, text = key.removesuffix("_seconds"), _seconds_text(int(value))
        elif isinstance(value, str) and tz is not None and _ISO.match(value):
            text = datetime.fromisoformat(value).astimezone(tz).strftime("%a %H:%M")
        else:
            text = str(value)
        parts.append(f"{key.replace('_', ' ')}: {text[:80]}")
    return _join(parts)


def _seconds_text(seconds: int) -> str:
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h" if hours else "", f"{minutes} min" if minutes else "", f"{secs} s" if secs else ""]
    return " ".join(p for p in parts if p) or "0 s"


def _duration(seconds: object) -> str:
    if not isinstance(seconds, int):
        return "?"
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    return f"{hours} h {minutes:02d} min" if minutes else f"{hours} h"


def timeline(events: Iterable[CallEvent], audit: Iterable[AuditEntry], tz: tzinfo | None = None) -> list[TimelineEntry]:
    """The call's steps and the ticket's audited changes, oldest first."""
    entries = [TimelineEntry(e.at, "call", "call", e.event, describe_call_event(e, tz)) for e in events] + [
        TimelineEntry(
            a.at,
            "audit",
            a.actor,
            a.action,
            _join([describe_audit(a, tz), f"“{a.reason}”" if a.reason else None]),
            alert=bool((a.detail or {}).get("alert")) or a.action in ("page failed", "transcription failed"),
        )
        for a in audit
    ]
    return sorted(entries, key=lambda e: e.at)
