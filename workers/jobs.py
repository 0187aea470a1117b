"""RQ job entry points. Each takes plain IDs, is idempotent, and keeps the database the source of truth."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rq import get_current_job
from sqlalchemy import select

import runtime as rt
from languages import local_time, priority_label, translator
from ticketing import audit, callbacks, lifecycle, outbox, phone, texts, voicemail
from ticketing.db import transaction
from ticketing.models import Ticket, TranscriptionState
from ticketing.priority import Priority

log = logging.getLogger(__name__)
WORKER = voicemail.TRANSCRIBER


def _engine(runtime: rt.Runtime) -> Any:
    """The transcription engine of this worker process (model loaded once, on first use)."""
    engine = runtime.cache.get("engine")
    if engine is None:
        from transcription.engines import load_engine

        engine = runtime.cache["engine"] = load_engine(runtime.settings)
    return engine


def _refine_engine(runtime: rt.Runtime) -> Any:
    """The engine of the second pass: the same model, reading with WHISPER_REFINE_BEAM_SIZE."""
    engine = runtime.cache.get("refine-engine")
    if engine is None:
        engine = runtime.cache["refine-engine"] = _engine(runtime).with_beam(runtime.settings.whisper_refine_beam_size)
    return engine


_UNAVAILABLE = "multilingual-unavailable"


def _multilingual(runtime: rt.Runtime) -> tuple[Any, str | None]:
    """The multilingual engine (loaded on the first non-English voicemail), or (None, why it is unavailable).

    The default engine serves when it is multilingual itself (WHISPER_MODEL=bundled:base). A model
    that cannot be loaded is not tried again in this process: the voicemails of callers who chose
    Spanish are then transcribed with the default engine, and their tickets say so.
    """
    cached = runtime.cache.get("multilingual")
    if cached is not None:
        return cached
    settings = runtime.settings
    name = settings.whisper_multilingual_model
    result: tuple[Any, str | None]
    try:
        if name.lower() in ("off", "none", "no", "false", "0"):
            raise LookupError("WHISPER_MULTILINGUAL_MODEL is off")
        if settings.transcription_engine not in ("", "faster-whisper"):
            raise LookupError(f"no multilingual model with TRANSCRIPTION_ENGINE={settings.transcription_engine}")
        default = _engine(runtime)
        if name == settings.whisper_model and hasattr(default, "bound"):
            engine = _refine_engine(runtime)  # its own languages read with the beam of the second pass
        else:
            from transcription.faster import FasterWhisperEngine

            engine = FasterWhisperEngine(
                model=name, device=settings.whisper_device, compute_type=settings.whisper_compute_type
            )
        engine.load()
        if not engine.multilingual:
            raise LookupError(f"WHISPER_MULTILINGUAL_MODEL={name} is an English-only model")
        result = (engine, None)
    except Exception as exc:  # noqa: BLE001 - any failure: English transcription still works, visibly
        log.warning("multilingual transcription unavailable: %s", exc)
        result = (None, f"{type(exc).__name__}: {exc}"[:300])
    runtime.cache["multilingual"] = result
    return result


def warm_up(runtime: rt.Runtime) -> str | None:
    """Load the transcription model now, so the first voicemail does not wait; returns its name, or None."""
    try:
        engine = _engine(runtime)
        load = getattr(engine, "load", None)
        if callable(load):
            load()
        return f"{engine.name} ({engine.model})"
    except Exception:  # noqa: BLE001 - a broken model must not stop paging and SMS jobs; transcriptions fail visibly
        log.exception("could not load the transcription model at start-up")
        return None


def _retries_left() -> int:
    job = get_current_job()
    return int(getattr(job, "retries_left", 0) or 0) if job is not None else 0


def transcribe_recording(recording_sid: str) -> str:
    """Download, store and transcribe one voicemail, then attach the text and triage hints to its ticket."""
    from transcription import errors as terr

    runtime = rt.current()
    key = f"transcribe:{recording_sid}"
    found = _load_voicemail(runtime, recording_sid)
    if isinstance(found, str):
        return found
    number = found.number
    with transaction(runtime.sessions) as s:
        t = lifecycle.get_ticket(s, number)
        t.transcription_attempts = (t.transcription_attempts or 0) + 1
    try:
        stored = _stored_audio(runtime, found, recording_sid)
        started = runtime.now()
        reading = _read_voicemail(runtime, stored, found.language, found.prompts, found.prompt)
    except terr.TranscriptionError as exc:
        # Twilio answers 404 for a moment while the media is still being processed: retry that too.
        retryable = isinstance(exc, (terr.RecordingUnavailableError, terr.RecordingNotFoundError))
        if retryable and _retries_left() > 0:
            log.warning("recording %s not available yet, retrying: %s", recording_sid, exc)
            raise
        _mark_failed(runtime, number, f"{type(exc).__name__}: {exc}", key)
        return "failed"
    except Exception as exc:
        if _retries_left() > 0:
            raise
        _mark_failed(runtime, number, f"{type(exc).__name__}: {exc}", key)
        raise
    with transaction(runtime.sessions) as s:
        done = _transcribed(reading, found.language, (runtime.now() - started).total_seconds())
        voicemail.record_transcript(
            s, lifecycle.get_ticket(s, number), done, recording_sid=recording_sid, now=runtime.now()
        )
    if runtime.settings.delete_twilio_recording:
        _delete_twilio_copy(runtime, recording_sid, number)
    return "no speech" if reading.transcript.no_speech else "transcribed"


@dataclass
class _Voicemail:
    """What the transcription job needs of a voicemail ticket, read before the slow work starts."""

    number: int
    url: str
    stored: Path | None
    language: str
    prompt: str | None = None
    prompts: dict[str, str | None] = field(default_factory=dict)


def _load_voicemail(runtime: rt.Runtime, recording_sid: str) -> _Voicemail | str:
    """The voicemail of a recording, or why there is nothing to transcribe."""
    from transcription.hints import initial_prompt_for, translation_prompt_for

    with runtime.sessions() as s:
        ticket = s.scalars(select(Ticket).where(Ticket.recording_sid == recording_sid)).first()
        if ticket is None:
            log.error("no ticket for recording %s", recording_sid)
            return "no ticket"
        if ticket.transcription_state in (TranscriptionState.DONE.value, TranscriptionState.NO_SPEECH.value):
            with transaction(runtime.sessions) as s2:
                outbox.complete(s2, f"transcribe:{recording_sid}", runtime.now())
            return "already transcribed"
        found = _Voicemail(
            number=ticket.number,
            url=ticket.recording_url or "",
            stored=Path(ticket.audio_path) if ticket.audio_path else None,
            language=ticket.language or "en",
        )
        if ticket.client is not None:
            contacts = [c.name for c in ticket.client.contacts]
            found.prompt = initial_prompt_for(ticket.client.name, contacts)
            found.prompts = {
                "en": found.prompt,
                "es": initial_prompt_for(ticket.client.name, contacts, language="es"),
                "translate": translation_prompt_for(contacts),
            }
    return found


def _stored_audio(runtime: rt.Runtime, found: _Voicemail, recording_sid: str) -> Path:
    """The recording on disk, downloaded (and recorded on the ticket) the first time."""
    from transcription.download import download_recording

    if found.stored is not None and found.stored.exists():
        return found.stored
    settings = runtime.settings
    stored = download_recording(
        found.url,
        settings.recordings_dir,
        recording_sid,
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token,
        max_bytes=settings.recording_max_bytes,
        api_base_url=settings.twilio_api_base_url,
        local_media=settings.dev_mode,
    )
    with transaction(runtime.sessions) as s:
        t = lifecycle.get_ticket(s, found.number)
        t.audio_path = str(stored)
        detail = {"bytes": stored.stat().st_size}
        audit.audit(s, t, actor=WORKER, action="audio stored", now=runtime.now(), detail=detail)
    return stored


def _transcribed(reading: _Reading, call_language: str, seconds: float) -> voicemail.Transcribed:
    """A reading as the domain records it: its passes, its triage hints, whether to read it again."""
    from transcription.hints import triage_hints
    from transcription.pipeline import worth_reading_again

    transcript, translation = reading.transcript, reading.translation
    hints = None
    if not transcript.no_speech:
        hints = triage_hints(transcript.text, language=transcript.language)
        if translation is not None and hints.callback_number is None:
            # The number may survive in the translation where the transcript lost it.
            hints = replace(hints, callback_number=triage_hints(translation.text).callback_number)
    passes = [_pass_record(voicemail.FIRST_PASS, transcript, language=transcript.language)]
    if translation is not None:
        passes.append(_pass_record(TRANSLATION_PASS, translation, language="en", source=transcript.language))
    if reading.note:
        passes[0]["note"] = reading.note
    return voicemail.Transcribed(
        transcript=transcript,
        translation=translation,
        passes=passes,
        hints=hints,
        call_language=call_language,
        seconds=seconds,
        note=reading.note,
        audit=reading.audit,
        # A number to read again, speech left out or a doubtful reading (English readings: the number
        # prompt is English): the second pass reads it again with a beam search.
        read_again=transcript.language == "en" and not reading.note and worth_reading_again(transcript),
        # Another language read by the multilingual model: its English translation is the next job.
        translate=transcript.language != "en" and translation is None and not reading.note,
    )


TRANSLATION_PASS = voicemail.TRANSLATION_PASS


@dataclass
class _Reading:
    transcript: Any
    translation: Any = None
    note: str | None = None  # why a caller's chosen language could not be honoured
    audit: dict[str, Any] = field(default_factory=dict)


def _read_voicemail(
    runtime: rt.Runtime, stored: Path, chosen: str, prompts: dict[str, str | None], prompt: str | None
) -> _Reading:
    """The voicemail read in the language spoken (detected from the audio) and translated where not English.

    A caller who chose English gets today's path (the default engine, English); only a low-confidence
    reading, or one that left speech untranscribed, is checked with the multilingual model, and read
    again in Spanish where clearly Spanish.
    """
    from transcription.pipeline import transcribe_spoken_language, transcribe_voicemail

    settings = runtime.settings
    if chosen == "en":
        # The first pass only: the number pass is a second job (``refine_transcript``) on the queue
        # served last, so this transcript reaches the ticket as fast as before.
        first = transcribe_voicemail(_engine(runtime), stored, initial_prompt=prompt, number_pass=False)
        # tiny.en on Spanish speech mostly hears nothing (the speech is then "missing"), else little.
        doubtful = (first.low_confidence and not first.no_speech) or bool(first.missing)
        if not (settings.recheck_low_confidence_language and doubtful):
            return _Reading(first)
        multilingual, _ = _multilingual(runtime)
        if multilingual is None:
            return _Reading(first)
        language, probability = multilingual.detect_language(stored, ("en", "es"))
        check = {"language_check": {"detected": language, "probability": round(probability, 3)}}
        if language != "es" or probability < SPANISH_RECHECK_PROBABILITY:
            return _Reading(first, audit=check)
        reading = transcribe_spoken_language(
            multilingual, _engine(runtime), stored, prompts=prompts, language=language, translate=False
        )
        return _Reading(reading.transcript, audit=check | {"english_reading": first.text})
    multilingual, why = _multilingual(runtime)
    if multilingual is None:
        first = transcribe_voicemail(_engine(runtime), stored, initial_prompt=prompt, number_pass=False)
        note = (
            f"The caller chose {_language_name(chosen)} on the call, but no multilingual model is available "
            f"({why}): transcribed with the English model, not translated. Listen to the recording."
        )
        return _Reading(first, note=note)
    candidates = tuple(dict.fromkeys(("en", chosen)))
    # The transcript alone: it goes on the ticket at once, the English translation follows as a job of its own.
    reading = transcribe_spoken_language(
        multilingual, _engine(runtime), stored, candidates=candidates, prompts=prompts, translate=False
    )
    detected = {"detected": reading.detected, "probability": round(reading.probability, 3)}
    return _Reading(reading.transcript, audit={"language_check": detected})


def translate_transcript(recording_sid: str) -> str:
    """Translate a voicemail transcribed in another language into English and put it beside the transcript.

    The transcript is already on the ticket (the transcription job committed it); a failure here leaves it
    there and, after the job's retries, says "translation failed" on the ticket.
    """
    from transcription.hints import translation_prompt_for, triage_hints
    from transcription.pipeline import translate_voicemail

    runtime = rt.current()
    key = f"{outbox.TRANSLATE}:{recording_sid}"
    with runtime.sessions() as s:
        ticket = s.scalars(select(Ticket).where(Ticket.recording_sid == recording_sid)).first()
        state = voicemail.translation_state(ticket) if ticket is not None else None
        if ticket is None or state in (None, "done") or not ticket.audio_path:
            reason = "nothing to translate" if state != "done" else "already translated"
        else:
            reason = None
            number, stored, language = ticket.number, Path(ticket.audio_path), ticket.transcript_language or "en"
            contacts = [c.name for c in ticket.client.contacts] if ticket.client is not None else []
    if reason is not None:
        with transaction(runtime.sessions) as s:
            outbox.complete(s, key, runtime.now())
        return reason
    try:
        multilingual, why = _multilingual(runtime)
        if multilingual is None:
            raise LookupError(f"no multilingual model: {why}")
        started = runtime.now()
        translation = translate_voicemail(multilingual, stored, language, prompt=translation_prompt_for(contacts))
    except Exception as exc:
        if _retries_left() > 0:
            raise
        with transaction(runtime.sessions) as s:
            error = f"{type(exc).__name__}: {exc}"
            voicemail.record_translation_failed(
                s, lifecycle.get_ticket(s, number), error, recording_sid=recording_sid, now=runtime.now()
            )
        log.error("translation of ticket %s failed: %s", number, exc)
        return "failed"
    with transaction(runtime.sessions) as s:
        record = _pass_record(TRANSLATION_PASS, translation, language="en", source=language)
        record["seconds"] = round((runtime.now() - started).total_seconds(), 2)
        voicemail.record_translation(
            s,
            lifecycle.get_ticket(s, number),
            translation,
            record=record,
            callback_hint=triage_hints(translation.text).callback_number if translation.text else None,
            recording_sid=recording_sid,
            now=runtime.now(),
        )
    return "translated"


SPANISH_RECHECK_PROBABILITY = 0.8  # an English caller's low-confidence message read again in Spanish above this


def _language_name(code: str) -> str:
    from transcription.pipeline import LANGUAGE_NAMES

    return LANGUAGE_NAMES.get(code, code)


def refine_transcript(recording_sid: str) -> str:
    """Read a transcribed voicemail again with the number prompt (the second pass) and show that
    reading where the pipeline keeps it; both passes stay on the ticket. A transcript the
    coordinator corrected by hand is never replaced."""
    from transcription.hints import initial_prompt_for, triage_hints
    from transcription.pipeline import read_again, replaces

    runtime = rt.current()
    key = f"refine:{recording_sid}"
    with runtime.sessions() as s:
        ticket = s.scalars(select(Ticket).where(Ticket.recording_sid == recording_sid)).first()
        first = voicemail.first_pass(ticket)
        if ticket is None or first is None or not ticket.audio_path or not Path(ticket.audio_path).exists():
            reason = "nothing to refine"
        elif voicemail.hand_corrected(ticket, first):
            reason = "corrected by hand"
        else:
            reason = None
            number, stored = ticket.number, Path(ticket.audio_path)
            prompt = None
            if ticket.client is not None:
                prompt = initial_prompt_for(ticket.client.name, [c.name for c in ticket.client.contacts])
            shown = _transcript_of(ticket)
    if reason is not None:
        with transaction(runtime.sessions) as s:
            outbox.complete(s, key, runtime.now())
        return reason
    started = runtime.now()
    second = read_again(_refine_engine(runtime), stored, shown, initial_prompt=prompt)
    with transaction(runtime.sessions) as s:
        t = lifecycle.get_ticket(s, number)
        first = voicemail.first_pass(t)
        if second is None or first is None or voicemail.hand_corrected(t, first):
            outbox.complete(s, key, runtime.now())
            return "kept the first pass" if second is None else "corrected by hand"
        better = replaces(shown, second)
        voicemail.record_second_reading(
            s,
            t,
            second,
            record=_pass_record(NUMBER_PASS, second),
            shown=better,
            hints=triage_hints(second.text) if better else None,
            seconds=round((runtime.now() - started).total_seconds(), 2),
            now=runtime.now(),
        )
        outbox.complete(s, key, runtime.now())
    return "refined" if better else "kept the first pass"


NUMBER_PASS = voicemail.NUMBER_PASS


def _transcript_of(ticket: Ticket) -> Any:
    """The ticket's first pass as a ``Transcript`` (what the second reading is compared with)."""
    from transcription.engine import Segment, Transcript

    engine, _, model = (ticket.transcript_engine or "").partition(" (")
    return Transcript(
        text=ticket.transcript or "",
        segments=tuple(
            Segment(**{**seg, "words": tuple(tuple(w) for w in seg.get("words", ()))})
            for seg in ticket.transcript_segments or ()
        ),
        language=ticket.transcript_language or "en",
        audio_seconds=ticket.audio_seconds or 0.0,
        engine=engine,
        model=model.rstrip(")"),
        confidence=ticket.transcript_confidence or 0.0,
        no_speech=False,
        low_confidence=bool(ticket.transcript_low_confidence),
        missing=tuple((float(a), float(b)) for a, b in ticket.transcript_missing or ()),
    )


