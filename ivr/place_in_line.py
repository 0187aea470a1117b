"""A place in line: when no coordinator took the call (in business hours), the caller may press 1 to be
called back by the next free coordinator, first come, first served (``ticketing.callbacks``).

On the caller's call: the offer (1 keeps a place, 2 is the critical key, or a message after the tone), the
place read back before a short optional message (hanging up at the beep is fine); the number to call back
is the one ``ivr.callback`` confirms after the message.

On the call back (the console's "Call back now" asks Twilio to ring the coordinator's phone): the coordinator
hears the ticket and presses 1, then the caller's number is dialled; Twilio's callbacks tell how it ended.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Response, abort, request
from sqlalchemy import select
from twilio.twiml.voice_response import Dial, VoiceResponse

from ivr import call, twiml
from ivr.call import _, _log
from ivr.voicemail import _voicemail
from ivr.webhooks import twiml_response
from languages import N_, SOURCE
from runtime.web import rt
from ticketing import callbacks, phone, voicemail
from ticketing.models import CallbackRequest, CallEvent

OFFER = N_(
    "To keep your place in line and have the next coordinator call you back, press 1. "
    "For a critical issue, press 2. Or leave a message after the tone."
)
PLACE = N_("You are number {place} in line. The next coordinator will call you back.")
SHORT_MESSAGE = N_("After the tone, you may leave a short message, or simply hang up.")
MESSAGE_SECONDS = 60  # the optional message of a caller in line
CALLER_RING_SECONDS = 30
KEY_SECONDS = 3  # how long the offer waits for a key before the tone

# Our webhooks for the call back, as the console tells Twilio (``callback_url``).
CALL_BACK_PATHS = {
    "answer": "/twilio/voice/call-back/answer",
    "connect": "/twilio/voice/call-back/connect",
    "caller-answered": "/twilio/voice/call-back/caller-answered",
    "dialed": "/twilio/voice/call-back/dialed",
    "status": "/twilio/voice/call-back/status",
}
_MACHINE = ("machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax")
_NOT_ANSWERED = ("busy", "no-answer", "failed", "canceled")


def callback_url(public_base_url: str, endpoint: str, request_id: int) -> str:
    """Absolute public URL of a call-back webhook for callback request ``request_id`` (what Twilio signs)."""
    return public_base_url + CALL_BACK_PATHS[endpoint] + "?" + urlencode({"callback": request_id})


def _line_url(**params: Any) -> str:
    params.setdefault("lang", call.call_language_code())
    clean = {k: v for k, v in params.items() if v not in (None, "", False)}
    return rt().settings.public_base_url + "/twilio/voice/place-in-line" + (f"?{urlencode(clean)}" if clean else "")


def offered() -> bool:
    """The place in line is offered in business hours, to a caller whose number we can call back."""
    return call._business_hours() and call.caller() is not None


def offer(sid: str) -> Response:
    """No coordinator took the call: the ticket opens (as at voicemail) and the caller hears the offer."""
    runtime = rt()
    number = call.caller()
    language = call.call_language_code() or SOURCE

    def work(s: Any) -> None:
        now = runtime.now()
        voicemail.reach_voicemail(
            s, policy=runtime.policy, now=now, call_sid=sid, caller=number, critical=False, language=language
        )
        voicemail.log_call_event(s, sid, "place in line offered", now)

    call._with_retry(work)
    voice = call.voice()
    r = VoiceResponse()
    gather = r.gather(
        num_digits=1, action=_line_url(), method="POST", timeout=KEY_SECONDS, action_on_empty_result=False
    )
    voice.say(gather, f"{_('Our service coordinator is on another call.')} {_(OFFER)}")
    _record(r, max_length=runtime.settings.voicemail_max_seconds, finish_on_key="#2")
    return twiml_response(r)


def _record(r: VoiceResponse, *, max_length: int, finish_on_key: str) -> None:
    r.record(
        action=call.url("recorded", critical=0),
        method="POST",
        max_length=max_length,
        timeout=10,
        finish_on_key=finish_on_key,
        play_beep=True,
        trim="trim-silence",
        recording_status_callback=call.url("recording-status", critical=0),
        recording_status_callback_method="POST",
        recording_status_callback_event="completed absent",
    )
    r.redirect(call.url("no-message"), method="POST")


@call.step("/voice/place-in-line")
def key() -> Response:
    """A key pressed during the offer: 1 keeps a place in line, 2 is a critical message, others a message."""
    sid = call.call_sid()
    digits = request.form.get("Digits") or ""
    if digits == "2":
        return _voicemail(sid, critical=True, offer_key=False, ask_number=False)
    if digits != "1" or not offered():  # a 1 after hours (a late or forged key) is no place in line
        return _voicemail(sid, critical=False, offer_key=False, intro=_("Please go ahead."), ask_number=False)
    runtime = rt()
    number = call.caller()
    language = call.call_language_code() or SOURCE

    def work(s: Any) -> int:
        now = runtime.now()
        t = voicemail.reach_voicemail(
            s, policy=runtime.policy, now=now, call_sid=sid, caller=number, critical=False, language=language
        )
        place = callbacks.join_line(s, t, now)
        voicemail.log_call_event(s, sid, "place in line", now, place=place)
        voicemail.request_confirmation(s, t, now)  # the text with the ticket number and the place
        return place

    place = call._with_retry(work)
    voice = call.voice()
    r = VoiceResponse()
    voice.say(r, _(PLACE, place=place))
    voice.say(r, _(SHORT_MESSAGE))
    _record(r, max_length=MESSAGE_SECONDS, finish_on_key="#")
    return twiml_response(r)


# -- the call back: the coordinator's phone first, then the caller --------------------------------------------


def _request_id() -> int:
    value = request.args.get("callback", "")
    if not value.isdigit() or len(value) > 12:
        abort(400, "call back webhook without its callback request")
    return int(value)


def _ticket_of(s: Any, request_id: int) -> tuple[Any, Any]:
    found = s.get(CallbackRequest, request_id)
    return found, (found.ticket if found is not None else None)


@call.blueprint.post(CALL_BACK_PATHS["answer"].removeprefix("/twilio"))
@call.twilio_only
def answer() -> Response:
    """The coordinator's phone answered: which ticket, press 1 to call the caller."""
    request_id = _request_id()
    with rt().sessions() as s:
        found, ticket = _ticket_of(s, request_id)
        if found is None or found.state != callbacks.CALLING or found.call_sid != request.form.get("CallSid"):
            return twiml_response(twiml.goodbye("This call back is no longer waiting. Goodbye."))
        number = ticket.number
        who = ticket.caller_number
    r = VoiceResponse()
    gather = r.gather(
        num_digits=1,
        action=callback_url(rt().settings.public_base_url, "connect", request_id),
        method="POST",
        timeout=8,
        action_on_empty_result=False,
    )
    twiml.ENGLISH.say(
        gather,
        f"Call back for ticket {phone.spoken_digits(number)}, "
        f"caller {phone.spoken_number(who) if who else 'withheld'}. Press 1 to call them now.",
    )
    twiml.ENGLISH.say(r, "No key pressed. The caller keeps their place. Goodbye.")
    r.hangup()
    return twiml_response(r)


