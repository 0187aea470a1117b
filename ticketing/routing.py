"""Call-routing decisions of the support line (pure: no Twilio, no clock)."""

from __future__ import annotations

import enum

from ticketing.priority import DEFAULT_PRIORITY, Priority


class Route(str, enum.Enum):
    """Where a caller's menu choice leads."""

    COORDINATOR = "coordinator"  # ring the service coordinator(s)
    VOICEMAIL = "voicemail"  # leave a message, normal priority
    CRITICAL = "critical"  # press 2: P1 - Critical voicemail, pages the on-call team
    STATUS = "status"  # press 3: hear a ticket's status
    REPEAT = "repeat"  # not an option: play the menu again


MAX_MENU_ATTEMPTS = 3
MAX_STATUS_ATTEMPTS = 3


def menu_route(digits: str | None, *, business_hours: bool, attempt: int = 1) -> Route:
    """The route for the key pressed at the main menu (None or '' when the caller stayed on the line)."""
    key = (digits or "").strip()
    if key == "2":
        return Route.CRITICAL
    if key == "3":
        return Route.STATUS
    if key in ("", "1"):
        return Route.COORDINATOR if business_hours else Route.VOICEMAIL
    # After repeated wrong keys, stop looping and take a message.
    return Route.REPEAT if attempt < MAX_MENU_ATTEMPTS else (Route.COORDINATOR if business_hours else Route.VOICEMAIL)


def coordinator_took_call(dial_status: str | None, accepted: bool) -> bool:
    """True only when the coordinator's leg completed *and* a person pressed 1.

    A mobile's own voicemail answering reports 'completed' too, so the screen's
    key press is the only proof a person took the call.
    """
    return (dial_status or "") in ("completed", "answered") and accepted


def voicemail_priority(critical: bool) -> Priority:
    """P1 - Critical when the caller pressed 2, otherwise the untriaged default (P3 - Medium)."""
    return Priority.P1 if critical else DEFAULT_PRIORITY
