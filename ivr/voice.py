"""The support line's Twilio Voice webhooks: menu, coordinator ring, voicemail, status line.

Public URLs for the Twilio console: POST /twilio/voice (a call comes in),
POST /twilio/voice/fallback (primary handler fails), POST /twilio/voice/status
(call status changes, optional) and POST /twilio/sms. Every other URL is named
by the TwiML itself. Webhooks answer from the database alone: jobs go to the
outbox and are handed to Redis after the response.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from babel.dates import format_datetime
from flask import Blueprint, Response, g, request
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from twilio.twiml.voice_response import VoiceResponse

from ivr import twiml
from ivr.security import twilio_only
from ivr.webhooks import answering_safely, twiml_response
from languages import SOURCE, CallLanguage
from runtime import Runtime
from runtime.web import rt
from ticketing import phone, service, voicemail
from ticketing.db import transaction
from ticketing.errors import UnknownTicket
from ticketing.models import CallEvent, Ticket
from ticketing.routing import MAX_STATUS_ATTEMPTS, Route, coordinator_took_call, menu_route
from ticketing.sla import calendar_for
from transcription.download import media_url_refusal
from workers.dispatch import claim_for_response, dispatcher_for, hand_off_after_response

log = logging.getLogger(__name__)
blueprint = Blueprint("voice", __name__, url_prefix="/twilio")
_SID = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$")


class BadRequest(ValueError):
    """A webhook arrived without the parameters Twilio always sends."""


def url(endpoint: str, **params: Any) -> str:
    """Absolute public URL of one of our webhooks, with state carried in the query string."""
    path = {
        "menu": "/twilio/voice/menu",
        "incoming": "/twilio/voice",
        "dial": "/twilio/voice/dial-status",
        "screen": "/twilio/voice/screen",
        "accept": "/twilio/voice/screen/accept",
        "voicemail": "/twilio/voice/voicemail",
        "voicemail-key": "/twilio/voice/voicemail/key",
        "recorded": "/twilio/voice/recorded",
        "recording-status": "/twilio/voice/recording-status",
        "no-message": "/twilio/voice/no-message",
        "status-lookup": "/twilio/voice/ticket-status",
    }[endpoint]
    params.setdefault("lang", call_language_code())
    clean = {k: v for k, v in params.items() if v not in (None, "", False)}
    query = f"?{urlencode(clean)}" if clean else ""
    return rt().settings.public_base_url + path + query


def call_language() -> CallLanguage | None:
    """The other language this call switched to (our ``lang`` query parameter), or None: English."""
    offered = rt().settings.call_language
    if offered is not None and request.args.get("lang") == offered.code:
        return offered
    return None


def call_language_code() -> str | None:
    language = call_language()
    return language.code if language is not None else None


def voice() -> twiml.Voice:
    """How this call speaks: its language's catalogue and Twilio voice."""
    language = call_language()
    return twiml.Voice.of(language) if language is not None else twiml.ENGLISH


def _(message: str, **values: object) -> str:
    """A prompt in this call's language."""
    return voice()._(message, **values)


def call_sid() -> str:
    """The CallSid Twilio always sends; BadRequest when missing or malformed."""
    sid = request.form.get("CallSid", "")
    if not _SID.match(sid):
        raise BadRequest("missing or malformed CallSid")
    return sid


def caller() -> str | None:
    """The caller's number in E.164, or None when withheld."""
    return phone.normalize(request.form.get("From"))


def _apology_voicemail() -> VoiceResponse:
    """Apologise and take a message anyway: what a caller hears when a webhook cannot do its work."""
    r = twiml.voicemail(
        critical=False,
        key_action=None,
        record_action=url("recorded"),
        recording_status=url("recording-status"),
        no_message=url("no-message"),
        max_length=rt().settings.voicemail_max_seconds,
        business_hours=False,
        intro=_("We are sorry, our phone system is having trouble."),
        voice=voice(),
    )
    return r


# Never let the caller hear Twilio's 'application error': fall back to taking a message.
safe = answering_safely(_apology_voicemail)


def _business_hours() -> bool:
    return calendar_for(rt().policy).is_business_hours(rt().now())


def _log(call: str, event: str, **detail: Any) -> None:
    with transaction(rt().sessions) as s:
        voicemail.log_call_event(s, call, event, rt().now(), **detail)


