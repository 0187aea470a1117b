"""Voicemail tickets: exactly one ticket per call that reaches voicemail.

The ticket exists from the moment the caller reaches the voicemail prompt, so a
caller who hangs up before the beep still leaves a "please call back" ticket,
and a caller who pressed 2 gets a P1 and a page even without a message.
Twilio delivers callbacks at least once: every function here is idempotent on
the CallSid and RecordingSid.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ticketing import audit, lifecycle, outbox, phone
from ticketing.db import serialize_on
from ticketing.errors import InvalidTransition
from ticketing.models import CallEvent, OutboxMessage, Source, Ticket, TranscriptionState
from ticketing.policy import SupportPolicy
from ticketing.priority import Priority
from ticketing.routing import voicemail_priority
from ticketing.transcripts import cleared_because, missing_note, numbers_of

log = logging.getLogger(__name__)
SYSTEM = "support line"


def ticket_for_call(session: Session, call_sid: str) -> Ticket | None:
    """The ticket created for this call, if any."""
    return session.scalars(select(Ticket).where(Ticket.call_sid == call_sid)).first()


def log_call_event(session: Session, call_sid: str, event: str, now: datetime, **detail: Any) -> None:
    """Add a step to the call's timeline (shown on the ticket)."""
    session.add(CallEvent(call_sid=call_sid, at=now, event=event, detail=detail))


def log_incoming_call(
    session: Session, *, call_sid: str, caller: str | None, now: datetime, window: timedelta, **detail: Any
) -> int:
    """Log a new call; returns how many calls the same caller made in the ``window`` before it.

    Withheld, anonymous and invalid caller IDs (``caller`` None) count together as one
    caller. Exact when calls from one caller arrive at once in several processes: the
    transactions are serialized on the caller and each counts after its own write.
    """
    bucket = phone.rate_bucket(caller)
    serialize_on(session, f"incoming:{bucket}")
    session.add(CallEvent(call_sid=call_sid, caller=bucket, at=now, event="incoming", detail=detail))
    session.flush()
    recent = session.scalar(
        select(func.count(CallEvent.id)).where(
            CallEvent.caller == bucket, CallEvent.event == "incoming", CallEvent.at >= now - window
        )
    )
    return max(0, (recent or 0) - 1)


def _caller_label(ticket: Ticket) -> str:
    if ticket.contact is not None and ticket.client is not None:
        return f"{ticket.contact.name} ({ticket.client.name})"
    if ticket.client is not None:
        return ticket.client.name
    return ticket.caller_number or "an unknown caller"


def reach_voicemail(
    session: Session,
    *,
    policy: SupportPolicy,
    now: datetime,
    call_sid: str,
    caller: str | None,
    critical: bool,
    language: str = "en",
) -> Ticket:
    """The call's ticket, created when the caller first reaches voicemail; pressing 2 later escalates it.

    ``language``: the language the caller chose on the call (its prompts, its text messages).
    """
    ticket = ticket_for_call(session, call_sid)
    if ticket is not None and language != "en" and ticket.language != language:
        ticket.language = language  # a callback that carried no language opened it first
    if ticket is None:
        ticket = lifecycle.open_ticket(
            session,
            policy=policy,
            now=now,
            priority=voicemail_priority(critical),
            source=Source.VOICEMAIL,
            actor=SYSTEM,
            caller_number=caller,
            call_sid=call_sid,
            critical_requested=critical,
            reason="caller pressed 2 for a critical issue" if critical else None,
            notify=False,  # the confirmation email follows the message (or the hang-up), with the SMS
        )
        ticket.language = language
        ticket.summary = f"Missed call from {_caller_label(ticket)}: no message yet, please call back"
        if critical:
            _request_page(session, ticket, now)
    elif critical and not ticket.critical_requested:
        escalate_to_critical(session, ticket, policy=policy, now=now)
    return ticket


def escalate_to_critical(session: Session, ticket: Ticket, *, policy: SupportPolicy, now: datetime) -> None:
    """The caller pressed 2: the ticket becomes P1 - Critical and the on-call team is paged."""
    ticket.critical_requested = True
    if ticket.priority != Priority.P1.value:
        lifecycle.change_priority(
            session,
            ticket,
            Priority.P1,
            reason="caller pressed 2 for a critical issue",
            actor=SYSTEM,
            now=now,
            policy=policy,
        )
    _request_page(session, ticket, now)


