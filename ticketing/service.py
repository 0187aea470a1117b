"""The ticket operations under their old names, for callers not yet moved to the module that owns each.

New code imports the owner: ``ticketing.lifecycle`` (open a ticket, priority, status, milestones met, SLA
pause and resume, assign, notes, merge), ``ticketing.audit`` (the audit log), ``ticketing.milestones`` (due
times and states), ``ticketing.queue`` (the open queue, search, and what "breached" means),
``ticketing.events`` (exceptional events) and ``ticketing.voicemail`` (retrying a transcription).
"""

from __future__ import annotations

from ticketing.audit import audit
from ticketing.events import (
    MAX_EXTENSION,
    active_exceptional_events,
    apply_exceptional_events,
    declare_exceptional_event,
    end_exceptional_event,
)
from ticketing.lifecycle import (
    NUMBER_BASE,
    add_note,
    assign,
    call_events,
    change_priority,
    correct_transcript,
    find_caller,
    get_ticket,
    has_email_recipient,
    mail_address,
    meet_milestone,
    merge_refusal,
    merge_ticket,
    notify_client,
    open_ticket,
    outbox_failed,
    pause_sla,
    resume_sla,
    set_status,
    ticket_number_for,
)
from ticketing.milestones import milestone_states, next_milestone, pauses_of, recompute_milestones
from ticketing.queue import QueueFilter, QueuePosition, breaching, in_language, open_queue

__all__ = [
    "MAX_EXTENSION",
    "NUMBER_BASE",
    "QueueFilter",
    "QueuePosition",
    "active_exceptional_events",
    "add_note",
    "apply_exceptional_events",
    "assign",
    "audit",
    "breaching",
    "call_events",
    "change_priority",
    "correct_transcript",
    "declare_exceptional_event",
    "end_exceptional_event",
    "find_caller",
    "get_ticket",
    "has_email_recipient",
    "in_language",
    "mail_address",
    "meet_milestone",
    "merge_refusal",
    "merge_ticket",
    "milestone_states",
    "next_milestone",
    "notify_client",
    "open_ticket",
    "open_queue",
    "outbox_failed",
    "pause_sla",
    "pauses_of",
    "recompute_milestones",
    "resume_sla",
    "set_status",
    "ticket_number_for",
]
