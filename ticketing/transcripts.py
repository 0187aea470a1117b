"""How a ticket says that part of its voicemail may be missing from the transcript (pure code)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def format_span(start: float, end: float) -> str:
    """'0:08–0:16': whole seconds, the start rounded down and the end up, so the span holds the gap."""
    return f"{_clock(math.floor(start))}–{_clock(math.ceil(end))}"


def missing_note(spans: Iterable[Sequence[float]] | None) -> str:
    """'part of the message may be missing: listen to 0:08–0:16' ('' when nothing is missing)."""
    listed = ", ".join(format_span(float(s[0]), float(s[1])) for s in spans or ())
    return f"part of the message may be missing: listen to {listed}" if listed else ""


def _clock(seconds: int) -> str:
    return f"{seconds // 60}:{seconds % 60:02d}"
