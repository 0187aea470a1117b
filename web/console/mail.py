"""The Mail page: quarantined inbound messages first (with why), then the latest messages and what became of them.

Also who sent a stored message and its subject, for this page and for an email ticket's page: read from the
first bytes of the raw message, the two fields only, cut short before decoding (a hostile header is
quarantined by the intake and must not cost the web process what it would cost the parser).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.utils import parseaddr

from flask import render_template
from sqlalchemy import LargeBinary, func, select
from sqlalchemy.orm import Session

from inbox.limits import header_block
from ticketing import portal
from ticketing.models import InboundMail, Ticket
from ticketing.text import one_line
from web.console.auth import blueprint, rt

HEAD_BYTES = 64 * 1024  # From and Subject are read from this much of a message, at most
FIELD_CHARS = 1000  # a field's raw value is cut here before it is decoded
SHOWN_CHARS = 200
_FIELD = re.compile(rb"^(from|subject)[ \t]*:([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Envelope:
    """Who sent a stored message and its subject, as far as its first bytes tell."""

    name: str
    address: str
    subject: str

    @property
    def sender(self) -> str:
        """'Name <address>', or the one of them there is; empty when neither."""
        if self.name and self.address:
            return f"{self.name} <{self.address}>"
        return self.address or self.name


def envelope(head: bytes) -> Envelope:
    """The From and Subject of a raw message (its first bytes will do), decoded, each on one line."""
    block = header_block(head, len(head)) or head
    fields: dict[str, str] = {}
    for match in _FIELD.finditer(block):
        key = match.group(1).decode("ascii").lower()
        if key not in fields:
            fields[key] = _unfolded(match.group(2))
    # The address is parsed before the name's encoded words are decoded: a decoded name may hold anything.
    name, address = parseaddr(fields.get("from", ""))
    if "@" not in address:
        name, address = (name or address), ""
    return Envelope(
        name=_decoded(name),
        address=one_line(address)[:SHOWN_CHARS].lower(),
        subject=_decoded(fields.get("subject", "")),
    )


def _unfolded(raw: bytes) -> str:
    value = re.sub(rb"\r?\n(?=[ \t])", b"", raw[: FIELD_CHARS * 2]).decode("utf-8", "replace").strip()
    if len(value) > FIELD_CHARS:
        value = value[:FIELD_CHARS].rsplit(None, 1)[0]  # never half an encoded word
    return value


def _decoded(value: str) -> str:
    try:
        decoded = str(make_header(decode_header(value)))
    except (HeaderParseError, UnicodeError, LookupError, ValueError):
        decoded = ""
    # A word that does not decode is shown as it came: readable enough to tell the message apart.
    return one_line(decoded.strip() or value)[:SHOWN_CHARS]


def envelopes(session: Session, ids: Iterable[int]) -> dict[int, Envelope]:
    """The envelope of each stored message in ``ids``, by id; only the first ``HEAD_BYTES`` are loaded."""
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    head = func.substr(InboundMail.raw, 1, HEAD_BYTES, type_=LargeBinary)
    rows = session.execute(select(InboundMail.id, head).where(InboundMail.id.in_(wanted))).all()
    return {row[0]: envelope(bytes(row[1] or b"")) for row in rows}


def fate(state: str, number: int | None) -> str:
    """What became of an inbound message, in a few words: new ticket #N, joined #N, quarantined, ignored..."""
    ticket = f" #{number}" if number else ""
    return {
        "stored": "waiting for the worker",
        "ticketed": f"new ticket{ticket}",
        "threaded": f"joined{ticket}",
        "bounce": "bounce",
        "ignored": "ignored",
        "quarantined": "quarantined",
    }.get(state, state)


@blueprint.get("/mail")
def mail_intake() -> str:
    """Inbound email: quarantined messages first (with why), then the latest messages and what became of them."""
    runtime = rt()
    with runtime.sessions() as s:
        columns = (
            InboundMail.id, InboundMail.via, InboundMail.received_at, InboundMail.size, InboundMail.state,
            InboundMail.outcome, InboundMail.dedupe_key, InboundMail.ticket_id,
        )  # fmt: skip
        quarantined = s.execute(
            select(*columns).where(InboundMail.state == "quarantined").order_by(InboundMail.id.desc()).limit(200)
        ).all()
        recent = s.execute(select(*columns).order_by(InboundMail.id.desc()).limit(100)).all()
        numbers = dict(
            s.execute(select(Ticket.id, Ticket.number).where(Ticket.id.in_([r.ticket_id for r in recent]))).all()
        )
        heads = envelopes(s, [r.id for r in quarantined] + [r.id for r in recent])
        refused = portal.refused_links(s)
        return render_template(
            "console/mail_intake.html",
            quarantined=quarantined,
            recent=recent,
            numbers=numbers,
            heads=heads,
            fate=fate,
            refused_links=refused,
        )