def _pass_record(
    name: str, transcript: Any, *, language: str | None = None, source: str | None = None
) -> dict[str, Any]:
    """One pass's transcript as the ticket keeps it (every pass is kept, one is shown)."""
    extra: dict[str, Any] = {}
    if language is not None:
        extra["language"] = language
    if source is not None:
        extra["translated_from"] = source
    from transcription.pipeline import numbers_said_at

    said_at = numbers_said_at(transcript)
    if said_at:
        extra["numbers_at"] = {n: [round(a, 2), round(b, 2)] for n, (a, b) in said_at.items()}
    return {
        "pass": name,
        **extra,
        "engine": f"{transcript.engine} ({transcript.model})",
        "text": transcript.text,
        "confidence": round(transcript.confidence, 3),
        "low_confidence": transcript.low_confidence,
        "no_speech": transcript.no_speech,
        "missing": [[round(a, 2), round(b, 2)] for a, b in transcript.missing],
        "recovered": [[round(a, 2), round(b, 2)] for a, b in transcript.recovered],
    }


def _mark_failed(runtime: rt.Runtime, number: int, error: str, key: str) -> None:
    with transaction(runtime.sessions) as s:
        t = lifecycle.get_ticket(s, number)
        t.transcription_state = TranscriptionState.FAILED.value
        t.transcription_error = error[:1000]
        audit.audit(s, t, actor=WORKER, action="transcription failed", now=runtime.now(), detail={"error": error[:300]})
        outbox.complete(s, key, runtime.now())
    log.error("transcription of ticket %s failed: %s", number, error)


