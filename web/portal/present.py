"""What the portal shows of a ticket: a list row, the SLA targets, and the public timeline.

The public timeline is built from a whitelist: calls, the client's voicemail and its
transcript, the ticket's conversation (the client's messages by email or portal, the support
team's public replies and the notices the client was sent), status changes, the resolution plan.
Internal notes, paging, assignment, audit reasons and phone numbers never appear.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from languages import translator
from ticketing import summaries
from ticketing.milestones import next_milestone
from ticketing.models import AuditEntry, CallEvent, Status, Ticket, TicketMessage, TranscriptionState
from ticketing.policy import MILESTONES, SupportPolicy
from ticketing.priority import Priority
from ticketing.sla import deadlines

MILESTONE_LABELS = {"first_response": "first response", "resolution_plan": "resolution plan", "resolved": "resolved"}
# The policy's priority descriptions, as the client reads them.
PRIORITY_DESCRIPTIONS = {
    Priority.P1: "Critical: a complete loss of service for several people or a critical business function, "
    "with no workaround; or a security breach, data loss or legal/regulatory risk. Immediate action, "
    "after hours too.",
    Priority.P2: "High: a significant disruption for several people or a critical business function, "
    "with no workaround.",
    Priority.P3: "Medium: a moderate disruption with a workaround; productivity suffers but critical work goes on. "
    "Resolved within one business day.",
    Priority.P4: "Low: a minor issue with little impact and a workaround. Scheduled without urgency.",
    Priority.P5: "No SLA: a request or improvement with no immediate business impact or deadline. "
    "Handled on a best-effort basis.",
}
STATUS_TEXT = {
    Status.NEW.value: "Received",
    Status.ACKNOWLEDGED.value: "Acknowledged",
    Status.IN_PROGRESS.value: "In progress",
    Status.WAITING_ON_CLIENT.value: "Waiting for your reply",
    Status.RESOLVED.value: "Resolved",
    Status.CLOSED.value: "Closed",
}
SOURCE_TEXT = {
    "voicemail": "voicemail",
    "phone": "phone",
    "email": "email",
    "portal": "the portal",
    "manual": "phone",
    "alert": "a monitoring alert",
}


def phone_text(number: str | None) -> str:
    """+18055922500 as 805-592-2500 (the policy's way of writing it)."""
    if number and number.startswith("+1") and len(number) == 12 and number[2:].isdigit():
        d = number[2:]
        return f"{d[:3]}-{d[3:6]}-{d[6:]}"
    return number or ""


def when(at: datetime | None, tz: tzinfo, now: datetime | None = None) -> str:
    """A time in Pacific time: '10:12' today, 'Thu Nov 19, 10:12' another day."""
    if at is None:
        return "—"
    local = at.astimezone(tz)
    if now is not None and local.date() == now.astimezone(tz).date():
        return local.strftime("%H:%M")
    return local.strftime("%a %b %-d, %H:%M")


def duration_text(value: timedelta | None, clock: str) -> str:
    """A target as a client reads it: '12 minutes', '4 hours', '7 business hours', 'best effort'."""
    if value is None:
        return "best effort"
    minutes = int(value.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} minutes"
    hours = value.total_seconds() / 3600
    unit = "hour" if hours == 1 else "hours"
    return f"{hours:g} {unit}" if clock == "24x7" else f"{hours:g} business {unit}"


def targets_of(priority: Priority, policy: SupportPolicy, now: datetime) -> list[tuple[str, str, str]]:
    """(milestone, target, 'by ...') of a ticket of ``priority`` submitted at ``now``, from the support policy."""
    target = policy.target(priority)
    due = deadlines(priority, now, policy).as_dict()
    return [
        (
            MILESTONE_LABELS[m].capitalize(),
            duration_text(target.for_milestone(m), target.clock),
            f"by {when(due[m], policy.timezone, now)}" if due[m] else "best effort",
        )
        for m in MILESTONES
    ]


def paging_notice(pages: bool, after_hours: bool) -> str | None:
    """What the form says about a P1: it pages on-call like "press 2"; after hours, the after-hours team."""
    if not pages:
        return None
    if after_hours:
        return (
            "Our office is closed now: submitting this as P1 - Critical notifies our after-hours support team "
            "at once (as pressing 2 on our support line does), for a same-day response."
        )
    return (
        "Submitting this as P1 - Critical pages our on-call emergency response team at once, "
        "exactly as pressing 2 on our support line does."
    )


@dataclass(frozen=True)
class Row:
    """One ticket in the client's list."""

    number: int
    summary: str
    priority: Priority
    status: str
    status_text: str
    commitment: str
    updated: str
    is_open: bool
    resolved: bool
    contact: str | None  # who it is for (a primary contact sees colleagues' tickets too)


def merged_into(ticket: Ticket) -> int | None:
    """The number of the ticket this one was combined into (a repeat report), from its audit."""
    if ticket.merged_into_id is None:
        return None
    into = next((a.detail.get("into") for a in reversed(ticket.audit) if a.action == "merged" and a.detail), None)
    return into if isinstance(into, int) else None


def commitment_of(ticket: Ticket, policy: SupportPolicy, now: datetime) -> str:
    """The next SLA commitment: 'first response by 10:12', 'waiting for your reply'; empty once resolved."""
    into = merged_into(ticket)
    if into is not None:
        return f"continued in ticket #{into}"
    if ticket.status in (Status.RESOLVED.value, Status.CLOSED.value):
        return ""  # nothing more is due (the status says it; "Closed closed" said it twice)
    if ticket.paused_at is not None:
        return "waiting for your reply"
    nxt = next_milestone(ticket)
    if nxt is None:
        return "best effort"
    return f"{MILESTONE_LABELS[nxt.name]} by {when(nxt.due_at, policy.timezone, now)}"


def row_of(ticket: Ticket, policy: SupportPolicy, now: datetime) -> Row:
    """The list row of a ticket."""
    return Row(
        number=int(ticket.number or 0),
        summary=summaries.client_summary(ticket, tz=policy.timezone, translate=translator(ticket.language))
        or "(no summary)",
        priority=Priority.parse(ticket.priority),
        status=ticket.status,
        status_text="Combined with another ticket"
        if ticket.merged_into_id is not None
        else STATUS_TEXT.get(ticket.status, ticket.status),
        commitment=commitment_of(ticket, policy, now),
        updated=when(ticket.updated_at, policy.timezone, now),
        is_open=Status(ticket.status).is_open,
        resolved=ticket.status == Status.RESOLVED.value,
        contact=ticket.contact.name if ticket.contact is not None else None,
    )


def estimate_of(ticket: Ticket, tz: tzinfo) -> str | None:
    """The engineer's estimated resolution, once a resolution plan is recorded."""
    plan = ticket.milestone("resolution_plan")
    if plan.met_at is None or plan.estimate is None:
        return None
    return plan.estimate.astimezone(tz).strftime("%a %b %-d, %H:%M")


@dataclass(frozen=True)
class Entry:
    """One line of the public timeline."""

    at: datetime
    when: str
    who: str
    what: str
    text: str = ""
    kind: str = "event"  # event, reply, voicemail


def _priority_label(value: object) -> str:
    try:
        return Priority.parse(value).label
    except ValueError:
        return str(value)


def _describe(entry: AuditEntry, ticket: Ticket, tz: tzinfo) -> Entry | None:
    d = entry.detail or {}
    stamp = entry.at.astimezone(tz).strftime("%a %b %-d, %H:%M")
    team = "Support team"
    a = entry.action
    if a == "created":
        return Entry(
            entry.at,
            stamp,
            team,
            f"Ticket received via {SOURCE_TEXT.get(ticket.source, ticket.source)}, "
            f"priority {_priority_label(d.get('priority'))}",
        )
    if a == "priority changed":
        return Entry(entry.at, stamp, team, f"Priority changed to {_priority_label(d.get('to'))}")
    if a == "status changed":
        # The client's own "this is resolved" / "still broken" is theirs, not the support team's.
        who = entry.actor.removesuffix(" (portal)") if entry.actor.endswith(" (portal)") else team
        return Entry(entry.at, stamp, who, f"Status: {STATUS_TEXT.get(str(d.get('to')), str(d.get('to')))}")
    if a == "waiting on client":
        return Entry(entry.at, stamp, team, "Waiting for your reply (the SLA clock is paused)")
    if a == "resumed":
        return Entry(entry.at, stamp, team, "Work resumed")
    if a == "first response met":
        return Entry(entry.at, stamp, team, "We responded to your request")
    if a == "resolution plan met":
        est = d.get("estimate")
        text = ""
        if isinstance(est, str):
            text = "Estimated resolution: " + datetime.fromisoformat(est).astimezone(tz).strftime("%a %b %-d, %H:%M")
        return Entry(entry.at, stamp, team, "Resolution plan ready", text)
    if a in ("client reply",):  # written before portal replies joined the conversation (now messages)
        return Entry(
            entry.at,
            stamp,
            str(d.get("contact") or entry.actor.removesuffix(" (portal)")),
            "Reply",
            str(d.get("text") or ""),
            "reply",
        )
    if a in ("public reply", "reply sent", "update sent"):
        return Entry(entry.at, stamp, team, "Reply", str(d.get("text") or d.get("body") or ""), "reply")
    if a == "recording attached":
        return Entry(entry.at, stamp, "You", "Voicemail left")
    if a == "attachment added":
        return Entry(entry.at, stamp, "You", f"File attached: {d.get('filename')}")
    if a == "merged":
        return Entry(entry.at, stamp, team, f"Combined with ticket #{d.get('into')}: we carry on there")
    if a == "merged in":
        return Entry(entry.at, stamp, team, "A related request was combined into this ticket")
    if a == "exceptional event":
        secs = d.get("extension_seconds")
        hours = f"{int(secs) // 3600} hours" if isinstance(secs, int) else "a while"
        return Entry(entry.at, stamp, team, f"Response times extended by {hours} during an exceptional event")
    return None


CHANNEL_TEXT = {"email": "by email", "portal": "in the portal", "sms": "by text message"}


def _message_entry(m: TicketMessage, tz: tzinfo) -> Entry | None:
    """A conversation message as the client sees it: theirs (not automatic ones), our replies, notices sent."""
    stamp = m.created_at.astimezone(tz).strftime("%a %b %-d, %H:%M")
    how = CHANNEL_TEXT.get(m.channel, m.channel)
    if m.direction == "in":
        if m.automatic:
            return None
        who = m.author.removesuffix(" (portal)") if m.author else "You"
        return Entry(m.created_at, stamp, who, f"Message {how}", m.body or "", "reply")
    if m.state in ("suppressed", "failed"):
        return None  # never reached the client
    if m.event == "reply":
        return Entry(m.created_at, stamp, "Support team", f"Reply {how}", m.body or "", "reply")
    return Entry(m.created_at, stamp, "Support team", f"Update sent {how}: {m.subject}", m.body or "")


def public_timeline(
    ticket: Ticket, events: Iterable[CallEvent], tz: tzinfo, messages: Iterable[TicketMessage] = ()
) -> list[Entry]:
    """The ticket's history as the client may see it, oldest first (``messages``: its conversation)."""
    messages = list(messages)
    entries: list[Entry] = [e for e in (_message_entry(m, tz) for m in messages) if e is not None]
    # An emailed ticket's details are its first message (a follow-up's repeat the message): shown once.
    told = [m.body.strip() for m in messages if m.direction == "in" and m.body and m.body.strip()]
    for e in events:
        if e.event == "incoming":
            entries.append(
                Entry(e.at, e.at.astimezone(tz).strftime("%a %b %-d, %H:%M"), "You", "Call to the support line")
            )
    for a in ticket.audit:
        item = _describe(a, ticket, tz)
        if item is not None:
            entries.append(item)
        if (
            a.action == "transcribed"
            and ticket.transcription_state == TranscriptionState.DONE.value
            and ticket.transcript
        ):
            entries.append(
                Entry(
                    a.at,
                    a.at.astimezone(tz).strftime("%a %b %-d, %H:%M"),
                    "You",
                    "Your voicemail, transcribed",
                    ticket.transcript,
                    "voicemail",
                )
            )
    if (
        ticket.description
        and ticket.source in ("portal", "email")
        and not any(body in ticket.description for body in told)
    ):
        first = entries[0].at if entries else ticket.opened_at
        entries.append(
            Entry(
                first,
                ticket.opened_at.astimezone(tz).strftime("%a %b %-d, %H:%M"),
                "You",
                "Details",
                ticket.description,
                "reply",
            )
        )
    first = {"Ticket received": 0, "Details": 1}
    return sorted(entries, key=lambda e: (e.at, next((v for k, v in first.items() if e.what.startswith(k)), 2)))
