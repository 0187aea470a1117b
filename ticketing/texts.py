"""Texts (SMS and MMS) to the support number: the keywords carriers require, opt-outs, and a text's ticket.

The rules, in one place (``ivr.sms`` answers the webhook with them, the workers check ``refusal`` before any SMS):

- a text that is only an opt-out keyword (STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT; any case,
  spaces around it ignored, as Twilio matches them) opts its number out: no reply and no SMS at all to it until
  it texts an opt-in keyword (START, YES, UNSTOP). HELP or INFO gets the support line's name and number. None of
  them opens a ticket. Twilio's Advanced Opt-Out names the keyword's type in ``OptOutType``; that wins.
- any other text opens a P3 ticket, or joins the sender's ticket opened by text in the last ``SMS_THREAD_HOURS``
  while it is still open. The same MessageSid twice is one message (its key is ``sms:<MessageSid>``).
- the answer is in Spanish when the text reads as Spanish or the sender's latest ticket was in Spanish.

Like ``ticketing.conversation``, the functions that change rows leave the commit to the caller.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ticketing import conversation, lifecycle, outbox, phone
from ticketing.models import OPEN_STATUSES, Contact, SmsOptOut, Source, Ticket, TicketMessage
from ticketing.policy import SupportPolicy
from ticketing.text import one_line

OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
OPT_IN = frozenset({"START", "YES", "UNSTOP"})
HELP = frozenset({"HELP", "INFO"})
MEDIA = outbox.SMS_MEDIA  # fetch a text's pictures from Twilio (workers.texts)
MAX_BODY_CHARS = 5000  # Twilio delivers at most 1600; anything longer is cut, and says so
MAX_MEDIA = 10  # Twilio sends at most 10 media with one message
SUMMARY_CHARS = 80
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")  # every control character but LF and TAB
_WORD = re.compile(r"[a-záéíóúüñ]+")
# Words that are common in Spanish requests and rare in English ones (no "no", "a", "me", "con" ...).
_SPANISH = frozenset(
    "hola gracias favor por el la los las del que mi mis tengo tenemos problema problemas funciona necesito "
    "ayuda está esta están estan puede pueden urgente impresora computadora correo contraseña servidor "
    "buenos buenas días dias tardes noches señor señora oficina sistema red una uno pero muy también "
    "cuando donde porque para nuestro nuestra sin es son hay llamar llamen gracias".split()
)
_ENGLISH = frozenset(
    "the is are my our we i it not please help with can you this that and to of for have has printer "
    "computer email password server network office down working".split()
)


def keyword(body: str | None, opt_out_type: str | None = None) -> str | None:
    """ "stop", "start" or "help" when the text is only such a keyword (or Twilio says which it is), else None."""
    kind = (opt_out_type or "").strip().lower()
    if kind in ("stop", "start", "help"):
        return kind
    word = (body or "").strip().upper()
    if word in OPT_OUT:
        return "stop"
    if word in OPT_IN:
        return "start"
    if word in HELP:
        return "help"
    return None


def clean_body(body: str | None) -> str:
    """The text as stored: line breaks as LF, no other control characters, at most ``MAX_BODY_CHARS``."""
    text = (body or "").replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub(" ", text).strip()
    if len(text) > MAX_BODY_CHARS:
        cut = len(text) - MAX_BODY_CHARS
        text = text[:MAX_BODY_CHARS] + f"\n[{cut} more characters not kept]"
    return text


def summary_of(text: str, pictures: int) -> str:
    """The ticket's summary: the text's first words on one line, else what it carried."""
    line = one_line(text)
    if len(line) > SUMMARY_CHARS:
        line = line[: SUMMARY_CHARS - 1].rstrip() + "…"
    if line:
        return line
    return "Picture by text message" if pictures else "Text message"


def looks_spanish(text: str | None) -> bool:
    """Whether a text reads as Spanish: Spanish punctuation, or more of its common words than English ones."""
    lowered = (text or "").lower()
    if "¿" in lowered or "¡" in lowered or "ñ" in lowered:
        return True
    words = _WORD.findall(lowered)
    spanish = sum(w in _SPANISH for w in words)
    english = sum(w in _ENGLISH for w in words)
    return spanish >= 2 and spanish > english


def joins_thread(opened_at: datetime, now: datetime, hours: int) -> bool:
    """Whether a ticket opened by text at ``opened_at`` is recent enough for a text at ``now`` to join it."""
    return now - opened_at <= timedelta(hours=hours)


# --- opt-outs -----------------------------------------------------------------------------------------


def opt_out_of(session: Session, number: str | None) -> SmsOptOut | None:
    """The number's opt-out while it stands (it texted STOP and not START since), else None."""
    e164 = phone.normalize(number)
    if e164 is None:
        return None
    row = session.scalars(select(SmsOptOut).where(SmsOptOut.number == e164)).first()
    return row if row is not None and row.opted_out_at is not None else None


