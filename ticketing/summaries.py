"""What the client is told a ticket is about: its client summary, the one line of every client email's subject and
of the portal's list and ticket page.

A voicemail's summary line is the recogniser's reading of the message, which may be wrong ("Our file firm are in
town"): it helps the coordinators and never reaches the client. Until a person writes the client summary, a
voicemail ticket is "Voicemail from (805) 555-0142, Mon 10:12" in the ticket's language, the time in the
policy's time zone. Email and portal tickets keep the subject the client wrote, and a ticket a person opened
(console, API) the summary that person wrote.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo

import phonenumbers
from babel.dates import format_datetime
from sqlalchemy.orm import Session

from ticketing import phone
from ticketing.audit import audit
from ticketing.errors import InvalidInput
from ticketing.models import Source, Ticket
from ticketing.text import one_line

MAX_CHARS = 200

# ``_("Ticket {n}.", n=1)``: translate, then fill the placeholders (``languages.translator`` makes one per
# language; the messages below are in the catalogue).
Translate = Callable[..., str]


def english(message: str, **values: object) -> str:
    """The source language's ``Translate``: the message as written, its placeholders filled."""
    return message.format(**values) if values else message


def by_person(ticket: Ticket) -> bool:
    """Whether a person wrote what the client sees (its client summary, or the summary of a non-voicemail ticket)."""
    return bool(one_line(ticket.client_summary)) or ticket.source != Source.VOICEMAIL.value


def client_summary(ticket: Ticket, *, tz: tzinfo, translate: Translate = english) -> str:
    """The one line the client sees about ``ticket`` (empty when nobody wrote one for an email without subject).

    ``tz``: the support policy's time zone; ``translate``: the ticket's language (``languages.translator``).
    """
    written = one_line(ticket.client_summary)
    if written:
        return written
    if ticket.source != Source.VOICEMAIL.value:
        return one_line(ticket.summary)
    return neutral_summary(
        caller=ticket.caller_number,
        at=ticket.opened_at,
        message_left=ticket.recording_sid is not None,
        language=ticket.language or "en",
        tz=tz,
        translate=translate,
    )


def neutral_summary(
    *, caller: str | None, at: datetime, message_left: bool, language: str, tz: tzinfo, translate: Translate = english
) -> str:
    """'Voicemail from (805) 555-0142, Mon 10:12' (a missed call without a message: 'Call from ...')."""
    _ = translate
    when = format_datetime(at.astimezone(tz), "EEE HH:mm", locale=_locale(language))
    number = phone_display(caller)
    if message_left:
        if number:
            return _("Voicemail from {caller}, {when}", caller=number, when=when)
        return _("Voicemail, {when}", when=when)
    if number:
        return _("Call from {caller}, {when}", caller=number, when=when)
    return _("Call, {when}", when=when)


def phone_display(number: str | None) -> str | None:
    """A caller's number as people write it: '(805) 555-0142' in North America, '+44 20 7946 0958' abroad; None
    for a withheld or unusable number."""
    e164 = phone.normalize(number)
    if e164 is None:
        return None
    parsed = phonenumbers.parse(e164)
    if parsed.country_code == 1:
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def _locale(language: str) -> str:
    return language if language and language.replace("_", "").isalpha() else "en"


def write_client_summary(
    session: Session, ticket: Ticket, text: str | None, *, actor: str, now: datetime
) -> str | None:
    """A person writes the summary the client sees (empty: back to the automatic one); audited with before and after.

    One line (line breaks and control characters become spaces), at most 200 characters. Returns the new value.
    """
    value = one_line(text) or None
    if value is not None and len(value) > MAX_CHARS:
        raise InvalidInput(f"a client summary is at most {MAX_CHARS} characters")
    previous = one_line(ticket.client_summary) or None
    if value == previous:
        raise InvalidInput("the client summary is unchanged" if value else "there is no client summary to remove")
    ticket.client_summary = value
    audit(
        session,
        ticket,
        actor=actor,
        action="client summary written" if value else "client summary removed",
        now=now,
        detail={"from": previous, "to": value},
    )
    return value