def _with_retry(work: Callable[[Any], Any]) -> Any:
    """Run ``work(session)`` in a transaction; a duplicate delivery racing us is retried once.

    Outbox messages the work records are claimed in the same transaction, for this
    process to hand to Redis right after the response (``_dispatch_after_response``).
    """
    runtime = rt()

    def attempt() -> Any:
        with transaction(runtime.sessions) as s:
            result = work(s)
            claimed = claim_for_response(s, runtime)
        g.setdefault("outbox_claimed", []).extend(claimed)
        return result

    try:
        return attempt()
    except IntegrityError:
        return attempt()


@blueprint.after_request
def _dispatch_after_response(response: Response) -> Response:
    """Once the caller has the answer, this process hands the messages the request claimed to Redis."""
    hand_off_after_response(response, rt(), g.pop("outbox_claimed", []))
    return response


@blueprint.teardown_request
def _dispatch_after_failure(_error: BaseException | None) -> None:
    """Claimed messages the after-request step did not hand over (an exception skipped it) still go to Redis."""
    claimed = g.pop("outbox_claimed", [])
    if claimed:
        dispatcher_for(rt()).send(claimed)


# --- the call -------------------------------------------------------------------------------------------


@blueprint.post("/voice")
@twilio_only
@safe
def incoming() -> Response:
    """A call comes in: greeting, recording notice and the menu for the time of day."""
    sid = call_sid()
    runtime = rt()
    now = runtime.now()
    number = caller()
    attempt = _attempt()
    if attempt == 1 and not request.args.get("switched"):  # not again when the caller switched language
        with transaction(runtime.sessions) as s:
            recent = voicemail.log_incoming_call(
                s,
                call_sid=sid,
                caller=number,
                now=now,
                window=timedelta(seconds=runtime.settings.caller_rate_window_seconds),
                business_hours=_business_hours(),
            )
        if recent >= runtime.settings.caller_rate_limit:
            log.warning("rate limit: %s calls from %s", recent, phone.mask(number) if number else "withheld numbers")
            _log(sid, "rate limited", recent=recent, withheld=number is None)
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
                    voice=voice(),
                )
            )
    cal = calendar_for(runtime.policy)
    local = cal.local(now)
    return twiml_response(
        twiml.menu(
            company=runtime.settings.company_name,
            business_hours=cal.is_business_hours(now),
            holiday=cal.holiday_name(local.date()),
            action=url("menu", attempt=attempt),
            no_input=url("menu", attempt=attempt, Digits="none"),
            voice=voice(),
            offer=runtime.settings.call_language,
        )
    )


@blueprint.post("/voice/fallback")
@twilio_only
def fallback() -> Response:
    """Twilio's fallback URL: apologise and still take a message."""
    log.error(
        "Twilio used the fallback URL: ErrorCode=%s ErrorUrl=%s",
        request.form.get("ErrorCode"),
        request.form.get("ErrorUrl"),
    )
    try:
        return twiml_response(_apology_voicemail())
    except Exception:  # noqa: BLE001 - the last line of defence must always answer the caller
        log.exception("fallback failed")
        r = VoiceResponse()
        voice().say(r, _("We are sorry, our phone system is having trouble. Please call again in a few minutes."))
        r.hangup()
        return twiml_response(r)


@blueprint.post("/voice/menu")
@twilio_only
@safe
def menu() -> Response:
    """The caller's menu choice."""
    sid = call_sid()
    attempt = _attempt()
    digits = request.form.get("Digits") or (
        "" if request.args.get("Digits") == "none" else request.args.get("Digits", "")
    )
    if digits == "none":
        digits = ""
    offered = rt().settings.call_language
    if offered is not None and digits == offered.key:
        # The language key: the menu again in the other language (or back in English), same attempt.
        switched = None if call_language() is not None else offered.code
        _log(sid, "language", language=switched or SOURCE)
        return twiml_response(_redirect(url("incoming", attempt=attempt, lang=switched, switched=1)))
    business = _business_hours()
    route = menu_route(digits, business_hours=business, attempt=attempt)
    step = {"digits": digits or None, "route": route.value}
    targets = rt().settings.coordinator_numbers
    if route is Route.COORDINATOR and not targets:
        route = Route.VOICEMAIL
    if route in (Route.VOICEMAIL, Route.CRITICAL):
        # The menu step is logged in the ticket's own transaction: one commit for the whole webhook.
        return _voicemail(sid, critical=route is Route.CRITICAL, offer_key=route is not Route.CRITICAL, step=step)
    _log(sid, "menu", **step)
    if route is Route.REPEAT:
        return twiml_response(twiml.not_an_option(url("incoming", attempt=attempt + 1), voice=voice()))
    if route is Route.STATUS:
        return twiml_response(twiml.status_prompt(action=url("status-lookup", attempt=1), retry=False, voice=voice()))
    spoken = phone.spoken_number(caller())
    return twiml_response(
        twiml.ring_coordinators(
            targets,
            screen_url=lambda t: url("screen", call=sid, caller=spoken),
            action=url("dial"),
            timeout=rt().settings.coordinator_ring_seconds,
            caller_id=None,
            voice=voice(),
        )
    )