@call.blueprint.post(CALL_BACK_PATHS["connect"].removeprefix("/twilio"))
@call.twilio_only
def connect() -> Response:
    """The coordinator pressed a key: 1 dials the caller's callback number."""
    request_id = _request_id()
    if request.form.get("Digits") != "1":
        return twiml_response(twiml.goodbye("The caller keeps their place. Goodbye."))
    settings = rt().settings
    with rt().sessions() as s:
        found, ticket = _ticket_of(s, request_id)
        if found is None or found.state != callbacks.CALLING or found.call_sid != request.form.get("CallSid"):
            return twiml_response(twiml.goodbye("This call back is no longer waiting. Goodbye."))
        number, _origin = phone.callback_of(ticket.callback_number, ticket.callback_origin, ticket.caller_number)
    if number is None:
        return twiml_response(twiml.goodbye("There is no number to call back. Goodbye."))
    main, _sep, extension = number.partition(phone.EXTENSION)
    r = VoiceResponse()
    dial = Dial(
        action=callback_url(settings.public_base_url, "dialed", request_id),
        method="POST",
        timeout=CALLER_RING_SECONDS,
        caller_id=settings.support_number,
    )
    dial.number(
        main,
        send_digits=f"wwww{extension}" if extension else None,
        machine_detection="Enable",
        url=callback_url(settings.public_base_url, "caller-answered", request_id),
        method="POST",
    )
    r.append(dial)
    return twiml_response(r)


