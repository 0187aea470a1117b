"""The openai-whisper (PyTorch) engine: the optional reference implementation."""

from __future__ import annotations

import copy
import gc
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transcription.audio import loudness_profile
from transcription.engine import Segment, Transcript
from transcription.errors import (
    CorruptAudioError,
    EngineUnavailableError,
    ModelNotFoundError,
    RecordingMissingError,
)
from transcription.guards import DEFAULT_GUARDS, GuardConfig, assemble_transcript
from transcription.models import openai_whisper_model

if TYPE_CHECKING:
    from whisper.model import Whisper

SAMPLE_RATE = 16000


def _beam_or_greedy(beam_size: int | None) -> int | None:
    """openai-whisper's beam_size option for a beam width: None (its greedy decoder) for 1."""
    return beam_size if beam_size and beam_size > 1 else None


class OpenAIWhisperEngine:
    """Transcribes with openai-whisper; the model loads on the first transcribe()."""

    name = "openai-whisper"

    def __init__(
        self,
        model: str = "",
        *,
        device: str = "cpu",
        cpu_threads: int | None = None,
        beam_size: int | None = None,
        temperature_fallback: bool = True,
        guards: GuardConfig | None = None,
    ) -> None:
        self._model_arg = openai_whisper_model(model)
        self.model = model or self._model_arg
        self.device = device
        # torch's thread count is process-wide: only touch it when asked to.
        self.cpu_threads = cpu_threads
        self.beam_size = _beam_or_greedy(beam_size)  # None: greedy, openai-whisper's transcribe() default
        self.temperature_fallback = temperature_fallback
        self.guards = guards or DEFAULT_GUARDS
        self._whisper: Whisper | None = None
        self._lock = threading.Lock()

    def with_beam(self, beam_size: int) -> OpenAIWhisperEngine:
        """This engine reading with another beam width (1: greedy), sharing its loaded model (loads it now)."""
        if _beam_or_greedy(beam_size) == self.beam_size:
            return self
        self.load()
        other = copy.copy(self)
        other.beam_size = _beam_or_greedy(beam_size)
        return other

    def load(self) -> Whisper:
        """Load the model once (thread-safe); later calls return the same object."""
        with self._lock:
            if self._whisper is None:
                try:
                    import torch
                    import whisper
                except ImportError as error:
                    raise EngineUnavailableError(
                        "TRANSCRIPTION_ENGINE=openai-whisper needs openai-whisper and torch "
                        "(requirements-openai-whisper.txt)"
                    ) from error
                if self.cpu_threads is not None:
                    torch.set_num_threads(self.cpu_threads)
                try:
                    model = whisper.load_model(self._model_arg, device=self.device)
                except (RuntimeError, OSError, KeyError, ValueError) as error:
                    raise ModelNotFoundError(
                        f"openai-whisper could not load model {self._model_arg!r}: {error}"
                    ) from error
                _read_vocabulary_once(model)
                self._whisper = model
            return self._whisper

    def transcribe(self, audio_path: Path, initial_prompt: str | None = None) -> Transcript:
        """Transcribe one recording file."""
        model = self.load()
        samples = _decode(audio_path)
        audio_seconds = len(samples) / SAMPLE_RATE
        options: dict[str, Any] = {
            "verbose": None,  # None, not False: False still draws a progress bar
            "condition_on_previous_text": self.guards.condition_on_previous_text,
            "initial_prompt": initial_prompt or None,
            # fp16 only exists on GPUs; asking for it on CPU only earns a warning.
            "fp16": self.device != "cpu",
        }
        if self.beam_size is not None:
            options["beam_size"] = self.beam_size
        if not self.temperature_fallback:
            options["temperature"] = 0.0
        if not self.guards.decoder_no_speech_skip:
            options["no_speech_threshold"] = None
        if not model.is_multilingual:
            options["language"] = "en"
        raw: list[Segment] = []
        language = options.get("language", "en")
        if len(samples):
            result = model.transcribe(samples, **options)
            raw = [
                Segment(
                    start=float(s["start"]),
                    end=float(s["end"]),
                    text=str(s["text"]),
                    avg_logprob=float(s["avg_logprob"]),
                    no_speech_prob=float(s["no_speech_prob"]),
                    compression_ratio=float(s["compression_ratio"]),
                )
                for s in result["segments"]
            ]
            language = str(result.get("language") or language)
        return assemble_transcript(
            raw,
            audio_seconds=audio_seconds,
            level_dbfs=loudness_profile(samples, SAMPLE_RATE),
            language=language,
            engine=self.name,
            model=self.model,
            guards=self.guards,
        )


def _read_vocabulary_once(model: Whisper) -> None:
    """Build the (cached) tokenizer encoding now, with its file-handle leak silenced.

    openai-whisper's get_encoding() reads its vocabulary through an
    ``open()`` it never closes; the ResourceWarning that follows would fire
    inside a later transcribe() (and fail ``pytest -W error``).  The encoding
    is lru-cached, so reading it once here is the only time the file opens.
    """
    from whisper.tokenizer import get_encoding

    name = "multilingual" if model.is_multilingual else "gpt2"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        # Called exactly as get_tokenizer() calls it: lru_cache keys on the call form.
        get_encoding(name=name, num_languages=model.num_languages)
        gc.collect()  # finalise the leaked file object while the filter is on


def _decode(audio_path: Path) -> Any:
    """Decode a recording to 16 kHz mono float32 samples with the ffmpeg command."""
    from whisper.audio import load_audio

    if not Path(audio_path).is_file():
        raise RecordingMissingError(f"recording file not found: {audio_path}")
    try:
        return load_audio(str(audio_path), sr=SAMPLE_RATE)
    except RuntimeError as error:  # load_audio wraps ffmpeg's failure in RuntimeError
        message = str(error).strip().splitlines()[-1] if str(error).strip() else ""
        raise CorruptAudioError(f"cannot decode {audio_path}: {message}") from error
