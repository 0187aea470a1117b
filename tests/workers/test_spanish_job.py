"""Spanish voicemails through the transcription job: real Redis, database, Whisper models and espeak-ng audio."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rq import SimpleWorker
from sqlalchemy import select

from ivr.simulate import MediaServer, new_sid
from runtime import Runtime
from testing.corpus import SPOKEN, build_clip
from testing.spanish import build_spanish_clip
from testing.twilio_server import TwilioTestServer
from tests.workers.test_transcription_job import engine, job_runtime, leave_voicemail, media, ticket, work
from ticketing import lifecycle, outbox, voicemail
from ticketing.db import transaction
from ticketing.models import AuditEntry, OutboxMessage, Ticket
from workers.dispatch import dispatch_pending

__all__ = ["engine", "job_runtime", "media"]  # fixtures shared with the English job tests
CALLER = "+18055550142"


@pytest.fixture(scope="session")
def audio_dir(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated clips, in pytest's cache as the transcription tests keep them."""
    cache = getattr(pytestconfig, "cache", None)
    if cache is None:
        return tmp_path_factory.mktemp("test-audio")
    return Path(cache.mkdir("transcription-audio"))


@pytest.fixture(scope="session")
def multilingual() -> Any:
    """The bundled multilingual base model, loaded once for the session."""
    from transcription.faster import FasterWhisperEngine

    ml = FasterWhisperEngine("bundled:base")
    ml.load()
    return ml


@pytest.fixture
def es_runtime(job_runtime: Runtime, multilingual: Any) -> Iterator[Runtime]:
    job_runtime.cache["multilingual"] = (multilingual, None)
    yield job_runtime


def _choose_spanish(runtime: Runtime, number: int) -> None:
    with transaction(runtime.sessions) as s:
        s.scalars(select(Ticket).where(Ticket.number == number)).one().language = "es"


def _actions(runtime: Runtime, number: int) -> list[AuditEntry]:
    with runtime.sessions() as s:
        return list(s.scalars(select(AuditEntry).join(Ticket).where(Ticket.number == number)).all())


def test_a_spanish_voicemail_gets_a_spanish_transcript_and_an_english_translation(
    es_runtime: Runtime, media: MediaServer, audio_dir: Path
) -> None:
    audio = build_spanish_clip(audio_dir, "es-maria-servidor").read_bytes()
    number, sid = leave_voicemail(es_runtime, media, audio)
    _choose_spanish(es_runtime, number)
    work(es_runtime)
    t = ticket(es_runtime, number)
    assert t.transcription_state == "done" and t.transcript_language == "es"
    spanish = (t.transcript or "").lower()
    # Whisper's fallback samples and the base model mishears espeak's Spanish: most of the words, not all.
    heard = {"hola", "maría", "urgente", "gracias", "oficina", "trabajar", "servidor", "clínica", "sonrisa"}
    assert len(heard & set(re.findall(r"\w+", spanish))) >= 4, spanish
    assert t.transcript_engine and "base" in t.transcript_engine
    english = (t.transcript_translation or "").lower()
    assert english and ("hello" in english or " i " in f" {english} ") and "hola" not in english
    assert [p["pass"] for p in t.transcript_passes or ()] == ["first", "translation"]
    assert (
        t.transcript_passes[1]["translated_from"] == "es" and t.transcript_passes[1]["text"] == t.transcript_translation
    )
    # Hints read the Spanish; the caller's own choice of priority stays theirs.
    assert t.hints and t.priority == "P3"
    if "urgente" in spanish:
        assert "urgent" in t.hints["cues"]
    if "soy maría" in spanish:
        assert t.hints["caller_name"] and t.hints["caller_name"].startswith("Mar")
    actions = {a.action: a.detail for a in _actions(es_runtime, number)}
    assert actions["transcribed"]["language"] == "es" and actions["transcribed"]["call_language"] == "es"
    assert actions["transcribed"]["language_check"]["detected"] == "es"
    assert actions["transcript translated"]["translation"] == t.transcript_translation
    # The English number prompt is never run over a Spanish transcript.
    with es_runtime.sessions() as s:
        assert s.scalar(select(OutboxMessage).where(OutboxMessage.key == f"refine:{sid}")) is None


def test_a_caller_who_chose_spanish_but_spoke_english_gets_an_english_transcript(
    es_runtime: Runtime, media: MediaServer, audio_dir: Path
) -> None:
    dana = next(r for r in SPOKEN if r.name == "dana-server-down")
    number, _ = leave_voicemail(es_runtime, media, build_clip(audio_dir, dana.name).path.read_bytes())
    _choose_spanish(es_runtime, number)
    work(es_runtime)
    t = ticket(es_runtime, number)
    assert t.transcript_language == "en" and t.transcript_translation is None
    assert "server" in (t.transcript or "").lower() and "tiny.en" in (t.transcript_engine or "")
    assert [p["pass"] for p in t.transcript_passes or ()][0] == "first"
    detail = next(a.detail for a in _actions(es_runtime, number) if a.action == "transcribed")
    assert detail["language_check"]["detected"] == "en" and detail["call_language"] == "es"


