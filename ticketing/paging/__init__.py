"""P1 paging, persisted: escalations, pages and acknowledgements; every change audited on the ticket.

One module per concern: ``states`` (states, channels and what a delivery report means; pure),
``texts`` (what pages say; pure), ``rules`` (when a step is due, whom it pages, repeat or
exhausted; pure), ``escalation`` (steps, rounds, cycles, the fallback, "nobody reached", as
stored), ``delivery`` (send outcomes, retries, delivery reports), ``acknowledgement``,
``follow_ups``, ``joined`` (repeat calls) and ``incidents`` (one person's P1s). The names are
handed on here, so callers write ``paging.acknowledge(...)`` whichever module holds it. They are imported on first use, so
that importing the pure modules alone (``texts``, ``states``, ``rules``) loads no database library.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ticketing.paging.acknowledgement import Acknowledgement, acknowledge, paged_tickets_for
    from ticketing.paging.delivery import (
        cancel_page,
        claimable_pages,
        mark_reached,
        page_by_id,
        provider_failing,
        reclaim,
        record_answer,
        record_delivery,
        record_sent,
        retry_due,
        stale_claims,
        still_claimed,
    )
    from ticketing.paging.escalation import (
        Claim,
        audit,
        cancel_claims,
        claim_step,
        due_steps,
        escalate_now,
        escalation_of,
        finish_cycle,
        hurry,
        lock_ticket,
        oncall_from,
        page_again,
        positions_of,
        start_escalation,
        step_unreachable,
        stop_if_not_pageable,
        unstarted_pages,
    )
    from ticketing.paging.follow_ups import add_follow_up, claimed_follow_up, follow_up_targets
    from ticketing.paging.incidents import Incident, incidents_for
    from ticketing.paging.joined import (
        ANOTHER_CALL_QUIET,
        join_escalation,
        joined_from,
        joined_to,
        open_escalation_to_join,
    )
    from ticketing.paging.rules import EARLY_TOLERANCE, NextPage, next_page
    from ticketing.paging.states import (
        ACCEPTED,
        ACKNOWLEDGEABLE,
        ACKNOWLEDGED,
        ACTOR,
        BY_MACHINE,
        BY_PERSON,
        CALL,
        CANCELLED,
        CLAIMED,
        DELIVERED,
        EMAIL,
        EXHAUSTED,
        FAILED,
        FOLLOW_UP,
        NOT_ANSWERED,
        NOT_DELIVERED,
        NUMBERS_FOLLOW_UP,
        PAGE_CHANNELS,
        PAGING,
        PHONE_CHANNELS,
        PROVIDER_FAILED,
        RETRYING,
        SENT,
        SMS,
        STOPPED,
        UNDECIDED,
        UNREACHABLE,
        Delivery,
        another_call_ticket,
        delivery_of,
        emails_sent,
        is_another_call,
        is_numbers_follow_up,
        page_delivered,
        page_failed,
    )
    from ticketing.paging.texts import (
        LANGUAGE_NAMES,
        SMS_LIMIT,
        TRANSCRIPT_SMS_LIMIT,
        PageContent,
        another_call_sms,
        content_of,
        follow_up_sms,
        numbers_sms,
        page_email_text,
        page_sms,
        parse_ack,
        shorten,
    )

__all__ = [
    "ACCEPTED",
    "ACKNOWLEDGEABLE",
    "ACKNOWLEDGED",
    "ACTOR",
    "ANOTHER_CALL_QUIET",
    "BY_MACHINE",
    "BY_PERSON",
    "CALL",
    "CANCELLED",
    "CLAIMED",
    "DELIVERED",
    "EARLY_TOLERANCE",
    "EMAIL",
    "EXHAUSTED",
    "FAILED",
    "FOLLOW_UP",
    "LANGUAGE_NAMES",
    "NOT_ANSWERED",
    "NOT_DELIVERED",
    "NUMBERS_FOLLOW_UP",
    "PAGE_CHANNELS",
    "PAGING",
    "PHONE_CHANNELS",
    "PROVIDER_FAILED",
    "RETRYING",
    "SENT",
    "SMS",
    "SMS_LIMIT",
    "STOPPED",
    "TRANSCRIPT_SMS_LIMIT",
    "UNDECIDED",
    "UNREACHABLE",
    "acknowledge",
    "Acknowledgement",
    "add_follow_up",
    "another_call_sms",
    "another_call_ticket",
    "audit",
    "cancel_claims",
    "cancel_page",
    "Claim",
    "claim_step",
    "claimable_pages",
    "claimed_follow_up",
    "content_of",
    "Delivery",
    "delivery_of",
    "due_steps",
    "emails_sent",
    "escalate_now",
    "escalation_of",
    "finish_cycle",
    "follow_up_sms",
    "follow_up_targets",
    "hurry",
    "Incident",
    "incidents_for",
    "is_another_call",
    "is_numbers_follow_up",
    "join_escalation",
    "joined_from",
    "joined_to",
    "lock_ticket",
    "mark_reached",
    "next_page",
    "NextPage",
    "numbers_sms",
    "oncall_from",
    "open_escalation_to_join",
    "page_again",
    "page_by_id",
    "page_delivered",
    "page_email_text",
    "page_failed",
    "page_sms",
    "PageContent",
    "paged_tickets_for",
    "parse_ack",
    "positions_of",
    "provider_failing",
    "reclaim",
    "record_answer",
    "record_delivery",
    "record_sent",
    "retry_due",
    "shorten",
    "stale_claims",
    "start_escalation",
    "step_unreachable",
    "still_claimed",
    "stop_if_not_pageable",
    "unstarted_pages",
]

# Searched in this order; the pure modules first, so a name of theirs loads nothing else.
_MODULES = (
    "states",
    "texts",
    "rules",
    "escalation",
    "delivery",
    "follow_ups",
    "joined",
    "acknowledgement",
    "incidents",
)


def __getattr__(name: str) -> object:
    """A name of ``__all__``, from the submodule that defines it (imported now if it was not yet)."""
    if name in __all__:
        for module in _MODULES:
            found = vars(import_module(f"{__name__}.{module}"))
            if name in found:
                globals()[name] = found[name]
                return found[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
