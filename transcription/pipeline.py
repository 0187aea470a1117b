"""One voicemail through the engine: decode, recover speech it left out, write numbers as said."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from transcription.coverage import DEFAULT_COVERAGE, CoverageConfig, complete_transcript
from transcription.engine import Engine, Transcript
from transcription.numbers import digits_as_said


def transcribe_voicemail(
    engine: Engine,
    audio_path: Path,
    initial_prompt: str | None = None,
    *,
    coverage: CoverageConfig = DEFAULT_COVERAGE,
) -> Transcript:
    """Transcribe one recording, check it against the speech in the audio, and tidy its numbers.

    ``missing`` on the result lists the speech spans no segment covers even
    after decoding them again on their own: the ticket must say so.
    """
    transcript = engine.transcribe(audio_path, initial_prompt=initial_prompt)
    transcript = complete_transcript(engine, audio_path, transcript, config=coverage)
    if transcript.no_speech:
        return transcript
    return replace(transcript, text=digits_as_said(transcript.text))
