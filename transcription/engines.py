"""The engines there are, and building the one the settings name.

Engines import their heavy packages (ctranslate2, torch) inside their own modules, and only when
``load_engine`` picks them, so importing this module stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from transcription.engine import Engine
from transcription.errors import UnknownEngineError

if TYPE_CHECKING:
    from settings import Settings
    from transcription.guards import GuardConfig

ENGINES = ("faster-whisper", "openai-whisper")


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
