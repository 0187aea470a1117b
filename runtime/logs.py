"""Logging set-up for every process: text or JSON lines, with phone numbers and secrets masked."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

# E.164 and 10/11-digit North American numbers; 32-hex tokens (Twilio auth tokens); Basic/Bearer credentials.
_PHONE = re.compile(r"(?<![\w*])\+?1?[\s.-]?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?(\d{4})(?!\w)")
_TOKEN = re.compile(r"\b[0-9a-fA-F]{32}\b")
_AUTH = re.compile(r"(Basic|Bearer)\s+[A-Za-z0-9+/=._-]+")


def redact(text: str) -> str:
    """Mask phone numbers (all but the last four digits), tokens and credentials."""
    text = _AUTH.sub(r"\1 ***", text)
    text = _TOKEN.sub("***", text)
    return _PHONE.sub(lambda m: "***" + m.group(1), text)


class RedactingFilter(logging.Filter):
    """Applies ``redact`` to every record's final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and exception)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry)


def configure(log_format: str = "text", level: int = logging.INFO) -> None:
    """Route the root logger through the redacting filter in the chosen format."""
    handler = logging.StreamHandler()
    handler.addFilter(RedactingFilter())
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