def refusal(session: Session, number: str | None) -> str | None:
    """Why no SMS may go to ``number`` ("opted out: ..."), or None when it may."""
    row = opt_out_of(session, number)
    if row is None or row.opted_out_at is None:
        return None
    return (
        f"opted out: {phone.mask(row.number)} texted {row.keyword} on {row.opted_out_at:%Y-%m-%d %H:%M} UTC; "
        "no SMS goes to it until it texts START"
    )


def record_keyword(session: Session, number: str, word: str, kind: str, now: datetime) -> SmsOptOut | None:
    """A "stop" opts ``number`` out, a "start" lifts that; returns the row (None for "help", which changes nothing)."""
    if kind not in ("stop", "start"):
        return None
    e164 = phone.normalize(number)
    if e164 is None:
        return None
    row = session.scalars(select(SmsOptOut).where(SmsOptOut.number == e164)).first()
    if row is None:
        if kind == "start":
            return None  # never opted out: nothing to lift
        row = SmsOptOut(number=e164, keyword="", updated_at=now)
        session.add(row)
    if kind == "stop" and row.opted_out_at is None:
        row.opted_out_at = now
    elif kind == "start":
        row.opted_out_at = None
    row.keyword = (one_line(word).upper() or kind.upper())[:16]
    row.updated_at = now
    return row


# --- a text's ticket ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Media:
    """One picture (or other file) of an MMS, as Twilio names it."""

    url: str
    content_type: str


@dataclass(frozen=True)
class Received:
    """What became of a text: its ticket and message, whether the ticket is new, whether it came before."""

    ticket: Ticket
    message: TicketMessage
    opened: bool
    duplicate: bool
    language: str


def message_key(sid: str) -> str:
    """The stored message's key: one message per MessageSid, however often Twilio delivers it."""
    return f"sms:{sid}"


def receive(
    session: Session,
    *,
    sid: str,
    sender: str,
    body: str | None,
    media: Sequence[Media] = (),
    now: datetime,
    policy: SupportPolicy,
    thread_hours: int,
) -> Received | None:
    """Put a text from ``sender`` (E.164) on its ticket; None when it says nothing (no words, no pictures)."""
    existing = session.scalars(select(TicketMessage).where(TicketMessage.key == message_key(sid))).first()
    if existing is not None:
        return Received(existing.ticket, existing, False, True, existing.ticket.language)
    text = clean_body(body)
    if not text and not media:
        return None
    client, contact = lifecycle.find_caller(session, sender)
    language = "es" if looks_spanish(text) or _latest_language(session, sender, contact) == "es" else "en"
    author = (contact.name if contact is not None else sender)[:120]
    stored = text or f"[{len(media)} picture{'s' if len(media) != 1 else ''} sent by text message]"
    thread = _thread_of(session, sender, now, thread_hours)
    opened = thread is None
    if thread is None:
        thread = lifecycle.open_ticket(
            session,
            policy=policy,
            now=now,
            priority="P3",
            source=Source.SMS,
            actor=author,
            caller_number=sender,
            summary=summary_of(text, len(media)),
            description=stored,
            reason="opened by a text message",
            notify=False,  # the text's own answer gives the number
        )
        thread.language = language
    landing = conversation.add_client_message(
        session,
        thread,
        body=stored,
        author=author,
        now=now,
        policy=policy,
        channel="sms",
        from_address=sender,
        key=message_key(sid),
    )
    if media:
        session.flush()
        outbox.post(
            session,
            MEDIA,
            f"{MEDIA}:{sid}",
            {"message": landing.message.id, "sid": sid, "media": [[m.url, m.content_type] for m in media[:MAX_MEDIA]]},
            now,
        )
    return Received(landing.ticket, landing.message, opened, False, language)


def _thread_of(session: Session, sender: str, now: datetime, hours: int) -> Ticket | None:
    """The sender's newest ticket opened by text that a new text joins (open, recent enough), if any."""
    ticket = session.scalars(
        select(Ticket)
        .where(Ticket.caller_number == sender, Ticket.source == Source.SMS.value)
        .where(Ticket.opened_at >= now - timedelta(hours=hours), Ticket.status.in_(OPEN_STATUSES))
        .order_by(Ticket.opened_at.desc(), Ticket.id.desc())
        .limit(1)
    ).first()
    return ticket if ticket is not None and joins_thread(ticket.opened_at, now, hours) else None


def _latest_language(session: Session, sender: str, contact: Contact | None) -> str | None:
    """The language of the sender's latest ticket (their contact's, or their number's)."""
    query = select(Ticket.language)
    query = query.where(Ticket.contact_id == contact.id) if contact is not None else query
    query = query.where(Ticket.caller_number == sender) if contact is None else query
    return session.scalar(query.order_by(Ticket.opened_at.desc(), Ticket.id.desc()).limit(1))


def latest_language(session: Session, sender: str | None) -> str | None:
    """The language a sender's answers come in when their text carries none (their latest ticket's)."""
    if sender is None:
        return None
    _client, contact = lifecycle.find_caller(session, sender)
    return _latest_language(session, sender, contact)
