"""Ringing the service coordinator: the call screen (press 1 to accept) and how the ring ended."""

from __future__ import annotations

from flask import Response, request
from sqlalchemy import func, select

from ivr import place_in_line, twiml
from ivr.call import _SID, BadRequest, _log, call_language, call_sid, step, url
from ivr.voicemail import _voicemail
from ivr.webhooks import twiml_response
from runtime.web import rt
from ticketing import phone
from ticketing.models import CallEvent
from ticketing.routing import coordinator_took_call


@step("/voice/screen")
def screen() -> Response:
    """The coordinator answered: who is calling, press 1 to accept."""
    parent = _caller_leg("screen")
    spoken = request.args.get("caller", "an unknown number")
    language = call_language()
    return twiml_response(
        twiml.screen(
            caller_spoken=spoken,
            accept_url=url("accept", call=parent),
            language_name=language.name if language is not None else None,
        )
    )


@step("/voice/screen/accept")
def accept() -> Response:
    """The coordinator pressed a key on the screen: 1 takes the call."""
    parent = _caller_leg("accept")
    if request.form.get("Digits") == "1":
        _log(parent, "coordinator accepted", leg=request.form.get("CallSid"), by=phone.mask(request.form.get("To")))
        return twiml_response(twiml.accepted())
    return twiml_response(twiml.goodbye("Call not accepted."))


@step("/voice/dial-status")
def dial_status() -> Response:
    """The coordinator ring ended: handled, or a place in line offered (business hours), or on to voicemail."""
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
    if place_in_line.offered():
        return place_in_line.offer(sid)
    return _voicemail(sid, critical=False, offer_key=True)


def _caller_leg(step: str) -> str:
    """The caller's CallSid that the coordinator's leg carries in our query string; BadRequest without it."""
    parent = request.args.get("call", "")
    if not _SID.match(parent):
        raise BadRequest(f"{step} without the caller's CallSid")
    return parent
