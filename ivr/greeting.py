"""A call comes in: the greeting and the menu for the time of day (business hours, after hours, a holiday),
the caller rate limit, the language key, the fallback URL, and where each menu choice goes.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import Response, request
from twilio.twiml.voice_response import VoiceResponse

from ivr import call, known_incident, twiml
from ivr.call import _
from ivr.security import twilio_only
from ivr.voicemail import _voicemail
from ivr.webhooks import twiml_response
from languages import SOURCE
from runtime.web import rt
from ticketing import phone, voicemail
from ticketing.db import transaction
from ticketing.routing import Route, menu_route
from ticketing.sla import calendar_for

log = logging.getLogger(__name__)


@call.step("/voice")
def incoming() -> Response:
    """A call comes in: greeting, recording notice and the menu for the time of day."""
    sid = call.call_sid()
    runtime = rt()
    now = runtime.now()
    number = call.caller()
    attempt = call._attempt()
    if attempt == 1 and not request.args.get("switched") and not request.args.get("past"):  # once per call
        with transaction(runtime.sessions) as s:
            recent = voicemail.log_incoming_call(
                s,
                call_sid=sid,
                caller=number,
                now=now,
                window=timedelta(seconds=runtime.settings.caller_rate_window_seconds),
                business_hours=call._business_hours(),
            )
        if recent >= runtime.settings.caller_rate_limit:
            log.warning("rate limit: %s calls from %s", recent, phone.mask(number) if number else "withheld numbers")
            call._log(sid, "rate limited", recent=recent, withheld=number is None)
            if number is None:
                # Withheld numbers share one bucket, so this may be someone else's emergency: no menu and no
                # coordinator ring, but the message is always taken (the ticket opens at the prompt).
                return _voicemail(
                    sid,
                    critical=False,
                    offer_key=True,
                    intro=_("We are receiving many calls from withheld numbers, so we are taking messages only."),
                )
            return twiml_response(
                twiml.goodbye(
                    _(
                        "We have received many calls from your number in the last few minutes, and your earlier "
                        "messages are being handled. Please try again later, or use the client portal. Goodbye."
                    ),
                    voice=call.voice(),
                )
            )
    if not request.args.get("past"):
        incident = known_incident.incident_for_call()
        if incident is not None:
            return known_incident.answer(*incident)
    cal = calendar_for(runtime.policy)
    local = cal.local(now)
    return twiml_response(
        twiml.menu(
            company=runtime.settings.company_name,
            business_hours=cal.is_business_hours(now),
            holiday=cal.holiday_name(local.date()),
            action=call.url("menu", attempt=attempt),
            no_input=call.url("menu", attempt=attempt, Digits="none"),
            voice=call.voice(),
            offer=runtime.settings.call_language,
            # After a known incident's prompt the greeting was said: straight to the options.
            apology=_("Here are your other options.") if request.args.get("past") else None,
        )
    )


@call.blueprint.post("/voice/fallback")
@twilio_only
def fallback() -> Response:
    """Twilio's fallback URL: apologise and still take a message."""
    log.error(
        "Twilio used the fallback URL: ErrorCode=%s ErrorUrl=%s",
        request.form.get("ErrorCode"),
        request.form.get("ErrorUrl"),
    )
    try:
        return twiml_response(call._apology_voicemail())
    except Exception:  # noqa: BLE001 - the last line of defence must always answer the caller
        log.exception("fallback failed")
        r = VoiceResponse()
        call.voice().say(r, _("We are sorry, our phone system is having trouble. Please call again in a few minutes."))
        r.hangup()
        return twiml_response(r)


@call.step("/voice/menu")
def menu() -> Response:
    """The caller's menu choice."""
    sid = call.call_sid()
    attempt = call._attempt()
    digits = request.form.get("Digits") or (
        "" if request.args.get("Digits") == "none" else request.args.get("Digits", "")
    )
    if digits == "none":
        digits = ""
    offered = rt().settings.call_language
    if offered is not None and digits == offered.key:
        # The language key: the menu again in the other language (or back in English), same attempt.
        switched = None if call.call_language() is not None else offered.code
        call._log(sid, "language", language=switched or SOURCE)
        return twiml_response(_redirect(call.url("incoming", attempt=attempt, lang=switched, switched=1)))
    business = call._business_hours()
    route = menu_route(digits, business_hours=business, attempt=attempt)
    step = {"digits": digits or None, "route": route.value}
    targets = rt().settings.coordinator_numbers
    if route is Route.COORDINATOR and not targets:
        route = Route.VOICEMAIL
    if route in (Route.VOICEMAIL, Route.CRITICAL):
        # The menu step is logged in the ticket's own transaction: one commit for the whole webhook.
        return _voicemail(sid, critical=route is Route.CRITICAL, offer_key=route is not Route.CRITICAL, step=step)
    call._log(sid, "menu", **step)
    if route is Route.REPEAT:
        return twiml_response(twiml.not_an_option(call.url("incoming", attempt=attempt + 1), voice=call.voice()))
    if route is Route.STATUS:
        return twiml_response(
            twiml.status_prompt(action=call.url("status-lookup", attempt=1), retry=False, voice=call.voice())
        )
    spoken = phone.spoken_number(call.caller())
    return twiml_response(
        twiml.ring_coordinators(
            targets,
            screen_url=lambda t: call.url("screen", call=sid, caller=spoken),
            action=call.url("dial"),
            timeout=rt().settings.coordinator_ring_seconds,
            caller_id=None,
            voice=call.voice(),
        )
    )


def _redirect(to: str) -> VoiceResponse:
    r = VoiceResponse()
    r.redirect(to, method="POST")
    return r