def _redirect(to: str) -> VoiceResponse:
    r = VoiceResponse()
    r.redirect(to, method="POST")
    return r


def _voicemail(
    sid: str, *, critical: bool, offer_key: bool, intro: str | None = None, step: dict[str, Any] | None = None
) -> Response:
    """The voicemail prompt; the call's ticket is opened (or escalated) and the steps logged in one transaction."""
    runtime = rt()
    number = caller()
    language = call_language_code() or SOURCE

    def work(s: Any) -> None:
        now = runtime.now()
        voicemail.reach_voicemail(
            s, policy=runtime.policy, now=now, call_sid=sid, caller=number, critical=critical, language=language
        )
        if step is not None:
            voicemail.log_call_event(s, sid, "menu", now, **step)
        voicemail.log_call_event(s, sid, "voicemail", now, critical=critical)

    _with_retry(work)
    r = twiml.voicemail(
        critical=critical,
        key_action=url("voicemail-key") if offer_key else None,
        record_action=url("recorded", critical=int(critical)),
        recording_status=url("recording-status", critical=int(critical)),
        no_message=url("no-message"),
        max_length=runtime.settings.voicemail_max_seconds,
        business_hours=_business_hours(),
        intro=intro,
        voice=voice(),
    )
    return twiml_response(r)


@blueprint.post("/voice/screen")
@twilio_only
@safe
def screen() -> Response:
    """The coordinator answered: who is calling, press 1 to accept."""
    parent = request.args.get("call", "")
    if not _SID.match(parent):
        raise BadRequest("screen without the caller's CallSid")
    spoken = request.args.get("caller", "an unknown number")
    language = call_language()
    return twiml_response(
        twiml.screen(
            caller_spoken=spoken,
            accept_url=url("accept", call=parent),
            language_name=language.name if language is not None else None,
        )
    )


@blueprint.post("/voice/screen/accept")
@twilio_only
@safe
def accept() -> Response:
    """The coordinator pressed a key on the screen: 1 takes the call."""
    parent = request.args.get("call", "")
    if not _SID.match(parent):
        raise BadRequest("accept without the caller's CallSid")
    if request.form.get("Digits") == "1":
        _log(parent, "coordinator accepted", leg=request.form.get("CallSid"), by=phone.mask(request.form.get("To")))
        return twiml_response(twiml.accepted())
    return twiml_response(twiml.goodbye("Call not accepted."))


@blueprint.post("/voice/dial-status")
@twilio_only
@safe
def dial_status() -> Response:
    """The coordinator ring ended: handled, or on to voicemail."""
    sid = call_sid()
    status = request.form.get("DialCallStatus")
    with rt().sessions() as s:
        accepted = (
            s.scalar(
                select(func.count(CallEvent.id)).where(
                    CallEvent.call_sid == sid, CallEvent.event == "coordinator accepted"
                )
            )
            or 0
        ) > 0
    took = coordinator_took_call(status, accepted)
    _log(sid, "coordinator ring", status=status, accepted=accepted, duration=request.form.get("DialCallDuration"))
    if took:
        return twiml_response(twiml.call_handled())
    return _voicemail(sid, critical=False, offer_key=True)


@blueprint.post("/voice/voicemail/key")
@twilio_only
@safe
def voicemail_key() -> Response:
    """A key pressed during the voicemail prompt: 2 makes the message critical."""
    sid = call_sid()
    critical = request.form.get("Digits") == "2"
    return _voicemail(sid, critical=critical, offer_key=False, intro=_("Please go ahead.") if not critical else None)


@blueprint.post("/voice/recorded")
@twilio_only
@safe
def recorded() -> Response:
    """The message is recorded: the ticket gets it at once, the caller hears the ticket number."""
    sid = call_sid()
    runtime = rt()
    recording_sid = request.form.get("RecordingSid", "")
    recording_url = request.form.get("RecordingUrl", "")
    if (
        not _SID.match(recording_sid)
        or not recording_url.startswith("https://")
        and not recording_url.startswith("http://")
    ):
        raise BadRequest("recording callback without RecordingSid/RecordingUrl")
    critical = request.args.get("critical") == "1" or request.form.get("Digits") == "2"
    _check_media_host(recording_url)
    duration = _int(request.form.get("RecordingDuration"))
    number = caller()

    def work(s: Any) -> tuple[int, bool, bool]:
        t = voicemail.attach_recording(
            s,
            policy=runtime.policy,
            now=runtime.now(),
            call_sid=sid,
            caller=number,
            recording_sid=recording_sid,
            recording_url=recording_url,
            duration=duration,
            critical=critical,
            language=call_language_code() or SOURCE,
        )
        return (
            t.number,
            t.priority == "P1",
            bool(runtime.settings.confirmation_sms and phone.normalize(t.caller_number)),
        )

    number_, is_p1, sms = _with_retry(work)
    r = twiml.ticket_created(
        ticket_spoken=phone.spoken_digits(number_),
        critical=is_p1,
        business_hours=_business_hours(),
        sms=sms,
        voice=voice(),
    )
    return twiml_response(r)