@call.blueprint.post(CALL_BACK_PATHS["caller-answered"].removeprefix("/twilio"))
@call.twilio_only
def caller_answered() -> Response:
    """The caller's phone answered: a person is connected; a machine is hung up on (and counted as such)."""
    request_id = _request_id()
    answered_by = request.form.get("AnsweredBy", "")
    parent = request.form.get("ParentCallSid", "")
    _log(parent or call.call_sid(), "call back answered", callback=request_id, answered_by=answered_by or None)
    r = VoiceResponse()
    if answered_by in _MACHINE:
        r.hangup()
    return twiml_response(r)


@call.blueprint.post(CALL_BACK_PATHS["dialed"].removeprefix("/twilio"))
@call.twilio_only
def dialed() -> Response:
    """The dial to the caller ended: connected, no answer, or a machine; recorded once."""
    request_id = _request_id()
    sid = call.call_sid()
    status = request.form.get("DialCallStatus", "")
    runtime = rt()

    def work(s: Any) -> str:
        found, _ticket = _ticket_of(s, request_id)
        if found is None or found.call_sid != sid:
            return ""
        machine = any(
            (e.detail or {}).get("answered_by") in _MACHINE and (e.detail or {}).get("callback") == request_id
            for e in s.scalars(
                select(CallEvent).where(CallEvent.call_sid == sid, CallEvent.event == "call back answered")
            )
        )
        if status == "completed":
            outcome = callbacks.OUTCOME_MACHINE if machine else callbacks.OUTCOME_CONNECTED
        else:
            outcome = callbacks.OUTCOME_NO_ANSWER
        callbacks.record_outcome(s, found, outcome, runtime.now())
        return outcome

    outcome = call._with_retry(work)
    _log(sid, "call back dialed", callback=request_id, status=status, outcome=outcome or None)
    if outcome in (callbacks.OUTCOME_NO_ANSWER, callbacks.OUTCOME_MACHINE):
        return twiml_response(twiml.goodbye("The caller did not answer. Goodbye."))
    return twiml_response(twiml.call_handled())


@call.blueprint.post(CALL_BACK_PATHS["status"].removeprefix("/twilio"))
@call.twilio_only
def status() -> Response:
    """The coordinator's call ended (Twilio's status callback): one never answered leaves the caller's place."""
    request_id = _request_id()
    sid = call.call_sid()
    call_status = request.form.get("CallStatus", "")
    runtime = rt()
    if call_status in (*_NOT_ANSWERED, "completed"):

        def work(s: Any) -> None:
            found, _ticket = _ticket_of(s, request_id)
            if found is not None and found.call_sid == sid:
                # Still under way when the coordinator's call ended: the caller was never dialled.
                callbacks.record_outcome(s, found, callbacks.OUTCOME_COORDINATOR_MISSED, runtime.now())

        call._with_retry(work)
        _log(sid, "call back status", callback=request_id, status=call_status)
    return Response(status=204)


def coordinator_phone() -> str | None:
    """The coordinator's phone a call back rings first: the first of COORDINATOR_NUMBERS."""
    numbers = rt().settings.coordinator_numbers
    return numbers[0] if numbers else None