def request_page(session: Session, ticket: Ticket, now: datetime) -> None:
    """Page on-call for a P1 ticket exactly as pressing 2 does (once per ticket); the portal's P1s call this too."""
    _request_page(session, ticket, now)


def _request_page(session: Session, ticket: Ticket, now: datetime) -> None:
    if outbox.post(session, outbox.PAGE, f"page:{ticket.number}", {"ticket": ticket.number}, now):
        audit.audit(session, ticket, actor=SYSTEM, action="paging requested", now=now)


def attach_recording(
    session: Session,
    *,
    policy: SupportPolicy,
    now: datetime,
    call_sid: str,
    caller: str | None,
    recording_sid: str,
    recording_url: str,
    duration: int | None,
    critical: bool,
    language: str = "en",
) -> Ticket:
    """Attach the finished recording to the call's ticket (creating it if needed) and queue its transcription."""
    ticket = reach_voicemail(
        session, policy=policy, now=now, call_sid=call_sid, caller=caller, critical=critical, language=language
    )
    if ticket.recording_sid is not None or not _claim_recording(session, ticket, recording_sid):
        if ticket.recording_sid is None:
            session.refresh(ticket)  # a callback delivered at the same instant attached it first
        if ticket.recording_sid != recording_sid:
            # A second recording on the same call (e.g. the fallback took one too): keep it on the log.
            audit.audit(
                session,
                ticket,
                actor=SYSTEM,
                action="extra recording",
                now=now,
                detail={"recording_sid": recording_sid, "recording_url": recording_url, "duration": duration},
            )
        return ticket
    ticket.recording_url = recording_url
    ticket.recording_duration = duration
    ticket.summary = f"Voicemail from {_caller_label(ticket)}"
    ticket.transcription_state = TranscriptionState.PENDING.value
    ticket.transcription_requested_at = now
    audit.audit(
        session,
        ticket,
        actor=SYSTEM,
        action="recording attached",
        now=now,
        detail={"recording_sid": recording_sid, "duration": duration},
    )
    outbox.post(session, outbox.TRANSCRIBE, f"transcribe:{recording_sid}", {"recording_sid": recording_sid}, now)
    request_confirmation(session, ticket, now)
    return ticket


