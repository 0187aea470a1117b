"""Voicemail transcription: engines behind one small interface, recording download, triage hints.

Importing the package loads no model and no heavy library: engines import
faster-whisper or torch when ``load_engine`` builds them.
"""

from __future__ import annotations

from transcription.engine import Engine, Segment, Transcript
from transcription.engines import load_engine
from transcription.errors import CorruptAudioError, TranscriptionError

__all__ = [
    "CorruptAudioError",
    "Engine",
    "Segment",
    "Transcript",
    "TranscriptionError",
    "load_engine",
]
