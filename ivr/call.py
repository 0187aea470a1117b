"""What every step of a call shares: the voice blueprint, our webhook URLs, the call's language, the apology
voicemail when a step fails, the call log, and the hand-off of claimed jobs to Redis after the response.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, g, request
from sqlalchemy.exc import IntegrityError
from twilio.twiml.voice_response import VoiceResponse

from ivr import twiml
from ivr.security import twilio_only
from ivr.webhooks import answering_safely
from languages import CallLanguage
from runtime.web import rt
from ticketing import phone, voicemail
from ticketing.db import transaction
from ticketing.sla import calendar_for
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
        "callback-number": "/twilio/voice/callback-number",
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


def step(rule: str) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """A call step: Twilio's signed POST to ``rule`` on the voice blueprint, answered safely."""

    def register(view: Callable[..., Response]) -> Callable[..., Response]:
        return blueprint.post(rule)(twilio_only(safe(view)))

    return register


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
