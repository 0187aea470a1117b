"""How a ticket says that part of its voicemail may be missing from the transcript, or that a number in it
may be misheard (pure code)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ticketing.phone import HEARD, callback_of, national_digits


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
        unsure = ("".join(c for c in u if c.isdigit()) for u, _ in self.unsure)
        return any(len(d) >= 7 and digits.endswith(d) for d in unsure)

    def _placed(self, number: str) -> str:
        span = self.span(number)
        return f"{number} at {span}" if span else number


def numbers_in(text: str | None) -> tuple[str, ...]:
    """The numbers a transcript writes, in order ("805 555 0188", "400127"), of three digits or more."""
    return tuple(m.group(0) for m in _numbers(text))


def check_numbers(
    shown: str | None,
    other: str | None = None,
    said_at: Mapping[str, Sequence[float]] | None = None,
    callback: str | None = None,
) -> NumberCheck | None:
    """What to tell the coordinator about the numbers in ``shown`` (None: nothing to check).

    ``other`` is another reading of the same recording, where there is one. Where it heard a number
    the shown reading lacks, every shown number it does not agree with is in doubt; where it heard no
    number (it lost one rather than heard another) it casts no doubt. ``said_at`` maps the shown
    reading's numbers to where they were said (start, end seconds), where known. ``callback`` is the
    number the ticket calls back on (the caller ID, or the one the caller confirmed or keyed): a phone
    number in the transcript that is not that one is named, so that it is a hint beside it and never
    silently in its place.
    """
    found = list(_numbers(shown))
    mine = [m.group(0) for m in found]
    theirs = numbers_in(other)
    heard = tuple(dict.fromkeys(n for n in theirs if not any(_agree(n, m) for m in mine)))
    unsure: dict[str, str] = {}
    split = _split_runs(shown or "")
    inside = {match.start() for run in split for match in run[1]}
    for text, _pieces in split:
        unsure[text] = "split by words: it may be one number or several"
    callback_digits = national_digits(callback)
    for match in found:
        if match.start() in inside:
            continue
        number, digits = match.group(0), match.group(0).replace(" ", "")
        if heard and not any(_agree(number, n) for n in theirs):
            unsure[number] = f"another reading heard {', '.join(heard)}"
        elif len(digits) in ODD_LENGTHS or len(digits) > MAX_PHONE_DIGITS or (len(digits) == 11 and digits[0] != "1"):
            unsure[number] = f"{len(digits)} digits: no phone number has that many"
        elif _STRAY.match(shown or "", match.end()):
            unsure[number] = "stray digits follow it"
        elif callback_digits and _phone_shaped(digits) and not _agree(national_digits(digits), callback_digits):
            unsure[number] = f"not the callback number {_grouped(callback_digits)}"
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


# Numbers a word or a comma apart ("800 and 5500 and 50 50188", "805 5550, 188"): the decoder may have heard one number as several, or
# several as one; the coordinator listens before dialling any of them.
_FILLER = re.compile(r"^\s*,?\s*(?:(?:and|an|a|uh|um|er|oh|then)\s*,?\s*)?$", re.IGNORECASE)
# Words before a number that say what it is: such a number beside another is not a split one.
_NAMED = re.compile(r"(?:ticket|extension|ext|invoice|order|case|room|suite|number)\W*$", re.IGNORECASE)


def _split_runs(text: str) -> list[tuple[str, list[re.Match[str]]]]:
    """Runs of numbers a filler word apart ("800 and 5500 and 50 50188"), as written and their numbers, of
    seven digits or more together, unless every number in the run is a whole phone number on its own."""
    runs: list[list[re.Match[str]]] = []
    for match in _NUMBER.finditer(text):
        if runs and _FILLER.match(text[runs[-1][-1].end() : match.start()]):
            runs[-1].append(match)
        else:
            runs.append([match])
    out = []
    for run in runs:
        digits = [m.group(0).replace(" ", "") for m in run]
        if len(run) < 2 or sum(map(len, digits)) < 7 or all(_phone_shaped(d) for d in digits):
            continue
        if _NAMED.search(text[: run[0].start()]):
            continue
        out.append((text[run[0].start() : run[-1].end()], run))
    return out


def _phone_shaped(digits: str) -> bool:
    """As long as a North American number: 7 or 10 digits, or 11 after a country code 1."""
    return len(digits) in (7, 10) or (len(digits) == 11 and digits[0] == "1")


def _grouped(digits: str) -> str:
    """'805 555 0142': a 10-digit number in the groups a transcript writes."""
    return f"{digits[:3]} {digits[3:6]} {digits[6:]}" if len(digits) == 10 else digits


def _numbers(text: str | None) -> Iterable[re.Match[str]]:
    return (m for m in _NUMBER.finditer(text or "") if len(m.group(0).replace(" ", "")) >= MIN_DIGITS)


def ticket_number_check(
    transcript: str | None,
    shown_pass: str | None,
    passes: Iterable[Mapping[str, Any]] | None,
    callback: str | None = None,
) -> NumberCheck | None:
    """The number check for a ticket's transcript: its shown reading, against the other English reading
    where the recording has been read twice, and against the number the ticket calls back on.

    Only while the transcript is a reading's own text: once a coordinator corrects it by hand, their
    text is what the ticket says.
    """
    readings = {p.get("pass"): p for p in passes or () if p.get("pass") in READINGS}
    shown = readings.get(shown_pass)
    if shown is None or (shown.get("text") or "").strip() != (transcript or "").strip():
        return None
    other = next((p for name, p in readings.items() if name != shown_pass), None)
    return check_numbers(
        transcript, other.get("text") if other is not None else None, shown.get("numbers_at"), callback
    )


def ticket_number_note(
    transcript: str | None,
    shown_pass: str | None,
    passes: Iterable[Mapping[str, Any]] | None,
    callback: str | None = None,
) -> str:
    """``ticket_number_check``'s note, or '' where there is nothing to check."""
    check = ticket_number_check(transcript, shown_pass, passes, callback)
    return check.note if check is not None else ""


def numbers_of(ticket: Any) -> NumberCheck | None:
    """The number check of a ticket (read, never written): its transcript against its other reading and the
    number it is called back on first. The one place the console, the API and the pages take it from."""
    number, origin = callback_of(
        getattr(ticket, "callback_number", None),
        getattr(ticket, "callback_origin", None),
        getattr(ticket, "caller_number", None),
    )
    return ticket_number_check(
        ticket.transcript,
        getattr(ticket, "transcript_pass", None),
        getattr(ticket, "transcript_passes", None),
        number if origin != HEARD else None,
    )


def cleared_because(before: str, after: NumberCheck | None, shown_pass: str | None) -> str:
    """Why the numbers to check ``before`` ("check 805 150 50142 (11 digits ...)") are no longer what the
    ticket says (``after``): the history says so rather than dropping a warning without a word."""
    if not before or (after is not None and after.note == before):
        return ""
    reading = "the second reading" if shown_pass == READINGS[1] else "the reading now shown"
    if after is None:
        return f"{reading} writes every number whole, and the readings and the callback number agree"
    return f"{reading} named other numbers to check"


READINGS = ("first", "numbers")  # the two English readings of a voicemail a ticket keeps


def _agree(a: str, b: str) -> bool:
    """One number's digits run inside the other's, or it is the other with one digit dropped."""
    a, b = sorted((a.replace(" ", ""), b.replace(" ", "")), key=len)
    if a in b:
        return True
    rest = iter(b)
    return len(b) - len(a) == 1 and all(digit in rest for digit in a)
