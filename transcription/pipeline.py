"""One voicemail through the engine: decode, recover speech it left out, write numbers as said."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ticketing.transcripts import numbers_in
from transcription.coverage import DEFAULT_COVERAGE, CoverageConfig, complete_transcript
from transcription.engine import Engine, Transcript
from transcription.numbers import digits_as_said, phone_length

# Whisper copies its prompt's style: a number read digit by digit in the prompt
# makes it write the caller's digits as digit words, which numbers.py groups.
NUMBER_PROMPT = "My number is eight oh five, five five five, oh one eight eight."
# A first reading that may hold a number: digits, digit words, or what tiny.en
# hears for espeak's and callers' "five" / "nine" ("time", "fine", "size").
_NUMBERISH = re.compile(
    r"\d|\b(?:zero|oh|one|two|three|four|five|six|seven|eight|nine|double|triple|"
    r"time|fine|size|extension|ticket|number|callback|call)\b",
    re.IGNORECASE,
)
_DIGIT_RUN = re.compile(r"\d[\d ]*\d|\d")


def transcribe_voicemail(
    engine: Engine,
    audio_path: Path,
    initial_prompt: str | None = None,
    *,
    coverage: CoverageConfig = DEFAULT_COVERAGE,
    number_pass: bool = True,
    refine_with: Engine | None = None,
) -> Transcript:
    """Transcribe one recording, check it against the speech in the audio, and tidy its numbers.

    ``missing`` on the result lists the speech spans no segment covers even
    after decoding them again on their own: the ticket must say so.  Where the
    first reading may hold a number, the recording is read again with
    ``NUMBER_PROMPT`` after the caller's prompt, and that reading is kept if it
    writes more of the message as whole numbers (``number_score``), covering no less.
    ``refine_with`` reads it again (the same model with a wider beam, say); ``engine`` by default.
    """
    if not number_pass:
        return _read(engine, audio_path, initial_prompt, coverage)
    return read_twice(engine, audio_path, initial_prompt, coverage=coverage, refine_with=refine_with).shown


@dataclass(frozen=True)
class Readings:
    """A voicemail's reading to show, and the other reading where it was read twice."""

    shown: Transcript
    other: Transcript | None = None


def read_twice(
    engine: Engine,
    audio_path: Path,
    initial_prompt: str | None = None,
    *,
    coverage: CoverageConfig = DEFAULT_COVERAGE,
    refine_with: Engine | None = None,
) -> Readings:
    """The first reading, and the second (``read_again``) where it is worth one: whichever ``replaces``
    the other is shown, and the other is kept (the worker does the same in two jobs)."""
    first = _read(engine, audio_path, initial_prompt, coverage)
    second = read_again(refine_with or engine, audio_path, first, initial_prompt, coverage=coverage)
    if second is None:
        return Readings(first)
    return Readings(second, first) if replaces(first, second) else Readings(first, second)


def may_hold_number(first: Transcript) -> bool:
    """True where a first reading may hold a number, so reading it again with ``NUMBER_PROMPT`` may help."""
    return not first.no_speech and bool(_NUMBERISH.search(first.text))


def worth_reading_again(first: Transcript) -> bool:
    """True where the second reading may do better than ``first``: it may hold a number, it left speech
    untranscribed, or it is low confidence (the quick greedy first pass stumbles more often than the
    second pass's beam search)."""
    return may_hold_number(first) or bool(first.missing) or (first.low_confidence and not first.no_speech)


def read_again(
    engine: Engine,
    audio_path: Path,
    first: Transcript,
    initial_prompt: str | None = None,
    *,
    coverage: CoverageConfig = DEFAULT_COVERAGE,
) -> Transcript | None:
    """The second reading, with ``NUMBER_PROMPT``, where ``worth_reading_again`` (else None).

    It is worth it where the first reading may hold a number, left speech untranscribed (the prompt
    changes what the decoder hears, and it may cover what the first reading could not), or is low
    confidence. Whichever reading the ticket shows (``replaces``), both are kept: where they hear a
    number differently, the ticket says which number to check (``ticketing.transcripts.check_numbers``).
    """
    if not worth_reading_again(first):
        return None
    prompt = f"{initial_prompt} {NUMBER_PROMPT}" if initial_prompt else NUMBER_PROMPT
    return _read(engine, audio_path, prompt, coverage)


def replaces(first: Transcript, second: Transcript) -> bool:
    """True where the second reading should be shown instead of the first.

    It must hear something and leave no more speech untranscribed; it wins by leaving less, else by
    more of the message as whole numbers (``number_score``), else, scoring the same, by being
    confident where the first reading was not.
    """
    if second.no_speech or _missing_seconds(second) > _missing_seconds(first):
        return False
    if _missing_seconds(second) < _missing_seconds(first):
        return True
    first_score, second_score = number_score(first.text), number_score(second.text)
    if first_score != second_score:
        return second_score > first_score
    return first.low_confidence and not second.low_confidence


def _missing_seconds(transcript: Transcript) -> float:
    return sum(end - start for start, end in transcript.missing)


def _read(engine: Engine, audio_path: Path, prompt: str | None, coverage: CoverageConfig) -> Transcript:
    transcript = engine.transcribe(audio_path, initial_prompt=prompt)
    transcript = complete_transcript(engine, audio_path, transcript, config=coverage)
    if transcript.no_speech:
        return transcript
    return replace(transcript, text=digits_as_said(transcript.text, transcript.language))


