"""Anti-hallucination guards and confidence, shared by every engine (pure code).

Whisper invents text on silence and noise ("you", "Thanks for watching",
loops of one phrase).  The engines decode with the decode-time switches of
``GuardConfig`` and hand their raw segments to ``review_segments``, which
drops what the guards catch and says whether anything was said at all.

Every switch was measured on the fixture corpus (24 telephone clips, 662 s:
voicemails, a quiet caller, noisy lines, long silent or noisy tails, silence,
noise, keypad tones; ``python -m bench.transcription --guards``) and is on by
default only if it lowered the errors there (speech word errors plus words
invented on silence/noise).  On by default, with what they saved:

- the no-speech rule (no_speech_prob > 0.6 and avg_logprob < -1.0), at decode
  time and again at review: without it 28 (faster-whisper) and 30
  (openai-whisper) invented words on the silence/noise clips;
- known phantom phrases over quiet audio: "You" on digital silence (2 and 1
  invented words, 2 and 1 silent clips wrongly called speech).

Off by default, because they changed nothing or made things worse:
``condition_on_previous_text=False`` (WER 13.4 % vs 13.0 % with conditioning
for faster-whisper, 15.6 % vs 15.5 % for openai-whisper, no loop appeared even
on a 3-minute message), Silero VAD (WER 13.4 % -> 14.3 %: it cuts quiet
callers), dropping segments past the end of the audio, dropping repetitive
segments (compression ratio > 2.4) and collapsing repeated words (no effect
on the corpus).  They stay available as switches for real-traffic trials.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from transcription.engine import Segment, Transcript


@dataclass(frozen=True)
class GuardConfig:
    """Which guards run, and their thresholds."""

    # Decode-time switches (passed to the engine's transcribe call).
    # False is the usual advice against loops, but measured it only cost words.
    condition_on_previous_text: bool = True
    # Whisper's own skip of windows with no_speech_prob > 0.6 and avg_logprob < -1.0;
    # it also spares the temperature fallback on silence (cheaper than dropping later).
    decoder_no_speech_skip: bool = True
    # faster-whisper's Silero VAD.  Off: it cut quiet phone speech.
    vad_filter: bool = False
    # Review-time switches (review_segments).
    drop_silent_segments: bool = True
    drop_phantoms_when_quiet: bool = True
    drop_segments_past_end: bool = False
    drop_repetitive_segments: bool = False
    collapse_repeated_words: bool = False
    # Thresholds: Whisper's own defaults for the first three.
    no_speech_prob: float = 0.6
    avg_logprob: float = -1.0
    compression_ratio: float = 2.4
    quiet_dbfs: float = -45.0  # RMS of phone speech sits near -20 dBFS; line hiss below -50
    low_confidence: float = 0.5


DEFAULT_GUARDS = GuardConfig()
NO_GUARDS = GuardConfig(
    condition_on_previous_text=True,
    decoder_no_speech_skip=False,
    vad_filter=False,
    drop_silent_segments=False,
    drop_segments_past_end=False,
    drop_repetitive_segments=False,
    drop_phantoms_when_quiet=False,
    collapse_repeated_words=False,
)

# Phrases Whisper is known to produce from silence, noise and music (its
# training data's subtitle credits); the text is compared after normalisation.
PHANTOM_PHRASES = frozenset(
    {
        "you",
        "thank you",
        "thanks",
        "thank you very much",
        "thank you so much",
        "thanks for watching",
        "thank you for watching",
        "thanks for listening",
        "thank you for listening",
        "please subscribe",
        "like and subscribe",
        "subscribe to my channel",
        "see you next time",
        "see you in the next video",
        "bye",
        "bye bye",
        "goodbye",
        "so",
        "okay",
        "oh",
        "uh",
        "um",
        "hmm",
        "music",
        "blank audio",
        "silence",
        "applause",
    }
)
_PHANTOM_PREFIXES = ("subtitles by", "transcribed by", "captions by", "transcription by")


@dataclass(frozen=True)
class Review:
    """The outcome of the guards over one recording's segments."""

    kept: tuple[Segment, ...]
    dropped: tuple[tuple[Segment, str], ...]  # (segment, reason)
    text: str
    confidence: float
    no_speech: bool
    low_confidence: bool


def review_segments(
    segments: Sequence[Segment],
    *,
    audio_seconds: float,
    level_dbfs: Callable[[float, float], float] | None = None,
    config: GuardConfig = DEFAULT_GUARDS,
) -> Review:
    """Drop hallucinated segments, then decide no_speech, confidence and low_confidence."""
    kept: list[Segment] = []
    dropped: list[tuple[Segment, str]] = []
    for segment in segments:
        if config.collapse_repeated_words:
            segment = _with_text(segment, collapse_repeated_words(segment.text))
        reason = drop_reason(segment, audio_seconds=audio_seconds, level_dbfs=level_dbfs, config=config)
        if reason is None:
            kept.append(segment)
        else:
            dropped.append((segment, reason))
    text = " ".join(" ".join(segment.text.split()) for segment in kept).strip()
    no_speech = not kept or not _has_words(text)
    score = confidence(kept) if not no_speech else 0.0
    return Review(
        kept=tuple(kept),
        dropped=tuple(dropped),
        text="" if no_speech else text,
        confidence=score,
        no_speech=no_speech,
        low_confidence=not no_speech and score < config.low_confidence,
    )


