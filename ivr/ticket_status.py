"""Press 3: a ticket's status read out, only to a caller of the same client, in the call's language."""

from __future__ import annotations

from typing import Any

from babel.dates import format_datetime
from flask import Response, request
from sqlalchemy import select

from ivr import twiml
from ivr.call import _, _attempt, _log, call_sid, caller, step, url, voice
from ivr.webhooks import twiml_response
from runtime import Runtime
from runtime.web import rt
from ticketing import lifecycle, milestones, phone
from ticketing.errors import UnknownTicket
from ticketing.models import CallEvent, Ticket
from ticketing.routing import MAX_STATUS_ATTEMPTS


@step("/voice/ticket-status")
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
                t = lifecycle.get_ticket(s, digits)
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
    client, _contact = lifecycle.find_caller(session, number)
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
    nxt = milestones.next_milestone(t)
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