@blueprint.post("/voice/recording-status")
@twilio_only
@safe
def recording_status() -> Response:
    """Recording status callback (at least once): completed attaches, absent/failed leave the call-back ticket."""
    try:
        return _recording_status()
    except SQLAlchemyError:
        # Nobody hears a status callback: answer 503 so Twilio delivers it again, rather than losing the message.
        log.exception("recording status callback could not be stored; asking Twilio to retry")
        return Response("database unavailable, retry\n", status=503, mimetype="text/plain")


def _recording_status() -> Response:
    sid = call_sid()
    runtime = rt()
    status = request.form.get("RecordingStatus", "")
    recording_sid = request.form.get("RecordingSid", "")
    critical = request.args.get("critical") == "1"
    number = caller()
    if status == "completed" and _SID.match(recording_sid):
        _check_media_host(request.form.get("RecordingUrl", ""))
        _with_retry(
            lambda s: voicemail.attach_recording(
                s,
                policy=runtime.policy,
                now=runtime.now(),
                call_sid=sid,
                caller=number,
                recording_sid=recording_sid,
                recording_url=request.form.get("RecordingUrl", ""),
                duration=_int(request.form.get("RecordingDuration")),
                critical=critical,
                language=call_language_code() or SOURCE,
            )
        )
    else:

        def no_message(s: Any) -> None:
            t = voicemail.reach_voicemail(
                s,
                policy=runtime.policy,
                now=runtime.now(),
                call_sid=sid,
                caller=number,
                critical=critical,
                language=call_language_code() or SOURCE,
            )
            voicemail.call_ended_without_message(
                s, ticket=t, now=runtime.now(), reason=f"recording {status or 'missing'}"
            )

        _with_retry(no_message)
    _log(sid, "recording status", status=status, recording_sid=recording_sid or None)
    return Response(status=204)


@blueprint.post("/voice/no-message")
@twilio_only
@safe
def no_message() -> Response:
    """The caller said nothing after the beep: keep the call-back ticket and read its number."""
    sid = call_sid()
    runtime = rt()
    number = caller()

    def work(s: Any) -> tuple[int, bool]:
        t = voicemail.reach_voicemail(
            s,
            policy=runtime.policy,
            now=runtime.now(),
            call_sid=sid,
            caller=number,
            critical=False,
            language=call_language_code() or SOURCE,
        )
        voicemail.call_ended_without_message(s, ticket=t, now=runtime.now(), reason="silent recording")
        return t.number, t.priority == "P1"

    number_, is_p1 = _with_retry(work)
    sms = runtime.settings.confirmation_sms and number is not None
    r = twiml.ticket_created(
        ticket_spoken=phone.spoken_digits(number_),
        critical=is_p1,
        business_hours=_business_hours(),
        sms=sms,
        no_message=True,
        voice=voice(),
    )
    return twiml_response(r)


@blueprint.post("/voice/status")
@twilio_only
@safe
def call_status() -> Response:
    """Call status changes: a caller who hung up at the voicemail prompt still gets a confirmed ticket."""
    sid = call_sid()
    runtime = rt()
    status = request.form.get("CallStatus", "")
    if status in ("completed", "busy", "failed", "no-answer", "canceled"):

        def work(s: Any) -> None:
            t = voicemail.ticket_for_call(s, sid)
            if t is not None:
                voicemail.call_ended_without_message(s, ticket=t, now=runtime.now(), reason="caller hung up")

        _with_retry(work)
        _log(sid, "call ended", status=status, duration=request.form.get("CallDuration"))
    return Response(status=204)


