"""Inbound SMS to the support number: page acknowledgements from paged people, directions for everyone else."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta

from sqlalchemy import select
from twilio.twiml.messaging_response import MessagingResponse

from languages import translator
from runtime import Runtime
from ticketing import paging, phone
from ticketing.db import transaction
from ticketing.errors import DomainError
from ticketing.models import Ticket

log = logging.getLogger(__name__)
# Only pages this recent can be acknowledged by a bare "1".
ACK_WINDOW = timedelta(hours=24)


def handle_inbound_sms(form: Mapping[str, str], runtime: Runtime) -> MessagingResponse:
    """Answer a text: acknowledge a page ('1', 'ack', 'ACK 400127') from a paged person; otherwise give directions."""
    reply = acknowledge_by_sms(form, runtime)
    if reply is not None:
        r = MessagingResponse()
        r.message(reply)
        return r
    _ = translator(_language_of(phone.normalize(form.get("From")), runtime))
    r = MessagingResponse()
    r.message(
        _(
            "{company} support: text messages are not monitored for new requests. "
            "Please call the support line (press 2 for critical issues) or use the client portal.",
            company=runtime.settings.company_name,
        )
    )
    return r


def _language_of(sender: str | None, runtime: Runtime) -> str | None:
    """The language the sender chose on their latest call (their directions come in it), if any."""
    if sender is None:
        return None
    with runtime.sessions() as s:
        return s.scalar(
            select(Ticket.language)
            .where(Ticket.caller_number == sender)
            .order_by(Ticket.opened_at.desc(), Ticket.id.desc())
            .limit(1)
        )


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
