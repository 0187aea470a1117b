"""What the console and the JSON API show of a ticket: SLA milestones, paging state, timeline entries.

Plain functions from ORM rows (already loaded) and "now" to small frozen values,
so templates and JSON stay free of business rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from functools import cached_property
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from languages import translator
from ticketing import outbox, summaries, voicemail
from ticketing import paging as paging_core
from ticketing.milestones import milestone_states, next_milestone
from ticketing.models import AuditEntry, CallEvent, Escalation, EscalationJoin, OutboxMessage, Status, Ticket
from ticketing.paging import PAGE_CHANNELS
from ticketing.phone import CALLBACK_ORIGINS, callback_of
from ticketing.policy import SupportPolicy
from ticketing.priority import Priority
from ticketing.sla import AT_RISK, BREACHED, MET_LATE
from ticketing.transcripts import NumberCheck, missing_note, numbers_of
from transcription.hints import summarize

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
    final: bool = False  # the ticket is resolved or closed: the state is final, no countdown

    @property
    def live(self) -> bool:
        """A countdown is shown (an open ticket's unmet milestone with a due time)."""
        return not self.final and self.met_at is None and self.due_at is not None and self.state != "paused"

    @property
    def breached(self) -> bool:
        """Overdue now, or met after its due time (or, on an ended ticket, never met and overdue)."""
        return self.state in (BREACHED, MET_LATE, LATE)

    @property
    def css(self) -> str:
        """The state as a CSS class name."""
        return "st-" + self.state.replace(" ", "-")


@dataclass(frozen=True)
class PagingView:
    """Where a ticket's P1 paging stands, and who was paged or acknowledged it."""

    state: str  # none, requested, paging, unreached, exhausted, acknowledged, stopped, joined
    people: tuple[str, ...] = ()
    by: str | None = None
    at: datetime | None = None
    via: str | None = None
    policy: str | None = None
    delivered: int = 0  # "N of M pages delivered" (Twilio's delivery status; email: accepted by the mail server)
    total: int = 0
    unreached: bool = False  # a step's wait passed and no page has been delivered: red
    fallback_sent: tuple[str, ...] = ()  # the fallback people a page was actually sent to
    joined_into: int | None = None  # this call's paging joined the escalation of that ticket
    emails: int = 0  # email pages the mail server accepted (a second way out, not counted as delivered)

    @property
    def acknowledgeable(self) -> bool:
        """A person can still acknowledge it."""
        return self.state in ("requested", "paging", "unreached", "exhausted", "joined")

    @property
    def delivery_text(self) -> str:
        """E.g. '0 of 6 pages delivered'."""
        return f"{self.delivered} of {self.total} page{'' if self.total == 1 else 's'} delivered"


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
    client_summary: str = ""  # what the client sees (ticketing.summaries): email subjects, the portal

    @property
    def offers_acknowledge(self) -> bool:
        """The ticket page offers "Acknowledge page": while paging runs or waits unacknowledged, or a new P1 was
        never paged; never once acknowledged (by a page, the escalation it joined, or a person on the ticket)."""
        t = self.ticket
        if self.paging.state == "acknowledged" or not _is_open(t):
            return False
        if self.paging.acknowledgeable:
            return True
        return t.priority == Priority.P1.value and self.paging.state == "none" and t.status == Status.NEW.value

    @property
    def client_summary_by_person(self) -> bool:
        """A person wrote what the client sees (else it is the neutral voicemail line)."""
        return summaries.by_person(self.ticket)

    @cached_property
    def english_summary(self) -> str:
        """The summary in English, as the queue shows it: a message in another language whose summary line the
        recogniser wrote is summarised from its English translation (the original stays on the ticket page)."""
        t = self.ticket
        machine = (self.hints or {}).get("summary")
        translation = (t.transcript_translation or "").strip()
        if translation and (t.transcript_language or "en") != "en" and machine and t.summary == machine:
            return summarize(translation, organisation=(self.hints or {}).get("organisation") or None)
        return t.summary

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
    def translation_state(self) -> str | None:
        """``done``, ``pending`` or ``failed`` for a transcript in another language; None otherwise."""
        return voicemail.translation_state(self.ticket)

    @property
    def translation_error(self) -> str | None:
        """Why the English translation failed, or None."""
        return voicemail.translation_error(self.ticket)

    @cached_property
    def number_check(self) -> NumberCheck | None:
        """Numbers in the transcript to check against the recording (two readings heard them differently)."""
        return numbers_of(self.ticket)

    @property
    def callback(self) -> tuple[str | None, str | None]:
        """The number the call-back button dials, and its origin: the one the caller confirmed or keyed, else
        the caller ID, else (withheld) the number heard in the message; the transcript's hint stays beside it."""
        t = self.ticket
        return callback_of(
            t.callback_number, t.callback_origin, t.caller_number, (self.hints or {}).get("callback_number")
        )

    @property
    def callback_number(self) -> str | None:
        """The call-back button's number (``callback``)."""
        return self.callback[0]

    @property
    def callback_origin(self) -> str:
        """Where the call-back number came from, as the console says it ('keyed by the caller'), or ''."""
        origin = self.callback[1]
        return CALLBACK_ORIGINS.get(origin, "") if origin else ""

    @property
    def callback_unsure(self) -> bool:
        """The callback number hint comes from a number the transcript may have misheard."""
        check, number = self.number_check, (self.hints or {}).get("callback_number")
        return check is not None and bool(number) and check.doubts(str(number))

    @property
    def has_audio(self) -> bool:
        """A stored recording the console can play."""
        return bool(self.ticket.audio_path)


def countdown_text(seconds: int) -> str:
    """Time left as the console shows it: '3h 05m', '12m 30s', '2d 4h'; past due '18d 14h over' (no minus sign:
    "over" says it). ``console.js`` keeps it live with the same words."""
    left = abs(int(seconds))
    days, rest = divmod(left, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        text = f"{days}d {hours}h"
    elif hours:
        text = f"{hours}h {minutes:02d}m"
    else:
        text = f"{minutes}m {secs:02d}s"
    return f"{text} over" if seconds < 0 else text


LATE = "late"  # a resolved or closed ticket's milestone never met, its due time passed before the end
NOT_NEEDED = "not needed"  # never met, but the ticket ended before it was due


def ended_at(ticket: Ticket) -> datetime | None:
    """When a resolved or closed ticket ended (None while it is open)."""
    if _is_open(ticket):
        return None
    resolved = next((m.met_at for m in ticket.milestones if m.name == "resolved" and m.met_at is not None), None)
    return resolved or ticket.updated_at or ticket.opened_at


def milestone_views(ticket: Ticket, policy: SupportPolicy, now: datetime) -> tuple[MilestoneView, ...]:
    """Every milestone of a ticket with its state at ``now``; final states (met, met late, late) once it ended."""
    end = ended_at(ticket)
    states = milestone_states(ticket, policy, end or now)
    target = policy.target(ticket.priority)
    out = []
    for m in ticket.milestones:
        duration = target.for_milestone(m.name)
        risk_at = m.due_at - duration * policy.at_risk_fraction if m.due_at is not None and duration else None
        state = states[m.name]
        if end is not None and m.met_at is None:
            state = "best effort" if m.due_at is None else LATE if m.due_at < end else NOT_NEEDED
        out.append(
            MilestoneView(
                name=m.name,
                label=MILESTONE_LABELS.get(m.name, m.name),
                due_at=m.due_at,
                met_at=m.met_at,
                met_in_time=m.met_in_time,
                state=state,
                risk_at=risk_at,
                estimate=m.estimate,
                final=end is not None,
            )
        )
    return tuple(out)


def paging_view(
    ticket: Ticket, escalation: Escalation | None, page_requested: bool, join: EscalationJoin | None = None
) -> PagingView:
    """The paging state of one ticket from its escalation (pages loaded) and whether a page was requested."""
    if escalation is None and join is not None:
        main = paging_view(join.escalation.ticket, join.escalation, True)
        return PagingView(
            "acknowledged" if main.state == "acknowledged" else "joined",
            people=main.people,
            by=main.by,
            at=main.at,
            via=main.via,
            policy=main.policy,
            delivered=main.delivered,
            total=main.total,
            unreached=main.unreached,
            joined_into=join.escalation.ticket.number,
        )
    if escalation is None:
        return PagingView("requested" if page_requested and _is_open(ticket) else "none")
    latest = escalation.next_position - 1
    people = tuple(
        dict.fromkeys(p.person_name for p in escalation.pages if p.position == latest and p.channel in PAGE_CHANNELS)
    )
    counts = paging_core.delivery_of(escalation)
    common = {
        "people": people,
        "policy": escalation.policy,
        "delivered": counts.delivered,
        "total": counts.total,
        "unreached": escalation.unreached_since is not None and counts.delivered == 0,
        "emails": paging_core.emails_sent(escalation),
        "fallback_sent": tuple(
            dict.fromkeys(
                p.person_name
                for p in escalation.pages
                if p.round == 0 and p.position >= 0 and p.channel in PAGE_CHANNELS and p.state == paging_core.SENT
            )
        ),
    }
    if escalation.acknowledged_at is not None:
        return PagingView(
            "acknowledged",
            by=escalation.acknowledged_by,
            at=escalation.acknowledged_at,
            via=escalation.acknowledged_via,
            **common,  # type: ignore[arg-type]
        )
    state = escalation.state
    if common["unreached"] and state in paging_core.ACKNOWLEDGEABLE:
        state = "unreached"
    return PagingView(state, **common)  # type: ignore[arg-type]


def _is_open(ticket: Ticket) -> bool:
    return Status(ticket.status).is_open and ticket.merged_into_id is None


def ticket_views(session: Session, tickets: Sequence[Ticket], policy: SupportPolicy, now: datetime) -> list[TicketView]:
    """Views of many tickets with two extra queries (escalations with pages, page requests), not one per ticket."""
    ids = [t.id for t in tickets]
    escalations: dict[int, Escalation] = {}
    joins: dict[int, EscalationJoin] = {}
    requested: set[str] = set()
    if ids:
        for e in session.scalars(
            select(Escalation).where(Escalation.ticket_id.in_(ids)).options(selectinload(Escalation.pages))
        ).all():
            escalations[e.ticket_id] = e
        for j in session.scalars(select(EscalationJoin).where(EscalationJoin.ticket_id.in_(ids))).all():
            joins[j.ticket_id] = j
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
                paging=paging_view(t, escalations.get(t.id), f"{outbox.PAGE}:{t.number}" in requested, joins.get(t.id)),
                client=t.client.name if t.client is not None else None,
                caller_name=(t.contact.name if t.contact is not None else None) or hints.get("caller_name") or None,
                hints=hints,
                client_summary=summaries.client_summary(t, tz=policy.timezone, translate=translator(t.language)),
            )
        )
    return out


