"""Callbacks: the callers who kept their place in line, first come, first served (above the queue), and
"Call back now", which rings the coordinator's phone first and then the caller (``ivr.place_in_line``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flask import Response, flash, redirect, url_for

from ivr.place_in_line import callback_url
from providers.twilio_rest import TwilioSendError, make_twilio_client, place_call
from ticketing import callbacks, phone
from ticketing.db import transaction
from ticketing.errors import UnknownTicket
from ticketing.lifecycle import get_ticket
from ticketing.models import CallbackRequest
from web.console.auth import blueprint, role_required, rt, viewer
from web.console.shared import TRIAGE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallbackRow:
    """One line of the Callbacks list."""

    place: int
    number: int
    caller: str | None
    client: str | None
    waited_seconds: int
    attempts: int
    calling: bool
    priority: str


@blueprint.app_context_processor
def _callback_line() -> dict[str, Any]:
    """``callback_line()`` for the queue page's Callbacks section."""

    def callback_line() -> list[CallbackRow]:
        runtime = rt()
        with runtime.sessions() as s:
            rows = []
            for w in callbacks.line(s, runtime.now()):
                t = w.request.ticket
                number, _origin = phone.callback_of(t.callback_number, t.callback_origin, t.caller_number)
                rows.append(
                    CallbackRow(
                        place=w.place,
                        number=int(t.number or 0),
                        caller=number,
                        client=t.client.name if t.client is not None else None,
                        waited_seconds=w.waited_seconds,
                        attempts=w.request.attempts,
                        calling=w.request.state == callbacks.CALLING,
                        priority=t.priority,
                    )
                )
            return rows

    return {"callback_line": callback_line}


@blueprint.post("/tickets/<int:number>/call-back")
@role_required(*TRIAGE)
def call_back(number: int) -> Response:
    """Call back now: claim the attempt (once, however often the form is sent), ring the coordinator's phone."""
    runtime = rt()
    settings = runtime.settings
    to = settings.coordinator_numbers[0] if settings.coordinator_numbers else None
    if to is None:
        flash("No coordinator phone to ring: set COORDINATOR_NUMBERS.", "error")
        return redirect(url_for("console.queue"), code=303)
    me = viewer().display_name
    try:
        with transaction(runtime.sessions) as s:
            t = get_ticket(s, number)
            claimed = callbacks.start_call_back(s, t, by=me, now=runtime.now())
            request_id = claimed.id if claimed is not None else None
    except UnknownTicket as exc:
        flash(str(exc).capitalize() + ".", "error")
        return redirect(url_for("console.queue"), code=303)
    if request_id is None:
        flash(f"Ticket {number} is not waiting for a call back (one may be under way).", "error")
        return redirect(url_for("console.queue"), code=303)
    try:
        sid = place_call(
            make_twilio_client(settings),
            from_=settings.support_number,
            to=to,
            url=callback_url(settings.public_base_url, "answer", request_id),
            status_callback=callback_url(settings.public_base_url, "status", request_id),
        )
    except TwilioSendError as exc:
        log.warning("call back of ticket %s not placed: %s", number, exc)
        with transaction(runtime.sessions) as s:
            found = s.get(CallbackRequest, request_id)
            if found is not None:
                callbacks.call_not_placed(s, found, str(exc), runtime.now())
        flash(f"The call back of ticket {number} could not be placed: {exc.message}", "error")
        return redirect(url_for("console.queue"), code=303)
    with transaction(runtime.sessions) as s:
        found = s.get(CallbackRequest, request_id)
        if found is not None:
            callbacks.call_placed(s, found, sid, runtime.now())
    flash(f"Calling your phone for ticket {number}: answer and press 1 to be connected.", "ok")
    return redirect(url_for("console.queue"), code=303)