def numbers_said_at(transcript: Transcript) -> dict[str, tuple[float, float]]:
    """Where each number the transcript writes was said: the start and end of the segment it was read
    from (a number split across two segments is left out: its place is not one stretch)."""
    found: dict[str, tuple[float, float]] = {}
    if transcript.no_speech:
        return found
    written = set(numbers_in(transcript.text))
    for segment in transcript.segments:
        for number in numbers_in(digits_as_said(segment.text, transcript.language)):
            if number in written:
                found.setdefault(number, (segment.start, segment.end))
    return found


def number_score(text: str) -> int:
    """Digits the text writes as whole numbers, less those in runs no number has.

    A run of 3 to 7 digits (an extension, a ticket, a local number), 10, or 11 after a country
    code 1 counts for its digits; a run of 8, 9, 11 or more counts against: a reading that
    invents digits ("323 601 4772" read again as "32360147723234323477") loses to one that
    does not.
    """
    score = 0
    for match in _DIGIT_RUN.finditer(text):
        run = match.group(0).replace(" ", "")
        if len(run) < 3:
            continue
        whole = len(run) <= 7 or phone_length(run)
        score += len(run) if whole else -len(run)
    return score


# --- other languages ----------------------------------------------------------------------------------

LANGUAGE_NAMES = {"en": "English", "es": "Spanish"}


@dataclass(frozen=True)
class Reading:
    """A voicemail read in the language spoken, with its English translation where that is not English."""

    transcript: Transcript
    translation: Transcript | None
    detected: str  # the language the multilingual model heard
    probability: float  # its probability, over the candidate languages


def transcribe_spoken_language(
    multilingual: Any,
    english: Engine,
    audio_path: Path,
    *,
    candidates: tuple[str, ...] = ("en", "es"),
    prompts: dict[str, str | None] | None = None,  # by language spoken, and "translate"
    coverage: CoverageConfig = DEFAULT_COVERAGE,
    language: str | None = None,
    translate: bool = True,
) -> Reading:
    """Detect the language spoken (from the audio), transcribe in it and translate into English.

    English (a caller who chose Spanish but spoke English) goes to ``english``, the engine every
    English voicemail gets; another language is transcribed by the multilingual model in that
    language, then translated by it (Whisper's ``translate`` task, ``translate_voicemail``). Both
    readings get the coverage check. ``language`` skips the detection (already done);
    ``translate=False`` leaves the translation to a later step (the worker's: the transcript is
    shown first).
    """
    prompts = prompts or {}
    if language is None:
        detected, probability = multilingual.detect_language(audio_path, candidates)
    else:
        detected, probability = language, 1.0
    if detected == "en":
        first = transcribe_voicemail(english, audio_path, prompts.get("en"), coverage=coverage, number_pass=False)
        return Reading(first, None, detected, probability)
    spoken = multilingual.bound(detected)
    transcript = transcribe_voicemail(spoken, audio_path, prompts.get(detected), coverage=coverage, number_pass=False)
    transcript = _without_loops(transcript)
    translation = None
    if translate and not transcript.no_speech:
        translation = translate_voicemail(
            multilingual, audio_path, detected, prompt=prompts.get("translate"), coverage=coverage
        )
    return Reading(transcript, translation, detected, probability)


def translate_voicemail(
    multilingual: Any,
    audio_path: Path,
    language: str,
    *,
    prompt: str | None = None,
    coverage: CoverageConfig = DEFAULT_COVERAGE,
) -> Transcript:
    """A voicemail spoken in ``language`` read straight into English by the multilingual model (Whisper's
    ``translate`` task), with the coverage check and any decoder loop cut short."""
    into_english = multilingual.bound(language, "translate")
    return _without_loops(transcribe_voicemail(into_english, audio_path, prompt, coverage=coverage, number_pass=False))


def _without_loops(transcript: Transcript) -> Transcript:
    """A reading whose decoder looped ("I love you, I love you, I love you…") keeps one round of the loop and
    is marked low confidence, so nobody reads the loop as what the caller said."""
    text, looped = collapse_repeats(transcript.text)
    if not looped:
        return transcript
    return replace(transcript, text=text, low_confidence=True)


_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def collapse_repeats(text: str) -> tuple[str, bool]:
    """Collapse a phrase of two to eight words said three or more times in a row, or a word (not a number)
    four or more times, to one time followed by "…"; returns the text and whether anything was collapsed.

    A number's own repeats ("five five five", "cinco, cinco, cinco") are left alone: single words
    repeat only three times there, and digits are never collapsed.
    """
    tokens = text.split()
    keys = [" ".join(_WORD.findall(t.lower())) for t in tokens]
    looped = False
    i = 0
    out: list[str] = []
    while i < len(tokens):
        for n in range(1, 9):  # the shortest phrase that repeats: "sincro" rather than "sincro, sincro"
            block = keys[i : i + n]
            if len(block) < n or not all(block):
                continue
            needed = 3 if n > 1 else 4
            if n == 1 and (block[0].isdigit() or block[0] in _NUMBER_WORDS):
                continue
            k = 1
            while keys[i + k * n : i + (k + 1) * n] == block:
                k += 1
            if k >= needed:
                out.extend(tokens[i : i + n])
                out[-1] = out[-1].rstrip(",;.") + " …"
                i += k * n
                looped = True
                break
        else:
            out.append(tokens[i])
            i += 1
    return " ".join(out), looped


_NUMBER_WORDS = frozenset(
    "zero oh one two three four five six seven eight nine cero uno dos tres cuatro cinco seis siete ocho nueve".split()
)
