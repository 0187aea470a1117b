"""The small interface every transcription engine implements.

The RQ job calls ``load_engine(settings)`` (``transcription.engines``) once per worker process and then
``engine.transcribe(path, initial_prompt)`` per recording. This module holds only the types.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Segment:
    """One decoded stretch of the recording, with Whisper's own quality figures."""

    start: float
    end: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    # Each word's (start, end) in seconds, where the engine times words (faster-whisper does): what
    # the segment really covers, when its own timestamps run past words the decoder never wrote.
    words: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class Transcript:
    """What the engine heard in one recording, after the anti-hallucination guards."""

    text: str
    segments: tuple[Segment, ...]
    language: str
    audio_seconds: float
    engine: str
    model: str
    confidence: float  # 0..1, see transcription.guards.confidence
    no_speech: bool
    low_confidence: bool
    # Filled in by transcription.coverage after decoding: seconds of speech the
    # voice activity detector found, spans decoded a second time, and spans of
    # speech that no segment covers even then (the ticket says so).
    speech_seconds: float | None = None
    recovered: tuple[tuple[float, float], ...] = ()
    missing: tuple[tuple[float, float], ...] = ()


class Engine(Protocol):
    """A speech-to-text engine; one object per worker process, model loaded lazily."""

    name: str
    model: str

    def transcribe(self, audio_path: Path, initial_prompt: str | None = None) -> Transcript:
        """Transcribe one recording file."""
        ...

    def with_beam(self, beam_size: int) -> Engine:
        """The same engine and model reading with another beam width (1: greedy)."""
        ...
