"""Spanish voicemails through the transcription job: real Redis, database, Whisper models and espeak-ng audio."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ivr.simulate import MediaServer
from runtime import Runtime
from testing.corpus import SPOKEN, build_clip
from testing.spanish import build_spanish_clip
from tests.workers.test_transcription_job import engine, job_runtime, leave_voicemail, media, ticket, work
from ticketing.db import transaction
from ticketing.models import AuditEntry, OutboxMessage, Ticket

__all__ = ["engine", "job_runtime", "media"]  # fixtures shared with the English job tests


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