def drop_reason(
    segment: Segment,
    *,
    audio_seconds: float,
    level_dbfs: Callable[[float, float], float] | None = None,
    config: GuardConfig = DEFAULT_GUARDS,
) -> str | None:
    """Say why a segment should be dropped, or None to keep it."""
    if not _has_words(segment.text):
        return "no words"  # ". . ." on noise: nothing a ticket could use
    if config.drop_segments_past_end and segment.start >= audio_seconds:
        # Timestamps past the end of the audio can only be invented.
        return "starts after the end of the audio"
    if (
        config.drop_silent_segments
        and segment.no_speech_prob > config.no_speech_prob
        and segment.avg_logprob < config.avg_logprob
    ):
        return "no speech (no_speech_prob and avg_logprob)"
    if config.drop_repetitive_segments and compression_ratio(segment.text) > config.compression_ratio:
        return "repetitive (compression ratio)"
    if config.drop_phantoms_when_quiet and is_phantom_phrase(segment.text):
        # Only when quiet: a caller who really says "thank you" is loud enough.
        if level_dbfs is None or level_dbfs(segment.start, segment.end) < config.quiet_dbfs:
            return "known phantom phrase over quiet audio"
    return None


def confidence(segments: Sequence[Segment]) -> float:
    """exp of the duration-weighted mean avg_logprob of the segments (0 when none).

    ``avg_logprob`` is the mean log-probability per token Whisper gave its own
    text, so exp() of it is the geometric-mean token probability, in 0..1.
    Weighting by duration stops a one-word segment from outvoting a long one;
    each segment weighs at least 0.2 s so zero-length timestamps still count.
    """
    if not segments:
        return 0.0
    weights = [max(segment.end - segment.start, 0.2) for segment in segments]
    mean = sum(w * s.avg_logprob for w, s in zip(weights, segments, strict=True)) / sum(weights)
    return min(1.0, max(0.0, math.exp(mean)))


def compression_ratio(text: str) -> float:
    """Whisper's repetition measure: text bytes / zlib-compressed bytes."""
    data = text.encode("utf-8")
    if not data:
        return 0.0
    return len(data) / len(zlib.compress(data))


def is_phantom_phrase(text: str) -> bool:
    """True for text that is only one of Whisper's known invented phrases."""
    words = normalise(text)
    if not words:
        return False
    return words in PHANTOM_PHRASES or words.startswith(_PHANTOM_PREFIXES)


def collapse_repeated_words(text: str) -> str:
    """Collapse a run of 4+ copies of the same 1-4 words into one copy.

    Digits and number words are left alone: "five five five five" is part of
    a phone number, not a decoding loop.
    """
    tokens = text.split()
    keys = [normalise(token) for token in tokens]
    out: list[str] = []
    i = 0
    while i < len(tokens):
        for n in range(1, 5):
            unit = keys[i : i + n]
            if len(unit) < n or not all(unit) or any(_is_number(key) for key in unit):
                continue
            copies = 1
            while keys[i + copies * n : i + (copies + 1) * n] == unit:
                copies += 1
            if copies >= 4:
                out.extend(tokens[i : i + n])
                i += copies * n
                break
        else:
            out.append(tokens[i])
            i += 1
    return text if len(out) == len(tokens) else " ".join(out)


def _is_number(word: str) -> bool:
    return word.isdigit() or word in _NUMBER_WORDS


_NUMBER_WORDS = frozenset("zero oh one two three four five six seven eight nine ten double triple".split())


def normalise(text: str) -> str:
    """Lower-case words without punctuation, one space apart."""
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).replace("_", " ").split())


def _has_words(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


def _with_text(segment: Segment, text: str) -> Segment:
    if text == segment.text:
        return segment
    return replace(segment, text=text)


def assemble_transcript(
    raw: Sequence[Segment],
    *,
    audio_seconds: float,
    level_dbfs: Callable[[float, float], float] | None,
    language: str,
    engine: str,
    model: str,
    guards: GuardConfig,
) -> Transcript:
    """Run the guards over an engine's raw segments and build the Transcript."""
    review = review_segments(raw, audio_seconds=audio_seconds, level_dbfs=level_dbfs, config=guards)
    return Transcript(
        text=review.text,
        segments=review.kept,
        language=language,
        audio_seconds=audio_seconds,
        engine=engine,
        model=model,
        confidence=review.confidence,
        no_speech=review.no_speech,
        low_confidence=review.low_confidence,
    )
