"""How a ticket says that part of its voicemail may be missing from the transcript, or that a number in it
may be misheard (pure code)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


def format_span(start: float, end: float) -> str:
    """'0:08–0:16': whole seconds, the start rounded down and the end up, so the span holds the gap."""
    return f"{_clock(math.floor(start))}–{_clock(math.ceil(end))}"


def missing_note(spans: Iterable[Sequence[float]] | None) -> str:
    """'part of the message may be missing: listen to 0:08–0:16' ('' when nothing is missing)."""
    listed = ", ".join(format_span(float(s[0]), float(s[1])) for s in spans or ())
    return f"part of the message may be missing: listen to {listed}" if listed else ""


def _clock(seconds: int) -> str:
    return f"{seconds // 60}:{seconds % 60:02d}"


# --- numbers two readings disagree on --------------------------------------------------------------

# A number as the transcript writes it: digit groups one space apart ("805 555 0188", "400127"), three
# digits or more ("2" or "10" is rarely what a caller needs to be called back on).
_NUMBER = re.compile(r"(?<![\d.,])\d+(?: \d+)*(?![\d])")
MIN_DIGITS = 3


@dataclass(frozen=True)
class NumberCheck:
    """Numbers in a transcript that the coordinator should check against the recording before calling.

    ``unsure`` pairs each such number with why: another reading of the same recording heard a number
    there that this one does not show, stray digits follow it (the rest of the number was misheard), or
    it has a number of digits no phone number has. ``heard`` are the other reading's numbers that agree
    with none of the transcript's. Two numbers agree when one's digits run inside the other's, or one
    is the other with a digit dropped: a reading that lost the area code ("555 0188" against "805 555
    0188") or a digit ("805550142") casts no doubt on the one that kept it.
    """

    unsure: tuple[tuple[str, str], ...]
    heard: tuple[str, ...] = ()
    # Where each number of the transcript was said (the start and end of the stretch of the recording
    # it was read from), where the reading recorded it: the note says where to listen.
    said_at: tuple[tuple[str, float, float], ...] = ()

    def span(self, number: str) -> str:
        """'0:03–0:08': where ``number`` was said, or '' where that is not known."""
        at = next(((start, end) for n, start, end in self.said_at if n == number), None)
        return format_span(*at) if at is not None else ""

    @property
    def note(self) -> str:
        """'check 805 555 5018 (another reading heard 805 555 0188) against the recording'."""
        parts = []
        if self.unsure:
            by_reason: dict[str, list[str]] = {}
            for number, why in self.unsure:
                by_reason.setdefault(why, []).append(number)
            listed = "; ".join(
                f"{', '.join(self._placed(n) for n in numbers)} ({why})" for why, numbers in by_reason.items()
            )
            parts.append(f"check {listed} against the recording")
        orphans = [n for n in self.heard if not any(n in why for _, why in self.unsure)]
        if orphans:
            parts.append(f"another reading heard {', '.join(orphans)}, which the transcript does not show")
        return "; ".join(parts)

    def doubts(self, phone: str) -> bool:
        """True where ``phone`` (a callback number, "+18055555018") is one of the numbers in doubt: the
        hint writes a 7- or 10-digit number in E.164, so the number it came from ends it."""
        digits = "".join(c for c in phone if c.isdigit())
        return any(len(d) >= 7 and digits.endswith(d) for d in (u.replace(" ", "") for u, _ in self.unsure))

    def _placed(self, number: str) -> str:
        span = self.span(number)
        return f"{number} at {span}" if span else number


def numbers_in(text: str | None) -> tuple[str, ...]:
    """The numbers a transcript writes, in order ("805 555 0188", "400127"), of three digits or more."""
    return tuple(m.group(0) for m in _numbers(text))


def check_numbers(
    shown: str | None, other: str | None = None, said_at: Mapping[str, Sequence[float]] | None = None
) -> NumberCheck | None:
    """What to tell the coordinator about the numbers in ``shown`` (None: nothing to check).

    ``other`` is another reading of the same recording, where there is one. Where it heard a number
    the shown reading lacks, every shown number it does not agree with is in doubt; where it heard no
    number (it lost one rather than heard another) it casts no doubt. ``said_at`` maps the shown
    reading's numbers to where they were said (start, end seconds), where known.
    """
    found = list(_numbers(shown))
    mine = [m.group(0) for m in found]
    theirs = numbers_in(other)
    heard = tuple(dict.fromkeys(n for n in theirs if not any(_agree(n, m) for m in mine)))
    unsure: dict[str, str] = {}
    for match in found:
        number, digits = match.group(0), match.group(0).replace(" ", "")
        if heard and not any(_agree(number, n) for n in theirs):
            unsure[number] = f"another reading heard {', '.join(heard)}"
        elif len(digits) in ODD_LENGTHS or len(digits) > MAX_PHONE_DIGITS or (len(digits) == 11 and digits[0] != "1"):
            unsure[number] = f"{len(digits)} digits: no phone number has that many"
        elif _STRAY.match(shown or "", match.end()):
            unsure[number] = "stray digits follow it"
    if not unsure and not heard:
        return None
    spans = tuple((n, float(at[0]), float(at[1])) for n, at in (said_at or {}).items() if n in unsure)
    return NumberCheck(tuple(unsure.items()), heard, spans)


# Digit counts no phone number, ticket, extension or amount a caller gives has: between a local number
# (7) and a national one (10), or past a number with its country code (11, "1" first).
ODD_LENGTHS = frozenset({8, 9})
MAX_PHONE_DIGITS = 11
# Lone digits a word or two after a number ("805 5550 well 8 8"): the decoder lost the number's end.
_STRAY = re.compile(r"[\s,.\-]*(?:[^\W\d_]+[\s,.\-]+){0,2}\d(?:[\s,\-]+\d)+\b")


def _numbers(text: str | None) -> Iterable[re.Match[str]]:
    return (m for m in _NUMBER.finditer(text or "") if len(m.group(0).replace(" ", "")) >= MIN_DIGITS)


def ticket_number_check(
    transcript: str | None, shown_pass: str | None, passes: Iterable[Mapping[str, Any]] | None
) -> NumberCheck | None:
    """The number check for a ticket's transcript: its shown reading, against the other English reading
    where the recording has been read twice.

    Only while the transcript is a reading's own text: once a coordinator corrects it by hand, their
    text is what the ticket says.
    """
    readings = {p.get("pass"): p for p in passes or () if p.get("pass") in READINGS}
    shown = readings.get(shown_pass)
    if shown is None or (shown.get("text") or "").strip() != (transcript or "").strip():
        return None
    other = next((p for name, p in readings.items() if name != shown_pass), None)
    return check_numbers(transcript, other.get("text") if other is not None else None, shown.get("numbers_at"))


def ticket_number_note(
    transcript: str | None, shown_pass: str | None, passes: Iterable[Mapping[str, Any]] | None
) -> str:
    """``ticket_number_check``'s note, or '' where there is nothing to check."""
    check = ticket_number_check(transcript, shown_pass, passes)
    return check.note if check is not None else ""


READINGS = ("first", "numbers")  # the two English readings of a voicemail a ticket keeps


def _agree(a: str, b: str) -> bool:
    """One number's digits run inside the other's, or it is the other with one digit dropped."""
    a, b = sorted((a.replace(" ", ""), b.replace(" ", "")), key=len)
    if a in b:
        return True
    rest = iter(b)
    return len(b) - len(a) == 1 and all(digit in rest for digit in a)