def _claim_recording(session: Session, ticket: Ticket, recording_sid: str) -> bool:
    """Set the ticket's recording only if it has none, in one UPDATE: True for the one callback that did.

    Exact under concurrency: PostgreSQL re-checks the condition after the row lock, and
    on SQLite the UPDATE waits for the single writer and then reads the committed row.
    """
    session.flush()
    done = session.execute(
        update(Ticket)
        .where(Ticket.id == ticket.id, Ticket.recording_sid.is_(None))
        .values(recording_sid=recording_sid)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        return False
    set_committed_value(ticket, "recording_sid", recording_sid)
    return True


def request_confirmation(session: Session, ticket: Ticket, now: datetime) -> None:
    """Queue the caller's "new ticket created" SMS, and the email when the contact has an address (once per ticket)."""
    if phone.normalize(ticket.caller_number) is not None:
        outbox.post(session, outbox.CONFIRM, f"confirm:{ticket.number}", {"ticket": ticket.number}, now)
    lifecycle.notify_client(session, ticket, "created", now)


def call_ended_without_message(session: Session, *, ticket: Ticket, now: datetime, reason: str) -> None:
    """The caller left no message: keep the call-back ticket and confirm it to the caller."""
    if ticket.recording_sid is None and not any(a.action == "no message" for a in ticket.audit):
        audit.audit(session, ticket, actor=SYSTEM, action="no message", now=now, detail={"why": reason})
        request_confirmation(session, ticket, now)


def transcription_retry_refusal(
    session: Session, ticket: Ticket, *, now: datetime, stale_after: timedelta
) -> str | None:
    """Why the ticket's transcription may not be queued again now; None when it may.

    A failed transcription may be retried, and so may a recording never transcribed. A pending one only
    when it is stuck: requested ``stale_after`` (TRANSCRIPTION_PENDING_MINUTES) ago or more, or its job
    is gone (finished or given up while the ticket still waits); a fresh pending one never, or the same
    recording would be transcribed twice. A transcript already made (or "no speech") is corrected by
    hand rather than transcribed again.
    """
    if ticket.recording_sid is None:
        return f"ticket {ticket.number} has no recording to transcribe"
    state = ticket.transcription_state
    if state in (TranscriptionState.FAILED.value, TranscriptionState.NONE.value):
        return None
    if state != TranscriptionState.PENDING.value:
        return f"the transcription of ticket {ticket.number} is {state}, not failed: correct the transcript instead"
    requested = ticket.transcription_requested_at
    if requested is None or now - requested >= stale_after or _transcription_job_gone(session, ticket):
        return None
    return (
        f"the transcription of ticket {ticket.number} is pending, not failed: it may be retried when it has "
        f"made no progress for {int(stale_after.total_seconds() // 60)} minutes"
    )


def _transcription_job_gone(session: Session, ticket: Ticket) -> bool:
    """The ticket waits for a transcription whose outbox job is missing or already finished."""
    message = session.scalars(
        select(OutboxMessage).where(OutboxMessage.key == f"{outbox.TRANSCRIBE}:{ticket.recording_sid}")
    ).first()
    return message is None or message.completed_at is not None


def retry_transcription(session: Session, ticket: Ticket, *, actor: str, now: datetime, stale_after: timedelta) -> None:
    """Queue the transcription again when ``transcription_retry_refusal`` allows it; the stored audio is reused."""
    refusal = transcription_retry_refusal(session, ticket, now=now, stale_after=stale_after)
    if refusal is not None:
        raise InvalidTransition(refusal)
    state = ticket.transcription_state
    key = f"{outbox.TRANSCRIBE}:{ticket.recording_sid}"
    if not outbox.repost(session, key):
        outbox.post(session, outbox.TRANSCRIBE, key, {"recording_sid": ticket.recording_sid}, now)
    ticket.transcription_state = TranscriptionState.PENDING.value
    ticket.transcription_requested_at = now
    audit.audit(
        session,
        ticket,
        actor=actor,
        action="transcription retried",
        now=now,
        detail={"previous_state": state, "error": ticket.transcription_error},
    )
    ticket.transcription_error = None


# --- a finished transcription ------------------------------------------------------------------------------

TRANSCRIBER = "transcription worker"  # the audit actor of a transcription
FIRST_PASS = "first"
NUMBER_PASS = "numbers"  # the second reading, with the number prompt
TRANSLATION_PASS = "translation"


@dataclass(frozen=True)
class Transcribed:
    """What the transcription job read, for the ticket.

    ``transcript`` and ``translation`` are the engine's readings (text, segments, language, engine, model,
    confidence, low_confidence, no_speech, audio_seconds, missing, recovered); ``passes`` the first pass and the
    translation as the ticket keeps them; ``note`` why the caller's language could not be honoured.
    """

    transcript: Any
    translation: Any | None
    passes: list[dict[str, Any]]
    hints: Any | None
    call_language: str
    seconds: float
    note: str | None = None
    audit: dict[str, Any] = field(default_factory=dict)
    read_again: bool = False  # worth a second reading (the number pass)
    translate: bool = False  # an English translation follows as a job of its own (``record_translation``)


def _spans(spans: Any) -> list[list[float]]:
    return [[round(a, 2), round(b, 2)] for a, b in spans]


def record_transcript(
    session: Session, ticket: Ticket, done: Transcribed, *, recording_sid: str, now: datetime
) -> None:
    """Put a finished transcription on its ticket, say so in its history and queue what follows it."""
    transcript, translation = done.transcript, done.translation
    ticket.transcript = transcript.text
    ticket.transcript_segments = [asdict(seg) for seg in transcript.segments]
    ticket.transcript_language = transcript.language
    ticket.transcript_engine = f"{transcript.engine} ({transcript.model})"
    ticket.transcript_confidence = round(transcript.confidence, 3)
    # An English model's reading of another language is never a confident one.
    ticket.transcript_low_confidence = transcript.low_confidence or bool(done.note)
    ticket.audio_seconds = transcript.audio_seconds
    ticket.transcript_missing = _spans(transcript.missing) or None
    ticket.transcript_pass = FIRST_PASS
    ticket.transcript_translation = translation.text if translation is not None and translation.text else None
    ticket.transcript_passes = done.passes
    ticket.transcription_error = None
    ticket.transcription_state = (
        TranscriptionState.NO_SPEECH if transcript.no_speech else TranscriptionState.DONE
    ).value
    if done.hints is not None:
        apply_hints(ticket, done.hints)
    _audit_transcribed(session, ticket, done, now)
    audit_number_check(session, ticket, "", now)
    if ticket.transcript_missing:
        detail = {"note": missing_note(ticket.transcript_missing), "missing": ticket.transcript_missing}
        audit.audit(session, ticket, actor=TRANSCRIBER, action="transcript incomplete", now=now, detail=detail)
    outbox.complete(session, f"transcribe:{recording_sid}", now)
    if done.read_again:
        outbox.post(session, outbox.REFINE, f"refine:{recording_sid}", {"recording_sid": recording_sid}, now)
    if done.translate and translation is None and not transcript.no_speech:
        key = f"{outbox.TRANSLATE}:{recording_sid}"
        if not outbox.repost(session, key):
            outbox.post(session, outbox.TRANSLATE, key, {"recording_sid": recording_sid}, now)
    if ticket.priority == Priority.P1.value:
        key = f"{outbox.TRANSCRIPT_READY}:{ticket.number}"
        outbox.post(session, outbox.TRANSCRIPT_READY, key, {"ticket": ticket.number}, now)


TRANSLATION_FOLLOW_UP = "translation"  # the page follow-up that carries a P1's English translation


def record_translation(
    session: Session,
    ticket: Ticket,
    translation: Any,
    *,
    record: dict[str, Any],
    callback_hint: str | None,
    recording_sid: str,
    now: datetime,
) -> None:
    """Put the English translation of a transcript in another language on its ticket (the transcript is
    already there), say so in its history and, for a P1, send it to the people paged."""
    ticket.transcript_translation = translation.text or None
    ticket.transcript_passes = [
        *(p for p in ticket.transcript_passes or () if p.get("pass") != TRANSLATION_PASS),
        record,
    ]
    if ticket.hints is not None and not ticket.hints.get("callback_number") and callback_hint:
        # The number may survive in the translation where the transcript lost it.
        ticket.hints = {**ticket.hints, "callback_number": phone.normalize(callback_hint) or callback_hint}
    detail = {
        "from": ticket.transcript_language,
        "to": "en",
        "engine": f"{translation.engine} ({translation.model})",
        "translation": ticket.transcript_translation,
        "confidence": round(translation.confidence, 3),
        "missing": _spans(translation.missing),
    }
    audit.audit(session, ticket, actor=TRANSCRIBER, action="transcript translated", now=now, detail=detail)
    outbox.complete(session, f"{outbox.TRANSLATE}:{recording_sid}", now)
    if ticket.priority == Priority.P1.value:
        key = f"{outbox.TRANSCRIPT_READY}:{ticket.number}:{TRANSLATION_FOLLOW_UP}"
        payload = {"ticket": ticket.number, "follow_up": TRANSLATION_FOLLOW_UP}
        outbox.post(session, outbox.TRANSCRIPT_READY, key, payload, now)


def record_translation_failed(
    session: Session, ticket: Ticket, error: str, *, recording_sid: str, now: datetime
) -> None:
    """The English translation could not be made: the transcript stays, the ticket says "translation failed"."""
    detail = {"error": error[:300], "language": ticket.transcript_language}
    audit.audit(session, ticket, actor=TRANSCRIBER, action="translation failed", now=now, detail=detail)
    outbox.complete(session, f"{outbox.TRANSLATE}:{recording_sid}", now)


def translation_state(ticket: Ticket) -> str | None:
    """Where a transcript in another language stands on its way into English: ``done``, ``pending``,
    ``failed``; None for an English transcript (or none yet). The console and the API both show it."""
    if ticket.transcript_translation:
        return "done"
    language = ticket.transcript_language or "en"
    if language == "en" or ticket.transcription_state != TranscriptionState.DONE.value:
        return None
    if any(p.get("note") for p in ticket.transcript_passes or () if p.get("pass") == FIRST_PASS):
        return None  # read by the English model (no multilingual one): nothing to translate with
    return "failed" if translation_error(ticket) is not None else "pending"


def translation_error(ticket: Ticket) -> str | None:
    """Why the ticket's latest translation failed (since its latest transcript); None when it did not."""
    entries = sorted(ticket.audit, key=lambda a: (a.at, a.id or 0))
    error: str | None = None
    for entry in entries:
        detail = entry.detail or {}
        if entry.action == "transcribed":
            error = None
        elif entry.action == "translation failed":
            error = str(detail.get("error") or "translation failed")
        elif entry.action == "job failed" and detail.get("kind") == outbox.TRANSLATE:
            error = str(entry.reason or "translation job failed")
    return error


def _audit_transcribed(session: Session, ticket: Ticket, done: Transcribed, now: datetime) -> None:
    transcript, translation = done.transcript, done.translation
    detail = {
        "state": ticket.transcription_state,
        "engine": ticket.transcript_engine,
        "confidence": ticket.transcript_confidence,
        "audio_seconds": transcript.audio_seconds,
        "seconds": round(done.seconds, 2),
        "recovered": _spans(transcript.recovered),
        "missing": ticket.transcript_missing or [],
        "language": transcript.language,
        "call_language": done.call_language,
        **done.audit,
    }
    audit.audit(session, ticket, actor=TRANSCRIBER, action="transcribed", now=now, detail=detail)
    if translation is not None:
        detail = {
            "from": transcript.language,
            "to": "en",
            "engine": f"{translation.engine} ({translation.model})",
            "translation": ticket.transcript_translation,
            "confidence": round(translation.confidence, 3),
            "missing": _spans(translation.missing),
        }
        audit.audit(session, ticket, actor=TRANSCRIBER, action="transcript translated", now=now, detail=detail)
    if done.note:
        detail = {"note": done.note, "call_language": done.call_language}
        action = "transcribed without the multilingual model"
        audit.audit(session, ticket, actor=TRANSCRIBER, action=action, now=now, detail=detail)


def record_second_reading(
    session: Session,
    ticket: Ticket,
    second: Any,
    *,
    record: dict[str, Any],
    shown: bool,
    hints: Any,
    seconds: float,
    now: datetime,
) -> None:
    """Keep the number pass on the ticket; where it reads better (``shown``), show it and take its hints."""
    # Both readings stay on the ticket, shown or not: where they hear a number differently the
    # console says which number to check against the recording.
    noted = _number_note(ticket)
    first_text = (first_pass(ticket) or {}).get("text")
    ticket.transcript_passes = [*(ticket.transcript_passes or []), record]
    if not shown:
        number_check_changed(session, ticket, noted, now)
        detail = {"pass": NUMBER_PASS, "text": second.text, "seconds": seconds}
        audit.audit(
            session, ticket, actor=TRANSCRIBER, action="transcript read again (first pass kept)", now=now, detail=detail
        )
        return
    ticket.transcript = second.text
    ticket.transcript_segments = [asdict(seg) for seg in second.segments]
    ticket.transcript_confidence = round(second.confidence, 3)
    ticket.transcript_low_confidence = second.low_confidence
    ticket.transcript_missing = _spans(second.missing) or None
    ticket.transcript_pass = NUMBER_PASS
    ticket.transcription_state = TranscriptionState.DONE.value  # also where the first pass heard nothing
    before = (ticket.hints or {}).get("callback_number")
    apply_hints(ticket, hints)
    number_check_changed(session, ticket, noted, now)
    detail = {
        "pass": NUMBER_PASS,
        "first": first_text,
        "callback_number": {"before": before, "after": ticket.hints["callback_number"]},
        "seconds": seconds,
    }
    audit.audit(session, ticket, actor=TRANSCRIBER, action="transcript refined (numbers)", now=now, detail=detail)


def apply_hints(ticket: Ticket, hints: Any) -> None:
    """Put a transcript's triage hints on the ticket (and its summary line)."""
    ticket.hints = {
        "summary": hints.summary,
        "callback_number": phone.normalize(hints.callback_number) or hints.callback_number,
        "caller_name": hints.caller.name,
        "organisation": hints.caller.organisation,
        "suggested_priority": hints.priority,
        "cues": list(hints.cues),
    }
    if hints.summary:
        ticket.summary = hints.summary[:200]


def number_check_changed(session: Session, ticket: Ticket, before: str, now: datetime) -> None:
    """Where the ticket's numbers to check changed from ``before``: say so in its history and, for a P1,
    tell the people paged."""
    if not audit_number_check(session, ticket, before, now) or ticket.priority != Priority.P1.value:
        return
    key = f"{outbox.NUMBERS_TO_CHECK}:{ticket.number}"
    outbox.post(session, outbox.NUMBERS_TO_CHECK, key, {"ticket": ticket.number}, now)


def _number_note(ticket: Ticket) -> str:
    check = numbers_of(ticket)
    return check.note if check is not None else ""


def audit_number_check(session: Session, ticket: Ticket, before: str, now: datetime) -> bool:
    """Record the ticket's numbers to check in its history where they differ from ``before``; True if so.

    Numbers to check that are no longer in doubt are never dropped without a word: the history says
    that they were cleared, and why (that returns False: nobody needs a page for it).
    """
    check = numbers_of(ticket)
    if check is None and before:
        why = cleared_because(before, None, ticket.transcript_pass)
        log.info("ticket %s: numbers to check cleared: %s", ticket.number, why)
        detail = {"before": before, "why": why}
        audit.audit(session, ticket, actor=TRANSCRIBER, action="numbers to check cleared", now=now, detail=detail)
        return False
    if check is None or check.note == before:
        return False
    log.info("ticket %s: numbers to check against the recording: %s", ticket.number, check.note)
    detail = {"note": check.note, "unsure": [list(u) for u in check.unsure], "heard": list(check.heard)}
    audit.audit(session, ticket, actor=TRANSCRIBER, action="numbers to check", now=now, detail=detail)
    return True


def record_callback_number(
    session: Session, ticket: Ticket, number: str, *, origin: str, now: datetime, actor: str = SYSTEM
) -> bool:
    """The number the caller confirmed or keyed on the call becomes the ticket's callback number (``origin``:
    ``phone.CONFIRMED`` or ``phone.KEYED``); True where that changed it. Said in the ticket's history, and
    the numbers to check follow it (a transcript number that is not this one is named)."""
    if origin not in (phone.CONFIRMED, phone.KEYED):
        raise ValueError(f"not an origin a caller gives: {origin!r}")
    if (ticket.callback_number, ticket.callback_origin) == (number, origin):
        return False  # Twilio delivered the same key presses again
    noted = _number_note(ticket)
    before = ticket.callback_number
    ticket.callback_number, ticket.callback_origin = number, origin
    detail = {"number": number, "origin": origin, "before": before, "caller_id": ticket.caller_number}
    audit.audit(session, ticket, actor=actor, action="callback number", now=now, detail=detail)
    if ticket.transcript:
        number_check_changed(session, ticket, noted, now)
    return True


def first_pass(ticket: Ticket | None) -> dict[str, Any] | None:
    """The first pass a ticket keeps, while it is the pass shown (else None: nothing to read again)."""
    if ticket is None or ticket.transcript_pass != FIRST_PASS:
        return None
    if (ticket.transcript_language or "en") != "en":
        return None  # the number prompt is English: a Spanish reading stays as it is
    done = ticket.transcription_state == TranscriptionState.DONE.value
    # "No speech" although the voice activity detector found some: the second reading may hear it.
    unheard = ticket.transcription_state == TranscriptionState.NO_SPEECH.value and bool(ticket.transcript_missing)
    if not (done or unheard):
        return None
    return next((p for p in ticket.transcript_passes or () if p.get("pass") == FIRST_PASS), None)


def hand_corrected(ticket: Ticket, first: dict[str, Any]) -> bool:
    """True where the transcript shown is no longer the first pass's own text (a coordinator changed it)."""
    return (ticket.transcript or "").strip() != (first.get("text") or "").strip()
