"""Voicemail: the prompt (press 2 for critical), the recording and its status callbacks, a silent message,
and a caller who hangs up; every path leaves a ticket the coordinator can call back.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, request
from sqlalchemy.exc import SQLAlchemyError

from ivr import call, twiml
from ivr.call import _, _log  # _log by name: a test replaces it in this module
from ivr.webhooks import twiml_response
from languages import SOURCE
from runtime.web import rt
from ticketing import phone, voicemail
from ticketing.models import Ticket
from transcription.download import media_url_refusal

log = logging.getLogger(__name__)


def _voicemail(
    sid: str,
    *,
    critical: bool,
    offer_key: bool,
    intro: str | None = None,
    step: dict[str, Any] | None = None,
    ask_number: bool = True,
) -> Response:
    """The voicemail prompt; the call's ticket is opened (or escalated) and the steps logged in one transaction.

    The page of a P1 is requested here, before anything else is asked; a caller whose number is withheld
    (or no phone number) is then asked for one to call back, before the message (``ivr.callback``).
    """
    runtime = rt()
    number = call.caller()
    language = call.call_language_code() or SOURCE

    def work(s: Any) -> bool:
        now = runtime.now()
        t = voicemail.reach_voicemail(
            s, policy=runtime.policy, now=now, call_sid=sid, caller=number, critical=critical, language=language
        )
        if step is not None:
            voicemail.log_call_event(s, sid, "menu", now, **step)
        voicemail.log_call_event(s, sid, "voicemail", now, critical=critical)
        return t.callback_number is None

    no_callback = call._with_retry(work)
    asking = ask_number and number is None and no_callback
    ask = call.url("callback-number", then="message", critical=int(critical)) if asking else None
    return message_prompt(critical=critical, offer_key=offer_key, intro=intro, ask_callback=ask)


def message_prompt(
    *,
    critical: bool,
    offer_key: bool,
    intro: str | None = None,
    preface: str | None = None,
    ask_callback: str | None = None,
    ask_again: bool = False,
) -> Response:
    """The voicemail prompt's TwiML for a call whose ticket is open (``_voicemail`` opened it)."""
    r = twiml.voicemail(
        critical=critical,
        key_action=call.url("voicemail-key") if offer_key else None,
        record_action=call.url("recorded", critical=int(critical)),
        recording_status=call.url("recording-status", critical=int(critical)),
        no_message=call.url("no-message"),
        max_length=rt().settings.voicemail_max_seconds,
        business_hours=call._business_hours(),
        intro=intro,
        voice=call.voice(),
        ask_callback=ask_callback,
        preface=preface,
        ask_again=ask_again,
    )
    return twiml_response(r)


@call.step("/voice/voicemail/key")
def voicemail_key() -> Response:
    """A key pressed during the voicemail prompt: 2 makes the message critical."""
    sid = call.call_sid()
    critical = request.form.get("Digits") == "2"
    return _voicemail(
        sid,
        critical=critical,
        offer_key=False,
        intro=_("Please go ahead.") if not critical else None,
        ask_number=False,  # a withheld caller was asked before this prompt
    )


@call.step("/voice/recorded")
def recorded() -> Response:
    """The message is recorded: the ticket gets it at once, the caller hears the ticket number."""
    sid = call.call_sid()
    runtime = rt()
    recording_sid = request.form.get("RecordingSid", "")
    recording_url = request.form.get("RecordingUrl", "")
    if (
        not call._SID.match(recording_sid)
        or not recording_url.startswith("https://")
        and not recording_url.startswith("http://")
    ):
        raise call.BadRequest("recording callback without RecordingSid/RecordingUrl")
    critical = request.args.get("critical") == "1" or request.form.get("Digits") == "2"
    _check_media_host(recording_url)
    duration = call._int(request.form.get("RecordingDuration"))
    number = call.caller()

    def work(s: Any) -> tuple[int, bool, bool, Callback]:
        t = _attach(s, sid, number, recording_sid, recording_url, duration, critical)
        return (
            t.number,
            t.priority == "P1",
            bool(runtime.settings.confirmation_sms and phone.normalize(t.caller_number)),
            _callback(t),
        )

    number_, is_p1, sms, callback = call._with_retry(work)
    return _ticket_created(number_, is_p1, sms, callback=callback)


@call.step("/voice/recording-status")
def recording_status() -> Response:
    """Recording status callback (at least once): completed attaches, absent/failed leave the call-back ticket."""
    try:
        return _recording_status()
    except SQLAlchemyError:
        # Nobody hears a status callback: answer 503 so Twilio delivers it again, rather than losing the message.
        log.exception("recording status callback could not be stored; asking Twilio to retry")
        return Response("database unavailable, retry\n", status=503, mimetype="text/plain")


