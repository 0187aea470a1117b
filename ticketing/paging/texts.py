"""What pages say: the page SMS, the follow-ups, the email page and the call's content; and what a reply means.

Pure: no framework, no clock; the ticket is read, never written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ticketing.phone import CALLBACK_ORIGINS, CALLER_ID, CONFIRMED, callback_of
from ticketing.transcripts import missing_note, numbers_of

if TYPE_CHECKING:
    from ticketing.models import Ticket

SMS_LIMIT = 320  # two SMS segments
TRANSCRIPT_SMS_LIMIT = 300
# The languages a transcript may be translated from, as the pages name them.
LANGUAGE_NAMES = {"es": "Spanish", "en": "English"}
_ACK = re.compile(r"^\s*(?:1|ack|acknowledge)\b[\s:#.-]*(?:#?\s*(\d{4,9}))?\s*[.!]*\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class PageContent:
    """What a page says: ticket number, client, caller and, once transcribed, the message."""

    ticket: int
    client: str
    caller: str | None  # the number to call back first (ticketing.phone.callback_of)
    transcript: str | None
    low_confidence: bool = False
    ticket_url: str | None = None  # the ticket in the console (sign-in leads there)
    missing: str = ""  # "part of the message may be missing: listen to 0:08–0:16"
    numbers: str = ""  # "check 805 555 5018 (another reading heard 805 555 0188) against the recording"
    # A message in another language: the English translation is what the pages carry, marked as such
    # ("Translated from Spanish"), and ``transcript`` says so too (for pages that only read that).
    translated_from: str | None = None  # "Spanish"
    translation: str | None = None
    original: str | None = None  # the transcript in the language spoken
    caller_language: str | None = None  # "Spanish": the caller chose it on the call (the callback needs it)
    # Where ``caller`` came from where it is not the caller ID ("keyed by the caller"): the page says so.
    callback_origin: str | None = None


def shorten(text: str, limit: int) -> str:
    """Whitespace collapsed, cut at a sentence (or else word) end within ``limit`` characters, '…' when cut."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    room = flat[: limit - 1]
    sentence = max(room.rfind(". "), room.rfind("? "), room.rfind("! "))
    if sentence >= limit // 2:
        return room[: sentence + 1] + " …"
    word = room.rfind(" ")
    return (room[:word] if word >= limit // 2 else room).rstrip(" ,;:-") + "…"


def content_of(ticket: Ticket, console_url: str | None = None) -> PageContent:
    """The page content of a ticket as it stands now; with the console's base URL, a link to the ticket."""
    transcript = (ticket.transcript or "").strip() or None
    translation = (getattr(ticket, "transcript_translation", None) or "").strip() or None
    language = ticket.transcript_language or "en"
    translated_from = original = None
    if translation and transcript and language != "en":
        translated_from = LANGUAGE_NAMES.get(language, language)
        original = transcript
        transcript = f"Translated from {translated_from}: {translation}"
    number = int(ticket.number or 0)
    hints = getattr(ticket, "hints", None) or {}
    callback, origin = callback_of(
        getattr(ticket, "callback_number", None),
        getattr(ticket, "callback_origin", None),
        ticket.caller_number,
        hints.get("callback_number") if isinstance(hints, dict) else None,
    )
    check = numbers_of(ticket)
    return PageContent(
        ticket=number,
        client=ticket.client.name if ticket.client is not None else "unknown client",
        caller=callback,
        callback_origin=CALLBACK_ORIGINS.get(origin) if origin not in (None, CALLER_ID, CONFIRMED) else None,
        transcript=transcript,
        low_confidence=bool(ticket.transcript_low_confidence) or _translation_doubtful(ticket, translated_from),
        ticket_url=f"{console_url.rstrip('/')}/tickets/{number}" if console_url else None,
        missing=missing_note(ticket.transcript_missing),
        numbers=check.note if check is not None else "",
        translated_from=translated_from,
        translation=translation if translated_from else None,
        original=original,
        caller_language=LANGUAGE_NAMES.get(ticket.language, ticket.language)
        if getattr(ticket, "language", "en") not in (None, "", "en")
        else None,
    )


def _translation_doubtful(ticket: Ticket, translated_from: str | None) -> bool:
    """The translation a page quotes was marked low confidence (unsure, or a loop cut short)."""
    if not translated_from:
        return False
    passes = getattr(ticket, "transcript_passes", None) or ()
    return any(p.get("pass") == "translation" and p.get("low_confidence") for p in passes if isinstance(p, dict))


def page_sms(content: PageContent, company: str) -> str:
    """The page SMS: ticket number, client, caller number, 'reply 1 to acknowledge' (and the message, once known)."""
    head = (
        f"{company} P1 CRITICAL: ticket #{content.ticket}, {content.client}, "
        f"caller {content.caller or 'number withheld'}"
        + (f" ({content.callback_origin})" if content.callback_origin and content.caller else "")
        + (f" ({content.caller_language}-speaking)" if content.caller_language else "")
        + ". Reply 1 to acknowledge."
        + (f" {content.ticket_url}" if content.ticket_url else "")
    )
    if content.transcript is None:
        return head
    label, text = _message_label(content, "Message")
    warning = " (Numbers in it may be misheard: check them.)" if content.numbers else ""
    room = SMS_LIMIT - len(head) - len(f' {label}: ""') - len(warning)
    return head + (f' {label}: "{shorten(text, room)}"{warning}' if room >= 40 else "")


def _message_label(content: PageContent, label: str) -> tuple[str, str]:
    """The label and text a page quotes: the transcript, or its English translation marked as one."""
    if content.translated_from and content.translation:
        return f"Translated from {content.translated_from}", content.translation
    return label, content.transcript or ""


def follow_up_sms(content: PageContent, *, acknowledged: bool) -> str:
    """The transcript follow-up to people already paged, shortened to fit two SMS segments."""
    note = " (low confidence)" if content.low_confidence else ""
    notes = " ".join(f"({n[:1].upper()}{n[1:]}.)" for n in (content.numbers, content.missing) if n)
    # The caller keyed another number after the page went out: the people paged learn it here.
    callback = f" Call back {content.caller} ({content.callback_origin})." if content.callback_origin else ""
    tail = (f" {notes}" if notes else "") + callback + ("" if acknowledged else " Reply 1 to acknowledge.")
    label, text = _message_label(content, "")
    head = f"Ticket #{content.ticket} transcript{note}" + (f". {label}: " if label else ": ")
    room = TRANSCRIPT_SMS_LIMIT - len(head) - len(tail) - 2
    return f'{head}"{shorten(text, room)}"{tail}'


def numbers_sms(content: PageContent, *, acknowledged: bool) -> str:
    """The follow-up to people already paged when a second reading puts a number of the transcript in doubt."""
    head = f"Ticket #{content.ticket}: the transcript's numbers may be misheard. "
    tail = ("." if acknowledged else ". Reply 1 to acknowledge.") + (
        f" {content.ticket_url}" if content.ticket_url else ""
    )
    note = shorten(content.numbers[:1].upper() + content.numbers[1:], SMS_LIMIT - len(head) - len(tail))
    return f"{head}{note}{tail}"


def parse_ack(body: str | None) -> tuple[bool, int | None]:
    """Is an SMS an acknowledgement ('1', 'ack', 'ACK 400127', any case), and for which ticket number?"""
    match = _ACK.match(body or "")
    if match is None:
        return False, None
    return True, int(match.group(1)) if match.group(1) else None


def another_call_sms(main: int, joined: Ticket, at_local: str) -> str:
    """The one follow-up SMS for a repeat call: "another call from the caller at 21:14"."""
    return (
        f"Ticket #{main}: another call from the caller at {at_local} (ticket #{joined.number}). "
        "Paging continues for the first ticket; reply 1 to acknowledge."
    )


def page_email_text(content: PageContent, *, company: str, ack_url: str, ticket_url: str, support_number: str) -> str:
    """The email page's text: the page SMS's facts, the message once known, how to acknowledge."""
    lines = [
        f"{company} P1 CRITICAL page",
        "",
        f"Ticket:  #{content.ticket}",
        f"Client:  {content.client}",
        f"Caller:  {content.caller or 'number withheld'}"
        + (f" ({content.callback_origin})" if content.callback_origin and content.caller else "")
        + (f" ({content.caller_language}-speaking)" if content.caller_language else ""),
    ]
    if content.transcript and content.translated_from and content.translation:
        note = " (low confidence: listen to the audio)" if content.low_confidence else ""
        lines += [
            "",
            f"Message, translated from {content.translated_from} by machine{note}:",
            shorten(content.translation, 1500),
            "",
            f"Original ({content.translated_from}):",
            shorten(content.original or "", 1500),
        ]
    elif content.transcript:
        note = " (low confidence: listen to the audio)" if content.low_confidence else ""
        lines += ["", f"Message{note}:", shorten(content.transcript, 1500)]
    lines += [
        "",
        "Acknowledge (stops the escalation; opens a confirmation page):",
        ack_url,
        "",
        f"Or reply 1 to the page SMS, or text ACK {content.ticket} from your on-call phone to {support_number}.",
        "",
        "The ticket in the console:",
        ticket_url,
    ]
    return "\n".join(lines) + "\n"
