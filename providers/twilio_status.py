"""Twilio's words for what became of a page, in paging's words: delivery statuses, AnsweredBy, error codes.

The domain never sees Twilio's vocabulary: the page webhooks translate a status callback here
and hand ``ticketing.paging`` "delivered", "unreachable", "answered by a person" and the like.
https://www.twilio.com/docs/messaging/guides/track-outbound-message-status
https://www.twilio.com/docs/voice/api/call-resource#call-status-values
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ticketing.paging.states import (
    BY_MACHINE,
    BY_PERSON,
    DELIVERED,
    NOT_ANSWERED,
    PROVIDER_FAILED,
    UNDECIDED,
    UNREACHABLE,
)

Callback = Literal["sms", "call"]

# Twilio error codes that say the *number* cannot be reached (invalid, unroutable, not a mobile,
# opted out, carrier reports the handset unreachable or a landline): another try of the same
# request cannot succeed, so paging moves on to the next person. Every other failure (5xx, 429,
# a timeout, a refused connection, a DNS failure, a code not listed) says nothing about the
# number: it is a provider failure, retried, and never hurries an escalation.
# https://www.twilio.com/docs/api/errors/<code>
PERSON_UNREACHABLE_CODES = frozenset(
    {
        13223,  # Dial: invalid phone number format
        13224,  # Dial: Twilio does not support calling this number or the number is invalid
        21211,  # invalid 'To' phone number
        21214,  # 'To' phone number cannot be reached
        21217,  # phone number does not appear to be valid
        21401,  # invalid phone number
        21407,  # this phone number type does not support SMS
        21610,  # the recipient replied STOP (unsubscribed)
        21612,  # the 'To' number is not currently reachable via SMS
        21614,  # 'To' number is not a valid mobile number
        30003,  # unreachable destination handset
        30004,  # message blocked (by the recipient or their carrier)
        30005,  # unknown destination handset
        30006,  # landline or unreachable carrier
    }
)

# MessageStatus and CallStatus values that say the phone got the SMS, or someone (or something) answered.
_DELIVERED = {"sms": frozenset({"delivered", "read"}), "call": frozenset({"in-progress", "completed", "answered"})}
# ... that say it did not arrive; the ErrorCode says whose fault.
_NOT_DELIVERED = {"sms": frozenset({"failed", "undelivered"}), "call": frozenset({"failed"})}
# A call that rang out: nothing is said about the number, and the escalation keeps its timing.
_NOT_ANSWERED = frozenset({"busy", "no-answer", "canceled"})
# AnsweredBy values of answering-machine detection that are not a person.
_MACHINE = frozenset({"machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax"})
# DialCallStatus values of a connected call that the other side picked up.
_DIAL_ANSWERED = frozenset({"completed", "answered"})


def person_unreachable(code: int | str | None) -> bool:
    """True when a Twilio error code (from a REST error or a status callback's ErrorCode) is about the number."""
    try:
        return int(str(code)) in PERSON_UNREACHABLE_CODES
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True)
class DeliveryReport:
    """One status callback of a page: paging's words for it, and Twilio's own for the record."""

    outcome: str | None  # DELIVERED, NOT_ANSWERED, UNREACHABLE, PROVIDER_FAILED; None: no news yet (queued, ringing)
    answer: str | None  # BY_PERSON, BY_MACHINE, UNDECIDED; None when no detection ran
    status: str
    error_code: str | None

    @property
    def record(self) -> dict[str, str | None]:
        """Twilio's words, as the audit keeps them."""
        return {"status": self.status, "error_code": self.error_code}

    @property
    def note(self) -> str:
        """The page's error when a delivery failed."""
        return f"delivery {self.status} (Twilio error {self.error_code})"


def delivery_report(callback: Callback, status: str, error_code: str | None, answered_by: str | None) -> DeliveryReport:
    """A page's status callback (MessageStatus or CallStatus, ErrorCode, AnsweredBy) in paging's words."""
    status = status.strip().lower()
    code = (error_code or "").strip() or None
    outcome: str | None = None
    if status in _DELIVERED[callback]:
        outcome = DELIVERED
    elif status in _NOT_DELIVERED[callback]:
        # No error code, or one about the number: the person's; any other code: the carrier's or Twilio's.
        outcome = UNREACHABLE if code is None or person_unreachable(code) else PROVIDER_FAILED
    elif callback == "call" and status in _NOT_ANSWERED:
        outcome = NOT_ANSWERED
    return DeliveryReport(outcome=outcome, answer=answer(answered_by), status=status, error_code=code)


def answer(answered_by: str | None) -> str | None:
    """AnsweredBy of answering-machine detection in paging's words; None when detection did not run."""
    value = (answered_by or "").strip()
    if not value:
        return None
    if value in _MACHINE:
        return BY_MACHINE
    return BY_PERSON if value == "human" else UNDECIDED


def dial_answered(dial_call_status: str) -> bool:
    """True when the caller picked up the call the engineer was connected to (DialCallStatus)."""
    return dial_call_status in _DIAL_ANSWERED