def _recording_status() -> Response:
    sid = call.call_sid()
    status = request.form.get("RecordingStatus", "")
    recording_sid = request.form.get("RecordingSid", "")
    critical = request.args.get("critical") == "1"
    number = call.caller()
    if status == "completed" and call._SID.match(recording_sid):
        _check_media_host(request.form.get("RecordingUrl", ""))
        recording_url = request.form.get("RecordingUrl", "")
        duration = call._int(request.form.get("RecordingDuration"))
        call._with_retry(lambda s: _attach(s, sid, number, recording_sid, recording_url, duration, critical))
    else:
        call._with_retry(lambda s: _without_message(s, sid, number, critical, f"recording {status or 'missing'}"))
    _log(sid, "recording status", status=status, recording_sid=recording_sid or None)
    return Response(status=204)


@call.step("/voice/no-message")
def no_message() -> Response:
    """The caller said nothing after the beep: keep the call-back ticket and read its number."""
    sid = call.call_sid()
    runtime = rt()
    number = call.caller()

    def work(s: Any) -> tuple[int, bool, Callback]:
        t = _without_message(s, sid, number, False, "silent recording")
        return t.number, t.priority == "P1", _callback(t)

    number_, is_p1, callback = call._with_retry(work)
    sms = runtime.settings.confirmation_sms and number is not None
    return _ticket_created(number_, is_p1, sms, no_message=True, callback=callback)


@call.step("/voice/status")
def call_status() -> Response:
    """Call status changes: a caller who hung up at the voicemail prompt still gets a confirmed ticket."""
    sid = call.call_sid()
    runtime = rt()
    status = request.form.get("CallStatus", "")
    if status in ("completed", "busy", "failed", "no-answer", "canceled"):

        def work(s: Any) -> None:
            t = voicemail.ticket_for_call(s, sid)
            if t is not None:
                voicemail.call_ended_without_message(s, ticket=t, now=runtime.now(), reason="caller hung up")

        call._with_retry(work)
        _log(sid, "call ended", status=status, duration=request.form.get("CallDuration"))
    return Response(status=204)


def _attach(
    s: Any,
    sid: str,
    number: str | None,
    recording_sid: str,
    recording_url: str,
    duration: int | None,
    critical: bool,
) -> Ticket:
    """The recording onto the call's ticket (opened now if the prompt's step did not open it)."""
    runtime = rt()
    return voicemail.attach_recording(
        s,
        policy=runtime.policy,
        now=runtime.now(),
        call_sid=sid,
        caller=number,
        recording_sid=recording_sid,
        recording_url=recording_url,
        duration=duration,
        critical=critical,
        language=call.call_language_code() or SOURCE,
    )


def _without_message(s: Any, sid: str, number: str | None, critical: bool, reason: str) -> Ticket:
    """The call's ticket, kept for a call back although no message came, and why."""
    runtime = rt()
    t = voicemail.reach_voicemail(
        s,
        policy=runtime.policy,
        now=runtime.now(),
        call_sid=sid,
        caller=number,
        critical=critical,
        language=call.call_language_code() or SOURCE,
    )
    voicemail.call_ended_without_message(s, ticket=t, now=runtime.now(), reason=reason)
    return t


# The number a ticket will be called back on and whether the caller already confirmed or keyed it.
Callback = tuple[str | None, bool]


def _callback(t: Ticket) -> Callback:
    number, origin = phone.callback_of(t.callback_number, t.callback_origin, t.caller_number)
    return number, origin in (phone.CONFIRMED, phone.KEYED)


def _ticket_created(
    number: int, is_p1: bool, sms: bool, *, no_message: bool = False, callback: Callback = (None, False)
) -> Response:
    """The caller hears the ticket number, digit by digit, and what happens next; then the number we will
    call back, to confirm by hanging up or to change (unless they keyed or confirmed it before the message).
    The page of a P1 went out at the prompt: nothing here waits for it."""
    callback_number, settled = callback
    r = twiml.ticket_created(
        ticket_spoken=phone.spoken_digits(number),
        critical=is_p1,
        business_hours=call._business_hours(),
        sms=sms,
        no_message=no_message,
        voice=call.voice(),
        callback_action=None if settled else call.url("callback-number"),
        callback_spoken=phone.spoken_number(callback_number) if callback_number else None,
        callback_extension=phone.spoken_extension(callback_number),
    )
    return twiml_response(r)


def _check_media_host(recording_url: str) -> None:
    """Log a RecordingUrl off Twilio's media hosts; the ticket still takes the message and its transcription
    fails visibly ("not one of Twilio's media hosts"), because the worker never sends the credentials there."""
    settings = rt().settings
    refusal = media_url_refusal(recording_url, settings.twilio_api_base_url, local_media=settings.dev_mode)
    if refusal is not None:
        log.warning("recording callback: %s", refusal)
