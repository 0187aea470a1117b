"""Never lose speech silently: compare a transcript with where the recording has speech.

Whisper can stop early: with the client-name initial prompt, tiny.en once
returned one segment covering 0-8.3 s of a 15.8 s message, and the callback
number was in the lost half.  The decoder's own timestamps cannot reveal
that, so the speech is found on the audio itself, with the Silero voice
activity detector that faster-whisper ships (an ONNX model, no download),
run on a peak-normalised copy so a quiet caller is found too.

``complete_transcript`` runs after every transcription: speech the segments
do not cover is decoded again on its own (from the end of the last segment
before it, without the prompt), and what is still uncovered is returned as
``missing`` spans for the ticket ("part of the message may be missing:
listen to 0:08-0:16").
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ticketing.transcripts import missing_note
from transcription.engine import Engine, Segment, Transcript

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)
SAMPLE_RATE = 16000
Span = tuple[float, float]


@dataclass(frozen=True)
class CoverageConfig:
    """How speech is found and how much of it may go uncovered before it counts."""

    vad_threshold: float = 0.5  # Silero's default speech probability
    min_speech_ms: int = 250
    min_silence_ms: int = 500
    speech_pad_ms: int = 100
    # Whisper's timestamps are approximate: a segment covers this much either side.
    tolerance_s: float = 0.6
    # Uncovered speech shorter than this is a breath or a click, not lost words.
    min_missing_s: float = 1.0
    # Slowest speech a segment's words are credited with (callers speak 2-3 words a second).
    min_words_per_second: float = 1.0
    # How far outside the detected speech a timed word may fall and still be the caller's.
    word_pad_s: float = 0.25
    # Rounds of decoding again what is still uncovered (each round one decode per gap).
    max_rounds: int = 4


DEFAULT_COVERAGE = CoverageConfig()


def speech_spans(samples: np.ndarray, config: CoverageConfig = DEFAULT_COVERAGE) -> list[Span]:
    """Where the 16 kHz audio has speech, by Silero VAD on a peak-normalised copy."""
    import numpy as np
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    if len(samples) == 0:
        return []
    peak = float(np.max(np.abs(samples)))
    if peak <= 1e-4:  # digital silence
        return []
    audio = (samples * (0.5 / peak)).astype(np.float32)
    options = VadOptions(
        threshold=config.vad_threshold,
        min_speech_duration_ms=config.min_speech_ms,
        min_silence_duration_ms=config.min_silence_ms,
        speech_pad_ms=config.speech_pad_ms,
    )
    stamps = get_speech_timestamps(audio, options, sampling_rate=SAMPLE_RATE)
    return [(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in stamps]


def uncovered(
    speech: Sequence[Span], segments: Sequence[Segment], config: CoverageConfig = DEFAULT_COVERAGE
) -> list[Span]:
    """The stretches of speech no segment covers (each at least ``min_missing_s`` long)."""
    covered = _union([span for s in segments for span in _covers(s, speech, config)])
    missing: list[Span] = []
    for start, end in speech:
        pieces = [(start, end)]
        for c_start, c_end in covered:
            pieces = [p for piece in pieces for p in _subtract(piece, (c_start, c_end))]
        missing.extend(p for p in pieces if p[1] - p[0] >= config.min_missing_s)
    return _union(missing, join_gap=0.5)


def _covers(segment: Segment, speech: Sequence[Span], config: CoverageConfig) -> list[Span]:
    """What a segment really covers: its words' times where the engine timed them; else its
    timestamps, but no more speech than its words can hold.

    A decoder that stops mid-window may still stamp its one segment 0-30 s. Its
    words' times end where it stopped; without them, ``min_words_per_second``
    (far below any caller's pace) credits the words with at most that much
    speech time from the segment's start.
    """
    if segment.words:
        return [(start - config.tolerance_s, end + config.tolerance_s) for start, end in segment.words]
    credit = max(len(segment.text.split()), 1) / config.min_words_per_second
    end = segment.end
    for start, stop in speech:
        first, last = max(start, segment.start), min(stop, segment.end)
        if last <= first:
            continue
        if last - first >= credit:
            end = first + credit
            break
        credit -= last - first
    return [(segment.start - config.tolerance_s, end + config.tolerance_s)]


def complete_transcript(
    engine: Engine,
    audio_path: Path,
    transcript: Transcript,
    *,
    samples: np.ndarray | None = None,
    config: CoverageConfig = DEFAULT_COVERAGE,
) -> Transcript:
    """Decode again the speech ``transcript`` left out; return it with what is still ``missing``."""
    from transcription.guards import confidence

    if samples is None:
        samples = decode(audio_path)
    speech = speech_spans(samples, config)
    transcript = _without_segments_off_speech(transcript, speech, config)
    missing = uncovered(speech, transcript.segments, config)
    if not missing:
        return replace(transcript, speech_seconds=_total(speech), missing=(), recovered=())
    segments = list(transcript.segments)
    recovered: list[Span] = []
    tried: set[Span] = set()
    for _ in range(config.max_rounds):
        # A second decode can stop early too: go on from where it stopped.
        progress = False
        for span in missing:
            window = _window(span, segments, transcript.audio_seconds)
            if window in tried:
                continue
            tried.add(window)
            found = _decode_window(engine, samples, window)
            gaps = uncovered(speech, segments, config)
            fresh = [s for s in found if any(_mostly_inside(s, gap, config.tolerance_s) for gap in gaps)]
            if fresh:
                segments = [s for s in segments if not _heard_again(s, fresh, window)]
                segments.extend(fresh)
                segments.sort(key=lambda s: s.start)
                recovered.append((fresh[0].start, fresh[-1].end))
                progress = True
        missing = uncovered(speech, segments, config)
        if not missing or not progress:
            break
    still = missing
    if still:
        log.warning("speech left untranscribed: %s", missing_note(still))
    text = " ".join(" ".join(s.text.split()) for s in segments).strip()
    no_speech = transcript.no_speech and not recovered
    return replace(
        transcript,
        text="" if no_speech else text,
        segments=tuple(segments),
        confidence=transcript.confidence if not recovered else confidence(segments),
        no_speech=no_speech,
        speech_seconds=_total(speech),
        missing=tuple(still),
        recovered=tuple(recovered),
    )


def _without_segments_off_speech(transcript: Transcript, speech: Sequence[Span], config: CoverageConfig) -> Transcript:
    """The transcript without segments whose timed words all fall where the audio has no speech.

    A decoder that goes on from its last word may write words into the line's silence after the
    caller stopped ("one eight, five, five, five, five, five" in the last half second). Only where
    the voice detector heard speech elsewhere: on a recording with none, the guards decide.
    """
    from transcription.guards import confidence

    if not speech:
        return transcript
    kept = [s for s in transcript.segments if not _off_speech(s, speech, config)]
    if len(kept) == len(transcript.segments):
        return transcript
    dropped = [s.text.strip() for s in transcript.segments if s not in kept]
    log.info("segments where no speech was heard dropped: %s", dropped)
    return replace(
        transcript,
        segments=tuple(kept),
        text=" ".join(" ".join(s.text.split()) for s in kept).strip(),
        confidence=confidence(kept),
    )


def _off_speech(segment: Segment, speech: Sequence[Span], config: CoverageConfig) -> bool:
    pad = config.word_pad_s
    return bool(segment.words) and not any(
        start - pad <= (w_start + w_end) / 2 <= end + pad for w_start, w_end in segment.words for start, end in speech
    )


def decode(audio_path: Path) -> Any:
    """The recording as 16 kHz mono float32 samples (PyAV, as faster-whisper decodes it)."""
    from faster_whisper.audio import decode_audio

    return decode_audio(str(audio_path), sampling_rate=SAMPLE_RATE)


def _decode_window(engine: Engine, samples: np.ndarray, window: Span) -> list[Segment]:
    """Transcribe one stretch of the recording on its own, without the prompt; times in the whole file's terms."""
    import wave

    import numpy as np

    first, last = int(window[0] * SAMPLE_RATE), int(window[1] * SAMPLE_RATE)
    pcm = (np.clip(samples[first:last], -1.0, 1.0) * 32767.0).astype("<i2")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "span.wav"
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(SAMPLE_RATE)
            out.writeframes(pcm.tobytes())
        part = engine.transcribe(path, initial_prompt=None)
    offset = window[0]
    return [
        replace(
            s,
            start=s.start + offset,
            end=s.end + offset,
            words=tuple((start + offset, end + offset) for start, end in s.words),
        )
        for s in part.segments
    ]


def _window(span: Span, segments: Sequence[Segment], audio_seconds: float) -> Span:
    """From the end of the last segment before the gap to the start of the first one after it."""
    before = [s.end for s in segments if s.end <= span[0] + 0.05]
    after = [s.start for s in segments if s.start >= span[1] - 0.05]
    start = min(max(before, default=0.0), span[0])
    end = max(min(after, default=audio_seconds), span[1])
    # Start a little early: a word cut at the segment boundary is heard whole.
    return (max(0.0, start - 0.3), min(audio_seconds, end + 0.3))


def _heard_again(segment: Segment, fresh: Sequence[Segment], window: Span) -> bool:
    """True when ``fresh`` (decoded from ``window``) holds this segment's words again, the segment
    next to the window: the first decode had mistimed them ("you can reach me at area code" stamped
    at the end of the message, where the decode of its start hears them again)."""
    from transcription.guards import normalise

    words = normalise(segment.text).split()
    if len(words) < 3 or segment.start > window[1] + 1.0 or segment.end < window[0] - 1.0:
        return False
    again = normalise(" ".join(s.text for s in fresh)).split()
    return any(again[i : i + len(words)] == words for i in range(len(again) - len(words) + 1))


def _mostly_inside(segment: Segment, span: Span, tolerance: float) -> bool:
    """A re-decoded segment that belongs to the missing span (not words the first pass already has)."""
    first, last = max(segment.start, span[0] - tolerance), min(segment.end, span[1] + tolerance)
    return last - first >= 0.5 * max(segment.end - segment.start, 0.1)


def _union(spans: Sequence[Span], join_gap: float = 0.0) -> list[Span]:
    merged: list[list[float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1] + join_gap:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


def _subtract(piece: Span, cut: Span) -> list[Span]:
    start, end = piece
    c_start, c_end = cut
    if c_end <= start or c_start >= end:
        return [piece]
    out = []
    if c_start > start:
        out.append((start, c_start))
    if c_end < end:
        out.append((c_end, end))
    return out


def _total(spans: Sequence[Span]) -> float:
    return round(sum(end - start for start, end in spans), 2)
