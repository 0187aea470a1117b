"""The PagerDuty Events API v2 request and answer shapes: checking an event, and the bodies we answer with.

Pure: no Flask, no database. Only what supportline uses is read (``links``, ``images`` and the other
optional fields are accepted and ignored); the checks and messages follow the Events API's own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_BODY_BYTES = 512 * 1024  # the Events API's limit on one event
MAX_DEDUP_KEY = 255
MAX_SUMMARY = 1024
MAX_SOURCE = 255
MAX_DETAILS_CHARS = 8000  # custom details kept on the ticket; the rest is cut
ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = ("critical", "error", "warning", "info")
INVALID = "Event object is invalid"
UNKNOWN_KEY = "Invalid routing key"


@dataclass(frozen=True)
class Event:
    """One checked event."""

    routing_key: str
    action: str
    dedup_key: str | None
    summary: str = ""
    source: str = ""
    severity: str = ""
    details: str = ""


def parse(body: Any) -> tuple[Event | None, list[str]]:
    """The event in a decoded JSON body, or the Events API's list of what is wrong with it."""
    if not isinstance(body, dict):
        return None, ["Event object must be a JSON object"]
    if not _valid_unicode(body):
        # JSON's \ud800 escapes decode to lone surrogates, which no database or mail can store: refused whole.
        return None, ["Event contains text that is not valid Unicode (an unpaired surrogate escape)"]
    errors: list[str] = []
    key = body.get("routing_key")
    if not isinstance(key, str) or not key:
        errors.append("'routing_key' is missing or blank")
        key = ""
    else:
        if len(key) != 32:
            errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
        if not key.isascii() or not key.isalnum():
            errors.append("'routing_key' cannot contain non-alphanumeric characters.")
    action = body.get("event_action")
    if action not in ACTIONS:
        errors.append("'event_action' is missing or invalid (expected trigger, acknowledge or resolve)")
    dedup = body.get("dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or not dedup.strip()):
        errors.append("'dedup_key' must be a non-empty string")
        dedup = None
    elif isinstance(dedup, str) and len(dedup) > MAX_DEDUP_KEY:
        errors.append(f"'dedup_key' is too long (at most {MAX_DEDUP_KEY} characters)")
    if action in ("acknowledge", "resolve") and dedup is None:
        errors.append("'dedup_key' is required for acknowledge and resolve events")
    summary = source = severity = details = ""
    if action == "trigger":
        payload = body.get("payload")
        if not isinstance(payload, dict):
            errors.append("'payload' is missing or not an object")
        else:
            summary = _text(payload, "summary", MAX_SUMMARY, errors)
            source = _text(payload, "source", MAX_SOURCE, errors)
            severity = payload.get("severity") if isinstance(payload.get("severity"), str) else ""
            if severity not in SEVERITIES:
                errors.append("'payload.severity' is missing or invalid (expected critical, error, warning or info)")
            details = _details(payload.get("custom_details"))
    if errors:
        return None, errors
    return Event(str(key), str(action), dedup, summary, source, severity, details), []


def _valid_unicode(body: Any) -> bool:
    """Whether every key and string in the decoded body encodes as UTF-8 (walked without recursion)."""
    stack = [body]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return True


def _text(payload: dict[str, Any], name: str, limit: int, errors: list[str]) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value.strip():
        errors.append(f"'payload.{name}' is missing or blank")
        return ""
    return value[:limit]  # the Events API truncates a long summary rather than refusing it


def _details(value: Any) -> str:
    """Custom details as indented JSON text, cut to a size a ticket can show."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_DETAILS_CHARS else text[:MAX_DETAILS_CHARS] + "\n... (cut)"


def accepted(dedup_key: str) -> dict[str, str]:
    """The 202 body."""
    return {"status": "success", "message": "Event processed", "dedup_key": dedup_key}


def invalid(errors: list[str], message: str = INVALID) -> dict[str, Any]:
    """The 400 body."""
    return {"status": "invalid event", "message": message, "errors": errors}
