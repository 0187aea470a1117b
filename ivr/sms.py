"""Inbound SMS and MMS to the support number: page acknowledgements from paged people, then the client's texts.

A paged person's acknowledgement is handled first, exactly as before texts opened tickets. Then the rules of
``ticketing.texts``: STOP and the other opt-out keywords (no ticket, no reply, no SMS to the number until it
texts START), START (lifts it), HELP (the support line's name and number), and anything else a P3 ticket or
a message on the sender's open ticket opened by text, answered with the ticket number. Pictures are fetched
by a job (``workers.texts``) after the response.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import timedelta

from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from twilio.twiml.messaging_response import MessagingResponse

from languages import translator
from runtime import Runtime
from ticketing import paging, phone, texts
from ticketing.db import transaction
from ticketing.errors import DomainError
from workers.dispatch import claim_for_response
from workers.mail import support_phone

log = logging.getLogger(__name__)
# Only pages this recent can be acknowledged by a bare "1".
ACK_WINDOW = timedelta(hours=24)
_MESSAGE_SID = re.compile(r"^(SM|MM)[0-9a-fA-F]{32}$")


def handle_inbound_sms(form: Mapping[str, str], runtime: Runtime) -> MessagingResponse:
    """Answer a text: a page acknowledgement first; then keywords; then the client's ticket."""
    reply = acknowledge_by_sms(form, runtime)
    if reply is not None:
        r = MessagingResponse()
        r.message(reply)
        return r
    sender = phone.normalize(form.get("From"))
    if sender is None:
        # No number to answer or to file the ticket under (withheld, a short code, garbage): nothing to do.
        log.info("text from a withheld or invalid number ignored")
        return MessagingResponse()
    kind = texts.keyword(form.get("Body"), form.get("OptOutType"))
    if kind in ("stop", "start"):
        with transaction(runtime.sessions) as s:
            texts.record_keyword(s, sender, (form.get("Body") or kind), kind, runtime.now())
        log.info("SMS %s from %s", "opt-out" if kind == "stop" else "opt-in", phone.mask(sender))
        return MessagingResponse()  # Twilio itself sends the confirmation carriers require
    with runtime.sessions() as s:
        opted_out = texts.opt_out_of(s, sender) is not None
        language = texts.latest_language(s, sender)
    if kind == "help":
        return _answer(None if opted_out else _help(runtime, language))
    if paging.parse_ack(form.get("Body"))[0]:
        # "1", "ack 400127" from a number with no page to acknowledge: no client's request, no ticket.
        _ = translator(language)
        return _answer(
            None
            if opted_out
            else _(
                "{company} support: there is no page to acknowledge from this number. "
                "To ask for help, text a few words about the problem, or call {phone}.",
                company=runtime.settings.company_name,
                phone=support_phone(runtime.settings.support_number),
            )
        )
    sid = (form.get("MessageSid") or form.get("SmsMessageSid") or "").strip()
    if not _MESSAGE_SID.match(sid):
        log.warning("text from %s without a MessageSid refused", phone.mask(sender))
        return MessagingResponse()
    try:
        received = _receive(form, runtime, sid, sender)
    except (DomainError, SQLAlchemyError):
        log.exception("text %s from %s not taken", sid, phone.mask(sender))
        _ = translator(language)
        return _answer(
            None
            if opted_out
            else _(
                "{company} support: we could not take your message just now. Please call {phone}.",
                company=runtime.settings.company_name,
                phone=support_phone(runtime.settings.support_number),
            )
        )
    if opted_out:
        return MessagingResponse()  # the text is on its ticket; the number gets nothing from us until START
    if received is None:
        _ = translator(language)
        return _answer(
            _(
                "{company} support: please text a few words about the problem, or call {phone}.",
                company=runtime.settings.company_name,
                phone=support_phone(runtime.settings.support_number),
            )
        )
    _ = translator(received.language)
    if received.opened and not received.duplicate:
        text = _(
            "{company} support: thank you, we opened ticket #{number} for your message. "
            "Reply to this number to add to it.",
            company=runtime.settings.company_name,
            number=received.ticket.number,
        )
    else:
        text = _(
            "{company} support: your message is on ticket #{number}.",
            company=runtime.settings.company_name,
            number=received.ticket.number,
        )
    return _answer(text)


