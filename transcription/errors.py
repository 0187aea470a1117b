"""Domain exceptions of the transcription package.

Adapters (the RQ job, the admin views) catch these and decide: retry the
job, open the ticket without a transcript, or alert an engineer.  Every
message names the recording or setting involved.
"""

from __future__ import annotations


class TranscriptionError(Exception):
    """Base class: a recording could not be turned into a transcript."""


class UnknownEngineError(TranscriptionError):
    """settings.transcription_engine names an engine this package does not have."""


class EngineUnavailableError(TranscriptionError):
    """The engine's Python package (faster-whisper or openai-whisper) is not installed."""


class ModelNotFoundError(TranscriptionError):
    """The Whisper model (bundled, named or a local path) cannot be found or is incomplete."""


class CorruptAudioError(TranscriptionError):
    """The recording's bytes cannot be decoded as audio."""


class RecordingMissingError(TranscriptionError):
    """The recording file to transcribe does not exist on disk."""


class DownloadError(TranscriptionError):
    """Base class: a recording could not be downloaded from Twilio."""


class RecordingAuthError(DownloadError):
    """Twilio refused the credentials (401/403): check the Account SID and Auth Token."""


class RecordingNotFoundError(DownloadError):
    """Twilio answered 404: the media does not exist, or is not ready yet."""


class RecordingUnavailableError(DownloadError):
    """Server errors, timeouts or dropped connections outlasted every retry."""


class NotAudioError(DownloadError):
    """The response's Content-Type is not audio (an HTML error page, JSON...)."""


class RecordingTooLargeError(DownloadError):
    """The recording is larger than settings.recording_max_bytes."""


class EmptyRecordingError(DownloadError):
    """The response body was empty."""


class CorruptRecordingError(DownloadError, CorruptAudioError):
    """The downloaded bytes are not a playable recording (bad header, no samples)."""


class RecordingRefusedError(DownloadError):
    """The RecordingUrl is not on Twilio's media hosts (or not HTTPS): the credentials are not sent there."""
