"""The small interface every transcription engine implements.

The RQ job calls ``load_engine(settings)`` once per worker process and then
``engine.transcribe(path, initial_prompt)`` per recording.  Engines import
their heavy packages (ctranslate2, torch) inside their own modules, and only
when ``load_engine`` picks them, so importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from transcription.errors import UnknownEngineError

if TYPE_CHECKING:
    from settings import Settings
    from transcription.guards import GuardConfig

ENGINES = ("faster-whisper", "openai-whisper")


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


def load_engine(settings: Settings, guards: GuardConfig | None = None) -> Engine:
    """Build the engine named by settings.transcription_engine (the model loads on first use)."""
    name = settings.transcription_engine or "faster-whisper"
    if name == "faster-whisper":
        from transcription.faster import FasterWhisperEngine

        return FasterWhisperEngine(
            model=settings.whisper_model,
            device=settings.whisper_device,
            compute_type=settings.whisper_compute_type,
            beam_size=settings.whisper_beam_size,
            guards=guards,
        )
    if name == "openai-whisper":
        from transcription.openai_engine import OpenAIWhisperEngine

        return OpenAIWhisperEngine(
            model=settings.whisper_model,
            device=settings.whisper_device,
            beam_size=settings.whisper_beam_size,
            guards=guards,
        )
    raise UnknownEngineError(f"TRANSCRIPTION_ENGINE must be one of {', '.join(ENGINES)}, not {name!r}")


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
    from transcription.guards import review_segments

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
