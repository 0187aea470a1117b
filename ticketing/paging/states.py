"""Paging's states and words: escalation and page states, channels, what a delivery report or an answer means.

Pure: no framework, no clock. A page's ``delivery_status`` and ``answered_by`` hold the words below,
never a provider's; ``providers.twilio_status`` translates Twilio's into them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ticketing.models import Escalation, Page

ACTOR = "paging"
# Escalation states.
PAGING = "paging"  # steps still to come (or, after the fallback, the check whether anyone was reached)
EXHAUSTED = "exhausted"  # every round and the fallback paged and someone reached (or the horizon passed)
ACKNOWLEDGED = "acknowledged"
STOPPED = "stopped"  # the ticket was resolved, closed or re-triaged below P1
ACKNOWLEDGEABLE = (PAGING, EXHAUSTED)
# Page states and channels.
CLAIMED = "claimed"
SENT = "sent"
FAILED = "failed"  # the person cannot be reached on this channel (invalid number, carrier undelivered)
RETRYING = "retrying"  # the provider failed (5xx, 429, timeout, unreachable): tried again at next_try_at
CANCELLED = "cancelled"
SMS = "sms"
CALL = "call"
EMAIL = "email"
FOLLOW_UP = "follow-up"
PHONE_CHANNELS = (SMS, CALL)
PAGE_CHANNELS = (SMS, CALL, EMAIL)

# What a delivery report says about a page, in paging's words.
DELIVERED = "delivered"  # the phone got the SMS, or the call was answered (by anyone)
NOT_ANSWERED = "not answered"  # the call rang out, was busy or was cancelled: nothing said about the number
UNREACHABLE = "unreachable"  # not delivered, and the provider says the person's number is why
PROVIDER_FAILED = "provider failed"  # not delivered because the carrier or the provider failed: send again
NOT_DELIVERED = (UNREACHABLE, PROVIDER_FAILED)
ACCEPTED = "accepted"  # an email page the mail server took (not proof that anyone read it)
# How a page call was answered (answering-machine detection); a machine is never an acknowledgement.
BY_PERSON = "answered by a person"
BY_MACHINE = "answered by a machine"
UNDECIDED = "answered, undecided"  # the detector could not tell: treated as a person


@dataclass(frozen=True)
class Delivery:
    """How many of an escalation's pages reached a phone or a mailbox, of how many tried."""

    delivered: int
    total: int


def page_delivered(page: Page) -> bool:
    """True when the provider reported the page delivered to the phone (SMS delivered, call answered).

    An email page accepted by the mail server is a second way out, not proof that anyone was
    reached: it never ends "nobody reached" on its own (see ``emails_sent``).
    """
    if page.channel not in PHONE_CHANNELS:
        return False
    return page.delivery_status == DELIVERED or bool(page.answered_by)


def delivery_of(escalation: Escalation) -> Delivery:
    """The "N of M pages delivered": SMS and call pages tried (not those an ack cancelled unsent), and how many
    the provider reported delivered."""
    pages = [p for p in escalation.pages if p.channel in PHONE_CHANNELS and (p.state != CANCELLED or p.tries)]
    return Delivery(delivered=sum(1 for p in pages if page_delivered(p)), total=len(pages))


def emails_sent(escalation: Escalation) -> int:
    """Email pages the mail server accepted."""
    return sum(1 for p in escalation.pages if p.channel == EMAIL and p.state == SENT)


def page_failed(page: Page) -> bool:
    """True when the provider said the person's number cannot be reached (when sending, or in a status callback)."""
    return page.state == FAILED


NUMBERS_FOLLOW_UP = "numbers"  # the follow-up SMS naming numbers to check against the recording


def is_numbers_follow_up(page: Page) -> bool:
    """True for the follow-up SMS that names the transcript's numbers to check."""
    return page.channel == FOLLOW_UP and f":{NUMBERS_FOLLOW_UP}:" in page.key


def is_another_call(page: Page) -> bool:
    """True for the follow-up SMS that tells the people paged about a repeat call."""
    return page.channel == FOLLOW_UP and ":call:" in page.key


def another_call_ticket(page: Page) -> int | None:
    """The ticket number of the repeat call a follow-up SMS is about."""
    try:
        return int(page.key.split(":call:", 1)[1].split(":", 1)[0])
    except (IndexError, ValueError):
        return None
