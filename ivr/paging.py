"""Twilio webhooks of the page call and page SMS: what the engineer hears, keypress acks, connect, status callbacks.

Every route is signature-checked. The page call's TwiML URL (passed to
``place_call``) is ``/twilio/page/call?page=<id>``; the engineer presses 1 to
acknowledge or 2 to be connected to the caller from the support number. A
machine answering, or a call that ends without a key press, is never an
acknowledgement. Status callbacks (at least once) record delivery on the page
row; a step whose people are all unreachable escalates at once.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, make_response, render_template_string, request, url_for
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session
from twilio.twiml.voice_response import Dial, VoiceResponse

from ivr.security import twilio_only
from ivr.twiml import VOICE, goodbye
from ivr.webhooks import answering_safely, twiml_response
from providers.twilio_rest import page_url
from providers.twilio_status import Callback, answer, delivery_report, dial_answered
from runtime.web import rt
from settings import Settings
from ticketing import audit, lifecycle, paging, phone
from ticketing.db import transaction
from ticketing.errors import InvalidTransition
from ticketing.models import Page
from ticketing.paging import Acknowledgement, PageContent

log = logging.getLogger(__name__)
blueprint = Blueprint("paging", __name__, url_prefix="/twilio/page")

PROMPT_REPEATS = 2
CONNECT_RING_SECONDS = 30


@blueprint.record_once
def _validate_oncall(state: Any) -> None:
    # A broken on-call file stops the web app at start-up, naming the key.
    paging.oncall_from(state.app.extensions["supportline"].settings.oncall_file)


# --- TwiML (small pure builders) -------------------------------------------------------------------------


def _say(node: Any, text: str) -> None:
    node.say(text, **VOICE)


def _intro(content: PageContent, company: str) -> str:
    caller = phone.spoken_number(content.caller) if content.caller else "withheld"
    extension = phone.spoken_extension(content.caller)
    if extension:
        caller += f", extension {extension}"
    if content.caller and content.callback_origin:
        caller += f", {content.callback_origin}"
    text = (
        f"This is the {company} support line with a P 1 critical page. "
        f"Ticket {phone.spoken_digits(content.ticket)}. Client: {content.client}. Caller: {caller}."
    )
    if content.caller_language:
        text += f" The caller speaks {content.caller_language}."
    if content.transcript:
        text += f" The message says: {paging.shorten(content.transcript, 240)}"
        if content.numbers:
            text += " Numbers in the message may be misheard: check them against the recording."
    return text


def page_prompt(content: PageContent, *, company: str, key_action: str, again: str | None) -> VoiceResponse:
    """The page: ticket, client, caller (and message), then press 1 to acknowledge, 2 to be connected."""
    r = VoiceResponse()
    gather = r.gather(num_digits=1, action=key_action, method="POST", timeout=8, action_on_empty_result=False)
    _say(gather, _intro(content, company))
    _say(gather, "Press 1 to acknowledge. Press 2 to be connected to the caller now.")
    if again is not None:
        r.redirect(again, method="POST")
    else:
        _say(r, "No key was pressed, so this page is not acknowledged. Goodbye.")
        r.hangup()
    return r


def page_voicemail(content: PageContent, *, company: str) -> VoiceResponse:
    """A machine answered: leave a short message; it is not an acknowledgement."""
    r = VoiceResponse()
    _say(
        r,
        f"{company} P 1 critical page for ticket {phone.spoken_digits(content.ticket)}, {content.client}. "
        "Reply 1 to the text message to acknowledge.",
    )
    r.hangup()
    return r


def acknowledged_prompt(ticket: int, *, key_action: str, by: str | None = None) -> VoiceResponse:
    """After the ack (or when someone acknowledged first): offer the connection to the caller."""
    r = VoiceResponse()
    if by:
        _say(r, f"Ticket {phone.spoken_digits(ticket)} was already acknowledged by {by}.")
    else:
        _say(r, f"Acknowledged. Ticket {phone.spoken_digits(ticket)} is assigned to you; escalation has stopped.")
    gather = r.gather(num_digits=1, action=key_action, method="POST", timeout=5, action_on_empty_result=False)
    _say(gather, "To be connected to the caller now, press 2.")
    _say(r, "Goodbye.")
    r.hangup()
    return r


def _callback(ticket: Any) -> str | None:
    """The number an engineer is connected to: the one the caller confirmed or keyed, else the caller ID (a
    number only heard in the message is never dialled without a person checking it)."""
    number, _ = phone.callback_of(ticket.callback_number, ticket.callback_origin, ticket.caller_number)
    return number


def connect_caller(caller: str | None, *, caller_id: str, action: str) -> VoiceResponse:
    """Dial the caller from the support number, so they see the support line calling back."""
    r = VoiceResponse()
    if not caller:
        _say(r, "The caller's number is not available. Please check the ticket. Goodbye.")
        r.hangup()
        return r
    _say(r, "Connecting you to the caller.")
    dial = Dial(action=action, method="POST", timeout=CONNECT_RING_SECONDS, caller_id=caller_id)
    number, _, extension = caller.partition(phone.EXTENSION)
    # A keyed extension is dialled once the line answers, after a short wait ("w": half a second each).
    dial.number(number, send_digits=f"wwww{extension}" if extension else None)
    r.append(dial)
    return r


def connect_outcome(status: str, caller: str | None) -> VoiceResponse:
    """What the engineer hears when the call to the caller ends."""
    r = VoiceResponse()
    if not dial_answered(status):
        number = phone.spoken_number(caller) if caller else "their number"
        _say(r, f"The caller did not answer. Please call them back at {number}. Goodbye.")
    r.hangup()
    return r


# --- views -----------------------------------------------------------------------------------------------


# Never let the engineer hear Twilio's 'application error'.
safe = answering_safely(
    lambda: goodbye("Sorry, the support line could not handle that. Please check the ticket. Goodbye.")
)


def _page_id() -> str:
    return request.args.get("page", "")


@blueprint.post("/call")
@twilio_only
@safe
def call() -> Response:
    """The page call was answered: read the page, or leave a message when a machine answered."""
    runtime = rt()
    answered_by = request.form.get("AnsweredBy")
    repeat = int(request.args.get("repeat", "1") or 1)
    with transaction(runtime.sessions) as s:
        page = paging.page_by_id(s, _page_id())
        if page is None:
            return twiml_response(goodbye("This page is no longer available. Goodbye."))
        escalation = page.escalation
        content = paging.content_of(escalation.ticket)
        human = paging.record_answer(s, page, answer=answer(answered_by), now=runtime.now()) if repeat == 1 else True
        acked_by = escalation.acknowledged_by if escalation.acknowledged_at is not None else None
        page_id = page.id
    company = runtime.settings.company_name
    if not human:
        return twiml_response(page_voicemail(content, company=company))
    key_action = page_url(runtime.settings, "key", page=page_id)
    if acked_by is not None:
        return twiml_response(acknowledged_prompt(content.ticket, key_action=key_action, by=acked_by))
    again = page_url(runtime.settings, "call", page=page_id, repeat=repeat + 1) if repeat < PROMPT_REPEATS else None
    return twiml_response(page_prompt(content, company=company, key_action=key_action, again=again))


@blueprint.post("/key")
@twilio_only
@safe
def key() -> Response:
    """A key on the page call: 1 acknowledges, 2 acknowledges and connects to the caller."""
    runtime = rt()
    digits = (request.form.get("Digits") or "").strip()
    with transaction(runtime.sessions) as s:
        page = paging.page_by_id(s, _page_id())
        if page is None:
            return twiml_response(goodbye("This page is no longer available. Goodbye."))
        page_id, ticket, name = page.id, page.escalation.ticket, page.person_name
        caller, number = _callback(ticket), int(ticket.number or 0)
        paging.lock_ticket(s, ticket.id)
        ack = None
        if digits in ("1", "2"):
            try:
                ack = _acknowledge(s, page, "call")
            except InvalidTransition as exc:
                return twiml_response(goodbye(f"No acknowledgement is needed: {exc}. Goodbye."))
        page.digits = digits[:8] or None
    key_action = page_url(runtime.settings, "key", page=page_id)
    if digits == "2":
        return twiml_response(
            connect_caller(
                caller,
                caller_id=runtime.settings.support_number,
                action=page_url(runtime.settings, "connected", page=page_id),
            )
        )
    if ack is not None:
        someone_else = ack.by if ack.already and ack.by != name else None
        return twiml_response(acknowledged_prompt(number, key_action=key_action, by=someone_else))
    return twiml_response(page_prompt_again(page_id, runtime.settings))


def _acknowledge(session: Session, page: Page, via: str) -> Acknowledgement:
    """The paged person acknowledges their page's ticket (on the call, or by the email page's link)."""
    runtime = rt()
    return paging.acknowledge(
        session,
        page.escalation.ticket,
        page.person_name,
        runtime.now(),
        via,
        person=page.person,
        counts_as_first_response=runtime.settings.ack_counts_as_first_response,
    )


def page_prompt_again(page_id: int, settings: Settings) -> VoiceResponse:
    """A key that is not an option: say so and read the page again."""
    r = VoiceResponse()
    _say(r, "Sorry, that is not one of the options.")
    r.redirect(page_url(settings, "call", page=page_id, repeat=PROMPT_REPEATS), method="POST")
    return r


@blueprint.post("/connected")
@twilio_only
@safe
def connected() -> Response:
    """The call to the caller ended: record the outcome on the ticket."""
    runtime = rt()
    status = request.form.get("DialCallStatus", "")
    with transaction(runtime.sessions) as s:
        page = paging.page_by_id(s, _page_id())
        if page is None:
            return twiml_response(goodbye("Goodbye."))
        ticket = page.escalation.ticket
        paging.lock_ticket(s, ticket.id)
        caller = _callback(ticket)
        reached = dial_answered(status)
        audit.audit(
            s,
            ticket,
            actor=page.person_name,
            action="caller connected" if reached else "caller not reached",
            now=runtime.now(),
            detail={"status": status, "duration": request.form.get("DialCallDuration"), "via": "page call"},
        )
        if reached:  # the engineer spoke to the caller: a person's first response, if the ack did not count as one
            lifecycle.first_response_by_person(s, ticket, by=page.person_name, how="call back", now=runtime.now())
    return twiml_response(connect_outcome(status, caller))


def _delivery(callback: Callback, status_field: str) -> Response:
    """Record a status callback of a page call or SMS, in paging's words; a step nobody can be reached in moves on."""
    from workers.paging import retry_delay

    runtime = rt()
    form = request.form
    if not (form.get(status_field) or "").strip():
        return Response(status=204)
    report = delivery_report(callback, form[status_field], form.get("ErrorCode"), form.get("AnsweredBy"))
    with transaction(runtime.sessions) as s:
        page = paging.page_by_id(s, _page_id())
        if page is None:
            return Response(status=204)
        hurried = paging.record_delivery(
            s,
            page,
            outcome=report.outcome,
            now=runtime.now(),
            answer=report.answer,
            report=report.record,
            note=report.note,
            retry_at=runtime.now() + retry_delay(page.tries or 1, runtime.settings.paging_retry_max_seconds),
        )
        number = int(page.escalation.ticket.number or 0)
        position = page.escalation.next_position
    response = Response(status=204)
    if hurried:
        from workers.paging import escalate_soon

        response.call_on_close(lambda: escalate_soon(runtime, number, position))
    return response