def test_without_a_multilingual_model_a_spanish_callers_ticket_says_so(
    job_runtime: Runtime, media: MediaServer, audio_dir: Path
) -> None:
    job_runtime.settings = job_runtime.settings.with_overrides(whisper_multilingual_model="/nonexistent/whisper-base")
    job_runtime.cache.pop("multilingual", None)
    number, _ = leave_voicemail(job_runtime, media, build_spanish_clip(audio_dir, "es-paula-wifi").read_bytes())
    _choose_spanish(job_runtime, number)
    work(job_runtime)
    t = ticket(job_runtime, number)
    assert t.transcription_state in ("done", "no speech") and t.transcript_translation is None
    assert (
        t.transcript_low_confidence
        and t.transcript_passes
        and "no multilingual model" in t.transcript_passes[0]["note"]
    )
    notes = [
        a.detail for a in _actions(job_runtime, number) if a.action == "transcribed without the multilingual model"
    ]
    assert notes and "Spanish" in notes[0]["note"] and "/nonexistent/whisper-base" in notes[0]["note"]


def test_an_english_callers_spanish_message_that_tiny_en_cannot_read_is_read_again_in_spanish(
    es_runtime: Runtime, media: MediaServer, audio_dir: Path
) -> None:
    # tiny.en hears nothing in this one (the speech is "missing"): the multilingual model is asked.
    number, sid = leave_voicemail(es_runtime, media, build_spanish_clip(audio_dir, "es-maria-servidor").read_bytes())
    work(es_runtime)
    t = ticket(es_runtime, number)
    detail = next(a.detail for a in _actions(es_runtime, number) if a.action == "transcribed")
    assert detail["call_language"] == "en" and "english_reading" in detail
    assert detail["language_check"]["detected"] == "es" and detail["language_check"]["probability"] >= 0.8
    assert t.transcript_language == "es" and t.transcript_translation and "hola" in (t.transcript or "").lower()
    assert [p["pass"] for p in t.transcript_passes or ()] == ["first", "translation"]
    with es_runtime.sessions() as s:
        assert s.scalar(select(OutboxMessage).where(OutboxMessage.key == f"refine:{sid}")) is None


# --- the caller's SMS first, the transcript next, its translation last ---------------------------------------


@pytest.fixture
def texting_runtime(es_runtime: Runtime, twilio_api: TwilioTestServer) -> Iterator[Runtime]:
    """The Spanish job runtime, sending SMS to the Twilio test server (which also serves the recordings)."""
    es_runtime.settings = es_runtime.settings.with_overrides(**twilio_api.settings_overrides())
    yield es_runtime


def _spanish_voicemail(runtime: Runtime, twilio_api: TwilioTestServer, audio_dir: Path, *, p1: bool = False) -> int:
    audio = build_spanish_clip(audio_dir, "es-maria-servidor").read_bytes()
    sid = new_sid("RE")
    twilio_api.add_recording(sid, audio)
    with transaction(runtime.sessions) as s:
        t = voicemail.attach_recording(
            s,
            policy=runtime.policy,
            now=runtime.now(),
            call_sid=new_sid("CA"),
            caller=CALLER,
            recording_sid=sid,
            recording_url=twilio_api.recording_url(sid),
            duration=9,
            critical=p1,
            language="es",
        )
        return t.number  # type: ignore[return-value]


def api_json(s: Any, runtime: Runtime, t: Ticket) -> dict[str, Any]:
    """The ticket as the JSON API returns it (the console's ticket page reads the same view)."""
    from web.api import ticket_json
    from web.console import present

    (view,) = present.ticket_views(s, [t], runtime.policy, runtime.now())
    return ticket_json(view)


def _log(runtime: Runtime, number: int) -> list[str]:
    """The ticket's history, oldest first."""
    return [a.action for a in sorted(_actions(runtime, number), key=lambda a: a.id)]


def test_a_spanish_callers_sms_goes_out_before_the_transcription_starts_and_in_spanish(
    texting_runtime: Runtime, twilio_api: TwilioTestServer, audio_dir: Path
) -> None:
    number = _spanish_voicemail(texting_runtime, twilio_api, audio_dir)
    dispatch_pending(texting_runtime)
    # The worker serves its queues in order (as workers.worker does): the text comes before the transcription.
    SimpleWorker(texting_runtime.queues(), connection=texting_runtime.redis).work(burst=True)
    log = _log(texting_runtime, number)
    assert log.index("confirmation sent") < log.index("audio stored") < log.index("transcribed")
    assert log.index("transcribed") < log.index("transcript translated")
    (sms,) = twilio_api.messages(to=CALLER)
    body = sms.param("Body") or ""
    assert f"ticket nuevo creado. Ticket #{number}" in body and "prioridad P3 - Media" in body


