"""The transcription job on real Redis, a real database and the real bundled Whisper model."""

from __future__ import annotations

import io
import subprocess
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rq import SimpleWorker
from rq.registry import StartedJobRegistry
from sqlalchemy import func, select

import runtime as rt
from ivr.simulate import MediaServer, new_sid
from runtime import Runtime, build_runtime
from settings import Settings
from tests.conftest import FixedClock
from ticketing import lifecycle, voicemail
from ticketing.db import transaction
from ticketing.models import AuditEntry, Client, Contact, OutboxMessage, Ticket
from workers.dispatch import dispatch_pending
from workers.sweeper import requeue_lost, sweep_once

TEXT = (
    "Hi, this is Dana from Acme Dental. Our file server is down and nobody in the office can work. Please call me back."
)


@pytest.fixture(scope="session")
def engine() -> Any:
    """The bundled faster-whisper model, loaded once for the whole session."""
    from transcription.engines import load_engine

    return load_engine(Settings())


@pytest.fixture(scope="session")
def message_wav(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A spoken voicemail at 8 kHz, as Twilio records calls."""
    d = tmp_path_factory.mktemp("job")
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(d / "raw.wav"), TEXT], check=True)
    subprocess.run(["sox", str(d / "raw.wav"), "-r", "8000", "-c", "1", "-b", "16", str(d / "vm.wav")], check=True)
    return (d / "vm.wav").read_bytes()


@pytest.fixture
def job_runtime(
    settings: Settings, clock: FixedClock, redis_url: str, engine: Any, media: MediaServer
) -> Iterator[Runtime]:
    # The media server plays Twilio's API host: credentials go only to TWILIO_API_BASE_URL's own origin.
    overrides = {"redis_url": redis_url, "job_retry_intervals": (1, 1, 1), "twilio_api_base_url": media.base_url}
    runtime = build_runtime(settings.with_overrides(**overrides), clock=clock)
    runtime.cache["engine"] = engine
    rt.install(runtime)
    yield runtime
    rt.install(None)
    from ticketing.models import Base

    with runtime.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    runtime.close()


@pytest.fixture
def media(settings: Settings) -> Iterator[MediaServer]:
    server = MediaServer(settings.twilio_account_sid, settings.twilio_auth_token)
    yield server
    server.close()


def leave_voicemail(runtime: Runtime, media: MediaServer, audio: bytes, *, client: bool = True) -> tuple[int, str]:
    sid = new_sid("RE")
    media.add_recording(sid, audio)
    with transaction(runtime.sessions) as s:
        if client and s.scalar(select(func.count(Client.id))) == 0:
            acme = Client(name="Acme Dental")
            s.add(Contact(client=acme, name="Dana Whitfield", phone="+18055550142"))
        s.flush()
        t = voicemail.attach_recording(
            s,
            policy=runtime.policy,
            now=runtime.now(),
            call_sid=new_sid("CA"),
            caller="+18055550142",
            recording_sid=sid,
            recording_url=media.recording_url(sid),
            duration=9,
            critical=False,
        )
        return t.number, sid  # type: ignore[return-value]


def work(runtime: Runtime) -> None:
    dispatch_pending(runtime)
    SimpleWorker([runtime.queue()], connection=runtime.redis).work(burst=True)


def ticket(runtime: Runtime, number: int) -> Ticket:
    with runtime.sessions() as s:
        return lifecycle.get_ticket(s, number)


def test_a_voicemail_becomes_a_transcribed_ticket_with_hints(
    job_runtime: Runtime, media: MediaServer, message_wav: bytes
) -> None:
    number, sid = leave_voicemail(job_runtime, media, message_wav)
    work(job_runtime)
    t = ticket(job_runtime, number)
    assert t.transcription_state == "done"
    words = (t.transcript or "").lower()
    assert "dana" in words and "office can work" in words
    assert t.transcript_language == "en" and t.transcript_engine and "faster-whisper" in t.transcript_engine
    assert 0 < (t.transcript_confidence or 0) <= 1 and t.audio_seconds and t.audio_seconds > 5
    assert t.transcript_segments and {"start", "end", "text"} <= set(t.transcript_segments[0])
    assert t.audio_path and Path(t.audio_path).read_bytes() == message_wav
    assert t.hints and t.hints["caller_name"] == "Dana" and t.hints["suggested_priority"] in ("P1", "P2", "P3")
    assert t.summary and not t.summary.startswith("Voicemail from")
    with job_runtime.sessions() as s:
        assert s.scalar(select(OutboxMessage.completed_at).where(OutboxMessage.key == f"transcribe:{sid}")) is not None


def test_running_the_job_again_updates_nothing_twice(
    job_runtime: Runtime, media: MediaServer, message_wav: bytes
) -> None:
    number, sid = leave_voicemail(job_runtime, media, message_wav)
    work(job_runtime)
    job_runtime.queue().enqueue("workers.jobs.transcribe_recording", recording_sid=sid)
    SimpleWorker([job_runtime.queue()], connection=job_runtime.redis).work(burst=True)
    with job_runtime.sessions() as s:
        actions = s.scalars(select(AuditEntry.action).join(Ticket).where(Ticket.number == number)).all()
        assert actions.count("transcribed") == 1 and s.scalar(select(func.count(Ticket.id))) == 1


def _silence(seconds: float = 4.0) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x00" * int(8000 * seconds))
    return buf.getvalue()


def test_a_silent_recording_is_marked_no_speech_without_invented_words(
    job_runtime: Runtime, media: MediaServer
) -> None:
    number, _ = leave_voicemail(job_runtime, media, _silence())
    work(job_runtime)
    t = ticket(job_runtime, number)
    assert t.transcription_state == "no speech" and not (t.transcript or "").strip()
    assert t.hints is None


@pytest.mark.parametrize(
    ("audio", "error"),
    [(b"", "Empty"), (b"<html>not audio</html>", "Corrupt"), (b"RIFF\x00\x00\x00\x00WAVEjunkjunk", "Corrupt")],
)
def test_a_bad_download_marks_the_ticket_failed_and_it_can_be_retried(
    job_runtime: Runtime, media: MediaServer, audio: bytes, error: str, message_wav: bytes
) -> None:
    number, sid = leave_voicemail(job_runtime, media, audio)
    work(job_runtime)
    t = ticket(job_runtime, number)
    assert t.transcription_state == "failed" and error.lower() in (t.transcription_error or "").lower()
    # The recording is fixed (Twilio finished processing it); a retry from the CLI transcribes it.
    media.add_recording(sid, message_wav)
    from web.app import create_app

    result = (
        create_app(runtime=job_runtime).test_cli_runner().invoke(args=["ticket", "retry-transcription", str(number)])
    )
    assert result.exit_code == 0, result.output
    work(job_runtime)
    assert ticket(job_runtime, number).transcription_state == "done"


def test_an_oversized_recording_is_refused(job_runtime: Runtime, media: MediaServer, message_wav: bytes) -> None:
    job_runtime.settings = job_runtime.settings.with_overrides(recording_max_bytes=4096)
    number, _ = leave_voicemail(job_runtime, media, message_wav)
    work(job_runtime)
    t = ticket(job_runtime, number)
    assert t.transcription_state == "failed" and "large" in (t.transcription_error or "").lower()


def test_a_redis_restart_that_loses_the_job_is_recovered_by_the_sweeper(
    job_runtime: Runtime, media: MediaServer, message_wav: bytes, clock: FixedClock
) -> None:
    number, _ = leave_voicemail(job_runtime, media, message_wav)
    dispatch_pending(job_runtime)
    job_runtime.redis.flushdb()  # the machine's Redis keeps nothing on disk: a restart empties it
    assert sweep_once(job_runtime)["requeued"] == 0  # not stale yet
    clock.advance(minutes=job_runtime.settings.transcription_pending_minutes + 1)
    done = sweep_once(job_runtime)
    assert (done["requeued"], done["dispatched"]) == (2, 2)  # the transcription and the confirmation SMS
    SimpleWorker([job_runtime.queue()], connection=job_runtime.redis).work(burst=True)
    assert ticket(job_runtime, number).transcription_state == "done"


def test_a_worker_killed_mid_job_loses_no_transcription(
    job_runtime: Runtime, media: MediaServer, message_wav: bytes, settings: Settings, redis_url: str, clock: FixedClock
) -> None:
    import os
    import signal
    import sys
    import time

    number, sid = leave_voicemail(job_runtime, media, message_wav)
    dispatch_pending(job_runtime)
    # A real worker process, killed with SIGKILL in the middle of the transcription.
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": redis_url,
        "WORKER_HEARTBEAT_SECONDS": "1",
        "TWILIO_ACCOUNT_SID": settings.twilio_account_sid,
        "TWILIO_AUTH_TOKEN": settings.twilio_auth_token,
        "TWILIO_API_BASE_URL": job_runtime.settings.twilio_api_base_url,  # the media host the recording may come from
        "RECORDINGS_DIR": str(settings.recordings_dir),
        "PUBLIC_BASE_URL": settings.public_base_url,
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "workers.worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        registry = StartedJobRegistry(queue=job_runtime.queue())
        for _ in range(600):
            # Inside the job function: it has counted the attempt and is downloading or transcribing.
            if (
                registry.get_job_ids() == [f"transcribe-{sid}"]
                and ticket(job_runtime, number).transcription_attempts >= 1
            ):
                break
            time.sleep(0.05)
        else:
            pytest.fail("the job never started")
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
    assert ticket(job_runtime, number).transcription_state == "pending"
    # RQ keeps the job 'started' until its timeout; the worker's heartbeat (1 s here) stops at once.
    time.sleep(3.5)
    clock.advance(minutes=job_runtime.settings.transcription_pending_minutes + 1)
    assert requeue_lost(job_runtime) == 1
    work(job_runtime)
    t = ticket(job_runtime, number)
    assert t.transcription_state == "done" and t.transcription_attempts == 2
    with job_runtime.sessions() as s:
        assert s.scalar(select(func.count(Ticket.id))) == 1
        actions = s.scalars(select(AuditEntry.action).where(AuditEntry.ticket_id == t.id)).all()
        assert actions.count("transcribed") == 1


class _FirstSegmentOnly:
    """The real engine, but a decoder that stops after its first segment and hears nothing on a second try."""

    def __init__(self, engine: Any) -> None:
        self.engine, self.name, self.model, self.calls = engine, engine.name, engine.model, 0

    def transcribe(self, audio_path: Path, initial_prompt: str | None = None) -> Any:
        from dataclasses import replace

        self.calls += 1
        full = self.engine.transcribe(audio_path, initial_prompt=initial_prompt)
        kept = full.segments[:1] if self.calls == 1 else ()
        return replace(full, segments=kept, text=" ".join(s.text.strip() for s in kept), no_speech=not kept)

    def with_beam(self, beam_size: int) -> Any:
        return self


def test_speech_left_untranscribed_is_flagged_on_the_ticket_and_the_follow_up(
    job_runtime: Runtime, media: MediaServer
) -> None:
    from ticketing.paging import content_of, follow_up_sms

    audio = (Path(__file__).parents[1] / "transcription" / "fixtures" / "prompt-truncation.wav").read_bytes()
    job_runtime.cache["engine"] = _FirstSegmentOnly(job_runtime.cache["engine"])
    number, _ = leave_voicemail(job_runtime, media, audio)
    work(job_runtime)
    t = ticket(job_runtime, number)
    assert t.transcription_state == "done" and t.transcript
    assert t.transcript_missing and t.transcript_missing[-1][1] > 14
    assert t.transcript_pass == "first" and t.transcript_passes and t.transcript_passes[0]["missing"]
    with job_runtime.sessions() as s:
        entry = s.scalars(
            select(AuditEntry).where(AuditEntry.ticket_id == t.id, AuditEntry.action == "transcript incomplete")
        ).one()
        assert entry.detail["note"].startswith("part of the message may be missing: listen to 0:")
        sms = follow_up_sms(content_of(lifecycle.get_ticket(s, number)), acknowledged=False)
    assert "Part of the message may be missing: listen to 0:" in sms and len(sms) <= 320


def test_the_prompt_truncation_recording_reaches_the_ticket_whole(job_runtime: Runtime, media: MediaServer) -> None:
    audio = (Path(__file__).parents[1] / "transcription" / "fixtures" / "prompt-truncation.wav").read_bytes()
    number, _ = leave_voicemail(job_runtime, media, audio)
    work(job_runtime)
    t = ticket(job_runtime, number)
    assert t.transcription_state == "done"
    assert "tomorrow" in (t.transcript or "").lower() and not t.transcript_missing


# --- two passes: the first reading at once, the number pass as a later job ---------------------------


@pytest.fixture(scope="session")
def number_wav(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A voicemail whose number the first reading mangles ("805 555 0142" said digit by digit)."""
    from testing.corpus import build_clip

    return build_clip(tmp_path_factory.mktemp("numbers"), "num-area-code").path.read_bytes()


def first_pass(runtime: Runtime) -> None:
    """Serve only the main queue: the transcription job, not the refine job it queued."""
    work(runtime)


def every_queue(runtime: Runtime) -> None:
    SimpleWorker(runtime.queues(), connection=runtime.redis).work(burst=True)


def test_the_first_pass_lands_at_once_and_the_number_pass_replaces_it_keeping_both(
    job_runtime: Runtime, media: MediaServer, number_wav: bytes
) -> None:
    number, sid = leave_voicemail(job_runtime, media, number_wav, client=False)
    first_pass(job_runtime)
    t = ticket(job_runtime, number)
    assert t.transcription_state == "done" and t.transcript_pass == "first"
    assert "805 555 0142" not in (t.transcript or "")  # read without the number prompt
    assert [p["pass"] for p in t.transcript_passes or ()] == ["first"]
    assert job_runtime.refine_queue().count == 1 and job_runtime.queue().count == 0
    first_text = t.transcript

    every_queue(job_runtime)
    t = ticket(job_runtime, number)
    assert t.transcript_pass == "numbers" and "805 555 0142" in (t.transcript or "")
    assert [p["pass"] for p in t.transcript_passes or ()] == ["first", "numbers"]
    assert t.transcript_passes[0]["text"] == first_text and t.transcript_passes[1]["text"] == t.transcript
    assert t.hints and t.hints["callback_number"] == "+18055550142"
    with job_runtime.sessions() as s:
        entry = s.scalars(
            select(AuditEntry).where(AuditEntry.ticket_id == t.id, AuditEntry.action == "transcript refined (numbers)")
        ).one()
        assert entry.detail["first"] == first_text
        assert s.scalar(select(OutboxMessage.completed_at).where(OutboxMessage.key == f"refine:{sid}")) is not None
    from workers.jobs import refine_transcript

    assert refine_transcript(sid) == "nothing to refine"  # run again: changes nothing
    assert len(ticket(job_runtime, number).transcript_passes or ()) == 2


class _DoubtfulFirstPass:
    """The real engine, its first (greedy) readings flagged low confidence; the second pass reads as the worker's."""

    def __init__(self, engine: Any) -> None:
        self.engine, self.name, self.model = engine, engine.name, engine.model

    def transcribe(self, audio_path: Path, initial_prompt: str | None = None) -> Any:
        from dataclasses import replace

        return replace(self.engine.transcribe(audio_path, initial_prompt=initial_prompt), low_confidence=True)

    def with_beam(self, beam_size: int) -> Any:
        return self.engine.with_beam(beam_size)


def test_a_doubtful_first_reading_without_numbers_is_read_again_and_the_confident_one_shown(
    job_runtime: Runtime, media: MediaServer, tmp_path: Path
) -> None:
    from testing.corpus import build_clip

    # Asterisk's recorded demo message: clear speech, no number, nothing left out.
    wav = build_clip(tmp_path, "human-congrats").path.read_bytes()
    job_runtime.cache["engine"] = _DoubtfulFirstPass(job_runtime.cache["engine"])
    number, sid = leave_voicemail(job_runtime, media, wav, client=False)
    first_pass(job_runtime)
    t = ticket(job_runtime, number)
    assert t.transcript_low_confidence and not t.transcript_missing
    assert job_runtime.refine_queue().count == 1  # no number, no gap: queued for the doubt alone

    every_queue(job_runtime)
    t = ticket(job_runtime, number)
    assert t.transcript_pass == "numbers" and not t.transcript_low_confidence
    assert [p["pass"] for p in t.transcript_passes or ()] == ["first", "numbers"]
    assert "congratulations" in (t.transcript or "").lower()


class _MisheardFirstPass:
    """The real engine, its first reading of the number misheard as a whole but wrong number (tiny.en's greedy
    reading does this now and then: "805 555 5018" for "805 555 0188"); the second pass reads as the worker's."""

    TEXT = "My number is area code 805 555 0124."

    def __init__(self, engine: Any) -> None:
        self.engine, self.name, self.model = engine, engine.name, engine.model

    def transcribe(self, audio_path: Path, initial_prompt: str | None = None) -> Any:
        from dataclasses import replace

        heard = self.engine.transcribe(audio_path, initial_prompt=initial_prompt)
        return replace(heard, text=self.TEXT, low_confidence=False)

    def with_beam(self, beam_size: int) -> Any:
        return self.engine.with_beam(beam_size)


def test_a_number_the_second_reading_hears_otherwise_is_kept_and_shown_to_check(
    job_runtime: Runtime, media: MediaServer, number_wav: bytes
) -> None:
    from ticketing.transcripts import ticket_number_check

    job_runtime.cache["engine"] = _MisheardFirstPass(job_runtime.cache["engine"])
    number, sid = leave_voicemail(job_runtime, media, number_wav, client=False)
    first_pass(job_runtime)
    assert ticket_number_check(*_shown(ticket(job_runtime, number))) is None  # one reading, a whole number
    with transaction(job_runtime.sessions) as s:
        lifecycle.get_ticket(s, number).priority = "P1"  # the people paged for a P1 are told too
    every_queue(job_runtime)
    t = ticket(job_runtime, number)
    # As many whole-number digits and no less confident: the first reading stays, the second is kept too.
    assert t.transcript == _MisheardFirstPass.TEXT and t.transcript_pass == "first"
    assert [p["pass"] for p in t.transcript_passes or ()] == ["first", "numbers"]
    assert "805 555 0142" in t.transcript_passes[1]["text"]
    # Each reading keeps where its numbers were said (the segment each was read from).
    start, end = t.transcript_passes[1]["numbers_at"]["805 555 0142"]
    assert 0 <= start < end <= (t.audio_seconds or 0) + 1
    check = ticket_number_check(*_shown(t))
    assert check is not None and check.unsure == (("805 555 0124", "another reading heard 805 555 0142"),)
    with job_runtime.sessions() as s:
        actions = s.scalars(select(AuditEntry.action).where(AuditEntry.ticket_id == t.id)).all()
        assert "transcript read again (first pass kept)" in actions
        # The first reading's number is not the caller ID (the callback number): named at once, then again
        # with what the second reading heard.
        first, entry = s.scalars(
            select(AuditEntry)
            .where(AuditEntry.ticket_id == t.id, AuditEntry.action == "numbers to check")
            .order_by(AuditEntry.id)
        ).all()
        assert "805 555 0124 (not the callback number 805 555 0142)" in first.detail["note"]
        assert entry.detail["note"] == check.note and entry.detail["heard"] == ["805 555 0142"]
        # Nobody was paged in this test: the follow-up job ran and found no one to tell.
        key = f"numbers-to-check:{number}"
        assert s.scalar(select(OutboxMessage.completed_at).where(OutboxMessage.key == key)) is not None


def _shown(t: Ticket) -> tuple[Any, ...]:
    return t.transcript, t.transcript_pass, t.transcript_passes


def test_a_transcript_corrected_by_hand_is_never_replaced_by_the_number_pass(
    job_runtime: Runtime, media: MediaServer, number_wav: bytes
) -> None:
    number, sid = leave_voicemail(job_runtime, media, number_wav, client=False)
    first_pass(job_runtime)
    corrected = "My number is area code 805 555 0142, as the coordinator heard it."
    with transaction(job_runtime.sessions) as s:
        lifecycle.correct_transcript(
            s, lifecycle.get_ticket(s, number), corrected, actor="coordinator", now=job_runtime.now()
        )
    every_queue(job_runtime)
    t = ticket(job_runtime, number)
    assert t.transcript == corrected and t.transcript_pass == "first"
    assert [p["pass"] for p in t.transcript_passes or ()] == ["first"]
    with job_runtime.sessions() as s:
        actions = s.scalars(select(AuditEntry.action).where(AuditEntry.ticket_id == t.id)).all()
        assert "transcript refined (numbers)" not in actions
        assert s.scalar(select(OutboxMessage.completed_at).where(OutboxMessage.key == f"refine:{sid}")) is not None


def test_a_recording_without_speech_queues_no_number_pass(job_runtime: Runtime, media: MediaServer) -> None:
    number, sid = leave_voicemail(job_runtime, media, _silence())
    first_pass(job_runtime)
    assert ticket(job_runtime, number).transcription_state == "no speech"
    assert job_runtime.refine_queue().count == 0
    with job_runtime.sessions() as s:
        assert s.scalar(select(OutboxMessage.id).where(OutboxMessage.key == f"refine:{sid}")) is None


def test_a_first_pass_that_heard_nothing_of_found_speech_is_read_again(
    job_runtime: Runtime, media: MediaServer, tmp_path: Path
) -> None:
    # Asterisk's recorded "2 hundred 50 dollars": tiny.en's first reading is empty although the voice
    # activity detector finds speech; the ticket says so at once, and the second reading fills it in.
    from testing.corpus import build_clip

    wav = build_clip(tmp_path, "hnum-amount").path.read_bytes()
    number, sid = leave_voicemail(job_runtime, media, wav, client=False)
    first_pass(job_runtime)
    t = ticket(job_runtime, number)
    # Whisper's temperature fallback samples: the first reading is usually empty, now and then whole.
    # Never silent: what it left out is on the ticket at once; either way a second reading is queued.
    assert t.transcript_missing or "dollars" in (t.transcript or "")
    assert t.transcription_state == ("no speech" if not t.transcript else "done")
    assert job_runtime.refine_queue().count == 1

    every_queue(job_runtime)
    t = ticket(job_runtime, number)
    assert t.transcription_state == "done"
    assert "dollars" in (t.transcript or "") and not t.transcript_missing
    # Both readings are kept; the second is shown where the first had left the speech out.
    assert [p["pass"] for p in t.transcript_passes or ()] == ["first", "numbers"]