def _delete_twilio_copy(runtime: rt.Runtime, recording_sid: str, number: int) -> None:
    from providers.twilio_rest import TwilioSendError, delete_recording, make_twilio_client

    try:
        delete_recording(make_twilio_client(runtime.settings), recording_sid)
    except TwilioSendError as exc:
        log.warning("could not delete Twilio's copy of %s: %s", recording_sid, exc)
        return
    with transaction(runtime.sessions) as s:
        audit.audit(
            s, lifecycle.get_ticket(s, number), actor=WORKER, action="twilio recording deleted", now=runtime.now()
        )


def confirmation_text(
    *,
    company: str,
    ticket: int,
    priority: str,
    minutes: int,
    due: datetime | None,
    support_number: str,
    language: str | None,
    place: int | None = None,
) -> str:
    """The caller's "new ticket created" text, in the language they chose on the call (and their place in line)."""
    _ = translator(language)
    when = " " + _("(by {when})", when=local_time(due, language)) if due else ""
    line = " " + _("You are number {place} in line for a call back.", place=place) if place else ""
    return (
        _(
            "{company}: new ticket created. Ticket #{ticket}, priority {priority}. "
            "First response within {minutes} minutes{when}. Quote #{ticket} when you call {number}.",
            company=company,
            ticket=ticket,
            priority=priority_label(priority, language),
            minutes=minutes,
            when=when,
            number=support_number,
        )
        + line
    )