@blueprint.post("/call-status")
@twilio_only
@safe
def call_status() -> Response:
    """Status callback of a page call (completed, busy, no-answer, failed); only a key press acknowledges."""
    return _delivery("call", "CallStatus")


@blueprint.post("/sms-status")
@twilio_only
@safe
def sms_status() -> Response:
    """Status callback of a page SMS (sent, delivered, undelivered, failed)."""
    return _delivery("sms", "MessageStatus")


# --- the acknowledge link of an email page -----------------------------------------------------------------

ack_blueprint = Blueprint("page_ack", __name__, url_prefix="/ack")
ACK_LINK_MAX_AGE = 24 * 3600

_ACK_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Acknowledge P1 page</title>
</head>
<body>
{% if error %}<h1>Acknowledge P1 page</h1><p class="err">{{ error }}</p>
{% else %}
<h1>Ticket #{{ ticket }} · P1 critical</h1>
<p>{{ client }} · caller {{ caller or 'number withheld' }}</p>
{% if done %}<p class="ok">{{ done }}</p>
{% else %}
<p>Paged to <b>{{ person }}</b>. Acknowledging stops the escalation and assigns the ticket to you.</p>
<form method="post" action="{{ url_for('page_ack.acknowledge') }}">
<input type="hidden" name="csrf_token" value="{{ csrf_token() }}"><input type="hidden" name="token" value="{{ token }}">
<button>Acknowledge ticket #{{ ticket }}</button></form>
{% endif %}
<p><a href="{{ ticket_url }}">Open the ticket in the console</a></p>
{% endif %}
</body></html>"""


def _page_from_token(token: str) -> int | None:
    serializer = URLSafeTimedSerializer(rt().settings.secret_key, salt="page-ack")
    try:
        data = serializer.loads(token, max_age=ACK_LINK_MAX_AGE)
    except BadSignature:
        return None
    page = data.get("page") if isinstance(data, dict) else None
    return page if isinstance(page, int) else None


@ack_blueprint.route("", methods=["GET", "POST"])
def acknowledge() -> Response:
    """The email page's link: GET shows a confirmation page (mail scanners follow links), POST acknowledges.

    The token rides in the link's query string and in the button's form, never in a path, so the access log
    (which records paths only, see the Procfile) never holds it; the page sends no Referer.
    """
    token = request.form.get("token", "") if request.method == "POST" else request.args.get("token", "")
    return _acknowledge_page(token)


@ack_blueprint.route("/<token>", methods=["GET", "POST"])
def acknowledge_old_link(token: str) -> Response:
    """Links mailed before the token moved to the query string (they live 24 hours): remove in the next release."""
    return _acknowledge_page(token)


def _acknowledge_page(token: str) -> Response:
    runtime = rt()
    page_id = _page_from_token(token)
    if page_id is None:
        error = "This acknowledge link is not valid or has expired."
        return _no_referrer(render_template_string(_ACK_PAGE, error=error), 400)
    done = None
    with transaction(runtime.sessions) as s:
        page = paging.page_by_id(s, page_id)
        if page is None:
            return _no_referrer(render_template_string(_ACK_PAGE, error="This page no longer exists."), 404)
        ticket = page.escalation.ticket
        if request.method == "POST":
            try:
                ack = _acknowledge(s, page, "email")
            except InvalidTransition as exc:
                done = f"No acknowledgement is needed: {exc}."
            else:
                done = (
                    f"Already acknowledged by {ack.by} via {ack.via}."
                    if ack.already
                    else f"Acknowledged by {ack.by}: escalation stopped, the ticket is assigned to you."
                )
        elif page.escalation.acknowledged_at is not None:
            done = f"Already acknowledged by {page.escalation.acknowledged_by} via {page.escalation.acknowledged_via}."
        html = render_template_string(
            _ACK_PAGE,
            error=None,
            done=done,
            token=token,
            ticket=ticket.number,
            client=ticket.client.name if ticket.client is not None else "unknown client",
            caller=ticket.caller_number,
            person=page.person_name,
            ticket_url=runtime.settings.public_base_url.rstrip("/") + url_for("console.ticket", number=ticket.number),
        )
    return _no_referrer(html, 200)


def _no_referrer(html: str, status: int) -> Response:
    """The page was opened at an address holding the token: no link or stylesheet on it may be told that address."""
    response = make_response(html, status)
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