@blueprint.post("/voice/ticket-status")
@twilio_only
@safe
def ticket_status() -> Response:
    """Press 3: read out a ticket's status, only to a caller of the same client."""
    sid = call_sid()
    attempt = _attempt()
    digits = (request.form.get("Digits") or "").strip("#* ")
    runtime = rt()
    text = None
    if digits.isdigit():
        with runtime.sessions() as s:
            try:
                t = service.get_ticket(s, digits)
            except UnknownTicket:
                t = None
            if t is not None and _same_client(s, t, caller()):
                text = _status_text(t, runtime)
    _log(sid, "status lookup", found=text is not None, attempt=attempt)
    if text is not None:
        return twiml_response(twiml.status_answer(text, menu_url=url("incoming", attempt=2), voice=voice()))
    if _status_misses(sid) >= MAX_STATUS_ATTEMPTS:  # counted over the whole call, not per visit to the menu
        return twiml_response(
            twiml.goodbye(
                _(
                    "We could not find that ticket. Please check the number in your confirmation message, "
                    "or call back to speak with a coordinator. Goodbye."
                ),
                voice=voice(),
            )
        )
    return twiml_response(
        twiml.status_prompt(action=url("status-lookup", attempt=attempt + 1), retry=True, voice=voice())
    )


def _status_misses(sid: str) -> int:
    """How many ticket numbers this call has keyed that were not read out (its own lookups, in the database)."""
    with rt().sessions() as s:
        details = s.scalars(
            select(CallEvent.detail).where(CallEvent.call_sid == sid, CallEvent.event == "status lookup")
        ).all()
    return sum(1 for d in details if not (d or {}).get("found"))


def _same_client(session: Any, ticket: Ticket, number: str | None) -> bool:
    if number is None:
        return False
    client, _contact = service.find_caller(session, number)
    if client is not None:
        return ticket.client_id == client.id
    return ticket.caller_number == number


def _status_text(t: Ticket, runtime: Runtime) -> str:
    """The status line for a ticket, in this call's language (weekday and time as that language says them)."""
    tz = runtime.policy.timezone
    prio = {
        "P1": _("P 1, critical"),
        "P2": _("P 2, high"),
        "P3": _("P 3, medium"),
        "P4": _("P 4, low"),
        "P5": _("P 5"),
    }[t.priority]
    status = {
        "new": _("new"),
        "acknowledged": _("acknowledged"),
        "in progress": _("in progress"),
        "waiting on client": _("waiting on client"),
        "resolved": _("resolved"),
        "closed": _("closed"),
    }.get(t.status, t.status)
    text = _(
        "Ticket {ticket} is {status}, priority {priority}.",
        ticket=phone.spoken_digits(t.number or 0),
        status=status,
        priority=prio,
    )
    nxt = service.next_milestone(t)
    if t.status in ("resolved", "closed"):
        return text
    if t.paused_at is not None:
        return text + " " + _("We are waiting for information from you.")
    if nxt is not None and nxt.due_at is not None:
        when = nxt.due_at.astimezone(tz)
        day = format_datetime(when, "EEEE", locale=voice().code)
        time_ = format_datetime(when, "h:mm a", locale=voice().code)
        sentence = {
            "first_response": _("We are committed to a first response by {day} at {time}.", day=day, time=time_),
            "resolution_plan": _("We are committed to a resolution plan by {day} at {time}.", day=day, time=time_),
            "resolved": _("We are committed to resolution by {day} at {time}.", day=day, time=time_),
        }[nxt.name]
        text += " " + sentence
    return text


def _check_media_host(recording_url: str) -> None:
    """Log a RecordingUrl off Twilio's media hosts; the ticket still takes the message and its transcription
    fails visibly ("not one of Twilio's media hosts"), because the worker never sends the credentials there."""
    settings = rt().settings
    refusal = media_url_refusal(recording_url, settings.twilio_api_base_url, local_media=settings.dev_mode)
    if refusal is not None:
        log.warning("recording callback: %s", refusal)


MAX_SECONDS = 24 * 3600  # no recording is longer; anything bigger is not a duration


def _int(value: str | None, maximum: int = MAX_SECONDS) -> int | None:
    """A whole number from Twilio's parameters, or None when missing, malformed or out of range."""
    text = (value or "").strip()
    if not text.isdigit() or len(text) > len(str(maximum)) or int(text) > maximum:
        return None
    return int(text)


def _attempt() -> int:
    """Which try of a prompt this is (our own query parameter): 1 unless it says a small number."""
    return _int(request.args.get("attempt"), maximum=10) or 1


# --- SMS ------------------------------------------------------------------------------------------------


@blueprint.post("/sms")
@twilio_only
def sms() -> Response:
    """Inbound SMS: page acknowledgements are handled by paging; anything else gets directions."""
    from ivr.sms import handle_inbound_sms

    return twiml_response(handle_inbound_sms(request.form, rt()))