def _receive(form: Mapping[str, str], runtime: Runtime, sid: str, sender: str) -> texts.Received | None:
    """The text on its ticket, in one transaction; a copy of it arriving at the same moment is retried once."""
    media = _media(form)

    def attempt() -> texts.Received | None:
        with transaction(runtime.sessions) as s:
            received = texts.receive(
                s,
                sid=sid,
                sender=sender,
                body=form.get("Body"),
                media=media,
                now=runtime.now(),
                policy=runtime.policy,
                thread_hours=runtime.settings.sms_thread_hours,
            )
            if received is not None:
                received.ticket.number  # noqa: B018 - loaded before the session closes
            claimed = claim_for_response(s, runtime)
        _hand_over(claimed)
        return received

    try:
        return attempt()
    except IntegrityError:
        return attempt()  # Twilio's retry raced the first delivery: now it finds the stored message


def _media(form: Mapping[str, str]) -> list[texts.Media]:
    """The MMS media Twilio lists (MediaUrl0..N with MediaContentType0..N), at most ``texts.MAX_MEDIA``."""
    raw = (form.get("NumMedia") or "0").strip()
    count = min(int(raw), texts.MAX_MEDIA) if raw.isdigit() and len(raw) < 4 else 0
    found = []
    for i in range(count):
        url = (form.get(f"MediaUrl{i}") or "").strip()
        if url:
            found.append(texts.Media(url=url[:1000], content_type=(form.get(f"MediaContentType{i}") or "")[:120]))
    return found


def _hand_over(claimed: list) -> None:  # type: ignore[type-arg]
    """Messages claimed in the text's transaction go to Redis right after the response (the voice blueprint's
    after-request step, which serves /twilio/sms); outside a request the sweeper dispatches them."""
    from flask import g, has_request_context

    if claimed and has_request_context():
        g.setdefault("outbox_claimed", []).extend(claimed)


def _help(runtime: Runtime, language: str | None) -> str:
    _ = translator(language)
    return _(
        "{company} support line: call {phone} (press 2 for critical issues) or text your request here. "
        "Reply STOP to stop texts.",
        company=runtime.settings.company_name,
        phone=support_phone(runtime.settings.support_number),
    )


def _answer(text: str | None) -> MessagingResponse:
    r = MessagingResponse()
    if text:
        r.message(text)
    return r


def acknowledge_by_sms(form: Mapping[str, str], runtime: Runtime) -> str | None:
    """The reply to an acknowledgement from a number that was paged, or None when the text is no such ack."""
    is_ack, wanted = paging.parse_ack(form.get("Body"))
    sender = phone.normalize(form.get("From"))
    if not is_ack or sender is None:
        return None
    now = runtime.now()
    try:
        with transaction(runtime.sessions) as s:
            paged = paging.paged_tickets_for(s, sender, since=now - ACK_WINDOW)
            if not paged:
                return None  # not a paged person: the usual directions
            if wanted is not None:
                paged = [(t, p) for t, p in paged if t.number == wanted]
                if not paged:
                    return f"You were not paged for ticket #{wanted}. Reply ACK and the ticket number of your page."
            open_ = [
                (t, p)
                for t, p in paged
                if (e := paging.escalation_of(s, t)) is not None and e.state in paging.ACKNOWLEDGEABLE
            ]
            ticket, page = (open_ or paged)[0]
            result = paging.acknowledge(
                s,
                ticket,
                page.person_name,
                now,
                "sms",
                person=page.person,
                counts_as_first_response=runtime.settings.ack_counts_as_first_response,
            )
            client = ticket.client.name if ticket.client is not None else "unknown client"
            caller = ticket.caller_number or "number withheld"
            others = [t.number for t, _p in open_[1:]]
    except DomainError as exc:
        log.info("SMS ack from %s refused: %s", phone.mask(sender), exc)
        return f"Could not acknowledge: {exc}."
    if result.already:
        return f"Ticket #{result.ticket} was already acknowledged by {result.by} ({result.via})."
    text = f"Acknowledged ticket #{result.ticket} ({client}); escalation stopped. Caller: {caller}."
    if others:
        text += " Still paging you: " + ", ".join(f"#{n}" for n in others) + " (reply ACK <number>)."
    return text