def _next(ticket: Ticket, milestones: Iterable[MilestoneView]) -> MilestoneView | None:
    if not _is_open(ticket):
        return None
    nxt = next_milestone(ticket)
    if nxt is None:
        return None
    return next(m for m in milestones if m.name == nxt.name)


# --- timeline ------------------------------------------------------------------------------------------


TIMELINE_CATEGORIES = {"call": "Calls", "paging": "Paging", "sla": "SLA", "people": "People"}
_PAGING_ACTIONS = ("paged", "acknowledged", "caller connected", "escalated early", "escalation exhausted")
_SLA_ACTIONS = ("priority changed", "exceptional event", "waiting on client", "resumed", "created")


def timeline_category(action: str) -> str:
    """Which filter of the timeline an audited change belongs to: paging, sla or people."""
    if action in _PAGING_ACTIONS or action.startswith(("page", "paging")):
        return "paging"
    if action in _SLA_ACTIONS or action.endswith(" met"):
        return "sla"
    return "people"


@dataclass(frozen=True)
class TimelineEntry:
    """One line of a ticket's timeline: a step of the call or an audited change (with its full detail)."""

    at: datetime
    kind: str  # call, audit
    who: str
    what: str
    text: str
    alert: bool = False
    category: str = "call"  # call, paging, sla, people (the timeline's filter)
    audit: AuditEntry | None = None


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
    if a == "client reply":
        return f"via {d.get('via') or 'email'}: {d.get('text', '')}"
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
    """The call's steps and the ticket's audited changes in one list, oldest first (ties: call steps first)."""
    entries = [TimelineEntry(e.at, "call", "call", e.event, describe_call_event(e, tz)) for e in events] + [
        TimelineEntry(
            a.at,
            "audit",
            a.actor,
            a.action,
            _join([describe_audit(a, tz), f"“{a.reason}”" if a.reason else None]),
            alert=bool((a.detail or {}).get("alert"))
            or a.action in ("page failed", "transcription failed", "nobody reached", "page retrying"),
            category=timeline_category(a.action),
            audit=a,
        )
        for a in audit
    ]
    return sorted(entries, key=lambda e: (e.at, e.kind != "call"))


@dataclass(frozen=True)
class CollapsedRun:
    """A run of paging entries folded away (a long escalation), shown behind one line."""

    entries: tuple[TimelineEntry, ...]
    kind: str = "collapsed"

    @property
    def alerts(self) -> int:
        """How many of the folded entries are failures."""
        return sum(1 for e in self.entries if e.alert)


def collapse_paging(entries: Sequence[TimelineEntry], keep: int = 2) -> list[TimelineEntry | CollapsedRun]:
    """Runs of more than 2 * ``keep`` + 1 paging entries keep their first and last ``keep``, the rest folded."""
    out: list[TimelineEntry | CollapsedRun] = []
    run: list[TimelineEntry] = []

    def flush() -> None:
        if len(run) > 2 * keep + 1:
            out.extend(run[:keep])
            out.append(CollapsedRun(tuple(run[keep:-keep])))
            out.extend(run[-keep:])
        else:
            out.extend(run)
        run.clear()

    for e in entries:
        if e.category == "paging":
            run.append(e)
            continue
        flush()
        out.append(e)
    flush()
    return out