def send_confirmation(ticket: int) -> str:
    """Text the caller 'new ticket created' with the ticket number and first-response target."""
    from providers.twilio_rest import TwilioSendError, can_receive_sms, make_twilio_client, send_sms

    runtime = rt.current()
    settings = runtime.settings
    key = f"confirm:{ticket}"
    with runtime.sessions() as s:
        t = lifecycle.get_ticket(s, ticket)
        if any(a.action == "confirmation sent" for a in t.audit):
            return "already sent"
        to = t.caller_number
        prio = Priority.parse(t.priority)
        due = t.milestone("first_response").due_at
        language = t.language
        waiting = callbacks.request_of(s, t)
        place = callbacks.place_of(s, waiting) if waiting is not None else None
    if not settings.confirmation_sms or not to or not can_receive_sms(to):
        with transaction(runtime.sessions) as s:
            outbox.complete(s, key, runtime.now())
        return "not sent"
    with runtime.sessions() as s:
        opted_out = texts.refusal(s, to)
    target = runtime.policy.target(prio).first_response or timedelta(0)
    minutes = int(target.total_seconds() // 60)
    body = confirmation_text(
        company=settings.company_name,
        ticket=ticket,
        priority=prio.value,
        minutes=minutes,
        due=due.astimezone(runtime.policy.timezone) if due else None,
        support_number=settings.support_number,
        language=language,
        place=place,
    )

    def done(action: str, detail: dict[str, Any]) -> None:
        """Log the outcome on the ticket and complete the job, in one transaction."""
        with transaction(runtime.sessions) as s:
            audit.audit(
                s,
                lifecycle.get_ticket(s, ticket),
                actor="support line",
                action=action,
                now=runtime.now(),
                detail=detail,
            )
            outbox.complete(s, key, runtime.now())

    if opted_out is not None:
        done("confirmation failed", {"error": opted_out})
        return "opted out"
    try:
        sid = send_sms(make_twilio_client(settings), from_=settings.support_number, to=to, body=body)
    except TwilioSendError as exc:
        if exc.retryable and _retries_left() > 0:
            raise
        done("confirmation failed", {"error": str(exc)[:300]})
        return "failed"
    done("confirmation sent", {"sid": sid, "to": phone.mask(to)})
    return "sent"


def page_on_call(ticket: int) -> str:
    """Page the on-call engineer for a P1 ticket until someone acknowledges."""
    from workers.paging import start_paging

    return start_paging(rt.current(), ticket)


def transcript_ready(ticket: int, follow_up: str = "transcript") -> str:
    """A P1's transcript (or, ``follow_up="translation"``, its English translation) arrived: tell the people
    already paged."""
    from workers.paging import send_transcript_follow_up

    return send_transcript_follow_up(rt.current(), ticket, follow_up=follow_up)


def numbers_to_check(ticket: int) -> str:
    """A P1's second reading put a number of its transcript in doubt: tell the people already paged."""
    from workers.paging import send_numbers_follow_up

    return send_numbers_follow_up(rt.current(), ticket)
