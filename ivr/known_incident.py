"""A known incident: after the greeting, callers of the affected clients hear the coordinator's message and
press 1 to leave a short message joined to its parent ticket; any other key is their menu choice, and silence
plays the menu (press 2 for a critical issue is never further than one prompt away)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Response, request
from twilio.twiml.voice_response import VoiceResponse

from ivr import call, twiml
from ivr.call import _
from ivr.webhooks import twiml_response
from languages import SOURCE, CallLanguage, translator
from runtime.web import rt
from ticketing import outages, voicemail
from ticketing.db import transaction
from ticketing.models import KnownIncident

PATH = "/twilio/voice/known-incident"


def incident_for_call() -> tuple[int, str] | None:
    """The known incident this caller hears about (its id and message in the call's language), or None."""
    runtime = rt()
    with transaction(runtime.sessions) as s:
        incident = outages.for_caller(s, call.caller(), runtime.now())
        if incident is None:
            return None
        return incident.id, outages.message_for(incident, call.call_language_code() or SOURCE)


def prompt(
    *, company: str, message: str, action: str, no_input: str, voice: twiml.Voice, offer: CallLanguage | None
) -> VoiceResponse:
    """The greeting, then "We are aware that <message>. Press 1 if you are calling about this."; silence goes on."""
    _ = voice._
    r = VoiceResponse()
    gather = r.gather(num_digits=1, action=action, method="POST", timeout=5, action_on_empty_result=False)
    voice.say(
        gather,
        _(
            "Thank you for calling {company} support. Calls are recorded so we can create and track your ticket.",
            company=company,
        ),
    )
    if offer is not None and voice.code == SOURCE:
        twiml.Voice.of(offer).say(gather, translator(offer.code)(twiml.OFFER, key=offer.key))
    # The coordinator's words are read as written (one line, checked when declared).
    voice.say(gather, _("We are aware that {what}.", what=message.rstrip(".")))
    voice.say(gather, _("Press 1 if you are calling about this. For anything else, stay on the line."))
    r.redirect(no_input, method="POST")
    return r


def answer(incident_id: int, message: str) -> Response:
    """The known incident's prompt for this call."""
    runtime = rt()
    return twiml_response(
        prompt(
            company=runtime.settings.company_name,
            message=message,
            action=_url(incident=incident_id, attempt=call._attempt()),
            no_input=call.url("incoming", attempt=call._attempt(), past=1),
            voice=call.voice(),
            offer=runtime.settings.call_language,
        )
    )


def _url(**params: Any) -> str:
    params.setdefault("lang", call.call_language_code())
    clean = {k: v for k, v in params.items() if v not in (None, "", False)}
    return rt().settings.public_base_url + PATH + (f"?{urlencode(clean)}" if clean else "")


@call.step("/voice/known-incident")
def pressed() -> Response:
    """A key at the known incident's prompt: 1 leaves a message joined to it; any other is a menu choice."""
    sid = call.call_sid()
    digits = (request.form.get("Digits") or "").strip()
    incident_id = call._int(request.args.get("incident"), maximum=2**31 - 1)
    if digits != "1" or incident_id is None:
        r = VoiceResponse()
        r.redirect(call.url("menu", attempt=call._attempt(), Digits=digits or "none"), method="POST")
        return twiml_response(r)
    runtime = rt()
    language = call.call_language_code() or SOURCE

    def work(s: Any) -> bool:
        now = runtime.now()
        incident = s.get(KnownIncident, incident_id)
        if incident is None or (incident.ended_at is not None and incident.ended_at <= now):
            return False
        t = voicemail.reach_voicemail(
            s, policy=runtime.policy, now=now, call_sid=sid, caller=call.caller(), critical=False, language=language
        )
        outages.join(s, incident.id, t, now=now, policy=runtime.policy)
        voicemail.log_call_event(s, sid, "known incident", now, incident=incident.id)
        return True

    if not call._with_retry(work):  # ended while the caller listened: the normal menu
        r = VoiceResponse()
        r.redirect(call.url("incoming", attempt=call._attempt(), past=1), method="POST")
        return twiml_response(r)
    return twiml_response(_short_message())


def _short_message() -> VoiceResponse:
    """A short recording, transcribed like any voicemail, then the ticket number as usual."""
    voice = call.voice()
    r = VoiceResponse()
    voice.say(
        r,
        _(
            "Thank you. After the tone, please leave a short message with your name and company. "
            "Press pound when you are finished."
        ),
    )
    r.record(
        action=call.url("recorded"),
        method="POST",
        max_length=min(rt().settings.voicemail_max_seconds, 120),
        timeout=10,
        finish_on_key="#",
        play_beep=True,
        trim="trim-silence",
        recording_status_callback=call.url("recording-status"),
        recording_status_callback_method="POST",
        recording_status_callback_event="completed absent",
    )
    r.redirect(call.url("no-message"), method="POST")
    return r
