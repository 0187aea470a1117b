"""Recordings and transcripts past the retention age are purged, and the purge is audited."""

from __future__ import annotations

from pathlib import Path

from runtime import Runtime
from tests.conftest import FixedClock
from ticketing import lifecycle
from ticketing.db import transaction
from workers.retention import purge_expired


def test_old_recordings_and_transcripts_are_purged_and_audited(
    runtime: Runtime, clock: FixedClock, tmp_path: Path
) -> None:
    runtime.settings = runtime.settings.with_overrides(retention_days=30, recordings_dir=tmp_path)
    audio = tmp_path / "RE1.wav"
    audio.write_bytes(b"RIFF")
    outside = tmp_path.parent / "keep.wav"
    outside.write_bytes(b"RIFF")
    with transaction(runtime.sessions) as s:
        old = lifecycle.open_ticket(
            s, policy=runtime.policy, now=runtime.now(), priority="P3", source="voicemail", actor="t"
        )
        old.audio_path, old.transcript = str(audio), "our server is down"
        odd = lifecycle.open_ticket(
            s, policy=runtime.policy, now=runtime.now(), priority="P3", source="voicemail", actor="t"
        )
        odd.audio_path = str(outside)  # never delete outside the recordings directory
        numbers = (old.number, odd.number)
    clock.advance(days=29)
    with transaction(runtime.sessions) as s:
        recent = lifecycle.open_ticket(
            s, policy=runtime.policy, now=runtime.now(), priority="P3", source="voicemail", actor="t"
        )
        recent.transcript = "printer jam"
        recent_number = recent.number
    assert purge_expired(runtime) == 0
    clock.advance(days=2)
    assert purge_expired(runtime) == 2
    assert not audio.exists() and outside.exists()
    with runtime.sessions() as s:
        t = lifecycle.get_ticket(s, numbers[0])
        assert (t.audio_path, t.transcript) == (None, None)
        assert t.audit[-1].action == "recording and transcript purged" and t.audit[-1].actor == "retention"
        assert lifecycle.get_ticket(s, recent_number).transcript == "printer jam"
    assert purge_expired(runtime) == 0


def test_retention_is_off_by_default(runtime: Runtime, clock: FixedClock) -> None:
    with transaction(runtime.sessions) as s:
        t = lifecycle.open_ticket(
            s, policy=runtime.policy, now=runtime.now(), priority="P3", source="voicemail", actor="t"
        )
        t.transcript = "x"
    clock.advance(days=3650)
    assert purge_expired(runtime) == 0
