"""Logs never carry full phone numbers, tokens or credentials."""

from __future__ import annotations

import json
import logging

import pytest

from runtime.logs import JsonFormatter, RedactingFilter, redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call from +18055550142 ended", "call from ***0142 ended"),
        ("caller (805) 555-0142 pressed 2", "caller ***0142 pressed 2"),
        ("sms to 805.555.0142", "sms to ***0142"),
        ("token ffffffffffffffffffffffffffffffff used", "token *** used"),
        ("Authorization: Basic QUMxMjM6c2VjcmV0", "Authorization: Basic ***"),
        ("ticket 400127 is P1", "ticket 400127 is P1"),
    ],
)
def test_redact_masks_numbers_tokens_and_credentials(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_json_lines_are_redacted_too() -> None:
    record = logging.LogRecord(
        "x", logging.WARNING, __file__, 1, "rate limit: %s calls from %s", (12, "+18055550142"), None
    )
    RedactingFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "rate limit: 12 calls from ***0142" and line["level"] == "WARNING"