def test_the_pager_sends_the_confirmation_while_the_transcription_still_waits_for_a_worker(
    texting_runtime: Runtime, twilio_api: TwilioTestServer, audio_dir: Path
) -> None:
    number = _spanish_voicemail(texting_runtime, twilio_api, audio_dir)
    dispatch_pending(texting_runtime)
    # The pager process (``--paging-only``): no model, pages and callers' texts only.
    pager = [texting_runtime.paging_queue(), texting_runtime.texts_queue()]
    SimpleWorker(pager, connection=texting_runtime.redis).work(burst=True)
    assert "confirmation sent" in _log(texting_runtime, number)
    assert ticket(texting_runtime, number).transcription_state == "pending"
    assert len(twilio_api.messages(to=CALLER)) == 1
    assert texting_runtime.queue().count == 1  # the transcription, untouched


def test_the_spanish_transcript_is_on_the_ticket_before_its_translation_is_made(
    texting_runtime: Runtime, twilio_api: TwilioTestServer, audio_dir: Path
) -> None:
    number = _spanish_voicemail(texting_runtime, twilio_api, audio_dir)
    dispatch_pending(texting_runtime)
    main = SimpleWorker([texting_runtime.queue()], connection=texting_runtime.redis)
    main.work(burst=True, max_jobs=1)  # the transcription alone
    with texting_runtime.sessions() as s:
        t = lifecycle.get_ticket(s, number)
        assert t.transcription_state == "done" and t.transcript_language == "es" and t.transcript
        assert t.transcript_translation is None and voicemail.translation_state(t) == "pending"
        assert [p["pass"] for p in t.transcript_passes or ()] == ["first"]
        assert api_json(s, texting_runtime, t)["transcript"]["translation_state"] == "pending"
    assert "transcript translated" not in _log(texting_runtime, number)
    with texting_runtime.sessions() as s:
        (message,) = s.scalars(select(OutboxMessage).where(OutboxMessage.kind == outbox.TRANSLATE)).all()
        assert message.completed_at is None
    SimpleWorker([texting_runtime.queue()], connection=texting_runtime.redis).work(burst=True)
    with texting_runtime.sessions() as s:
        t = lifecycle.get_ticket(s, number)
        assert t.transcript_translation and voicemail.translation_state(t) == "done"
        assert [p["pass"] for p in t.transcript_passes or ()] == ["first", "translation"]
        assert api_json(s, texting_runtime, t)["transcript"]["translation_state"] == "done"
    log = _log(texting_runtime, number)
    assert log.index("transcribed") < log.index("transcript translated") and log.count("transcript translated") == 1


class _BrokenTranslation:
    """The multilingual model whose translate task fails (out of memory, a corrupt model file...)."""

    def __init__(self, real: Any) -> None:
        self.real, self.tries = real, 0

    def bound(self, language: str | None, task: str = "transcribe") -> Any:
        if task == "translate":
            self.tries += 1
            raise RuntimeError("CTranslate2: out of memory")
        return self.real.bound(language, task)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_a_failed_translation_is_retried_then_shown_and_the_transcript_stays(
    texting_runtime: Runtime, twilio_api: TwilioTestServer, audio_dir: Path, multilingual: Any
) -> None:
    broken = _BrokenTranslation(multilingual)
    texting_runtime.cache["multilingual"] = (broken, None)
    texting_runtime.settings = texting_runtime.settings.with_overrides(job_retry_intervals=(0,))
    number = _spanish_voicemail(texting_runtime, twilio_api, audio_dir)
    dispatch_pending(texting_runtime)
    SimpleWorker(texting_runtime.queues(), connection=texting_runtime.redis).work(burst=True)
    assert broken.tries == 2  # the first try and its one retry
    with texting_runtime.sessions() as s:
        t = lifecycle.get_ticket(s, number)
        assert t.transcription_state == "done" and t.transcript and t.transcript_translation is None
        assert voicemail.translation_state(t) == "failed"
        assert "out of memory" in (voicemail.translation_error(t) or "")
        shown = api_json(s, texting_runtime, t)["transcript"]
        assert shown["translation_state"] == "failed" and "out of memory" in shown["translation_error"]
        assert shown["text"] == t.transcript
    assert _log(texting_runtime, number).count("translation failed") == 1


def test_a_p1_spanish_voicemail_pages_the_transcript_then_the_translation(
    texting_runtime: Runtime, twilio_api: TwilioTestServer, audio_dir: Path
) -> None:
    number = _spanish_voicemail(texting_runtime, twilio_api, audio_dir, p1=True)
    dispatch_pending(texting_runtime)
    worker = SimpleWorker(texting_runtime.queues(), connection=texting_runtime.redis)
    worker.work(burst=True)
    log = _log(texting_runtime, number)
    assert log.index("transcript sent to on-call") < log.index("transcript translated")
    assert log.index("transcript translated") < log.index("translation sent to on-call")
    follow_ups: dict[str, list[str]] = {}
    for m in twilio_api.messages():
        body = m.param("Body") or ""
        if f"Ticket #{number} transcript" in body:
            follow_ups.setdefault(m.param("To") or "", []).append(body)
    assert follow_ups  # every person paged: the Spanish transcript first, then its translation, marked as one
    for bodies in follow_ups.values():
        assert len(bodies) == 2
        assert "Translated from Spanish" not in bodies[0] and "Translated from Spanish" in bodies[1]
