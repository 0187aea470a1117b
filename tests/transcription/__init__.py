"""Tests of the transcription package: engines on generated phone audio, guards, hints, download."""
