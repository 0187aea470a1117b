"""Limits on hostile mail, checked before the standard library's header parser sees a byte.

The ``email`` package's header parser copies the rest of a header value at every token, so its time and
memory grow with the square of a header's length (a Subject of 133 KiB of RFC 2047 encoded words took
551 MiB). Every cap here is checked on the raw bytes, in linear time, before any header is parsed:

- the whole header block (``MAIL_HEADER_MAX_BYTES``; Postfix's own ``header_size_limit`` is 100 KiB);
- one header field, unfolded (``MAIL_HEADER_FIELD_MAX_BYTES``);
- ``=?`` encoded-word openers in one field and in the whole header block
  (``MAIL_HEADER_MAX_ENCODED_WORDS``, ``MAIL_MESSAGE_MAX_ENCODED_WORDS``).

The MIME structure (parts inside parts, ``message/rfc822`` inside ``message/rfc822``) and each part's own
headers are checked in the parsing child (``inbox.sandbox``) right after the structure is read and before
any part's header value is parsed. A message over a cap is quarantined with the cap it broke: no ordinary
mail comes near them, and cutting a header short instead would change what it says (a Subject cut in an
encoded word, a References chain without its last link).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from settings import Settings


class MessageOverLimit(ValueError):
    """The message breaks one of the caps on hostile mail; the text says which."""


@dataclass(frozen=True)
class MailLimits:
    """The caps one message is held to (from the settings of the same names)."""

    header_max_bytes: int = 128 * 1024
    header_field_max_bytes: int = 32 * 1024
    header_max_encoded_words: int = 1000
    message_max_encoded_words: int = 2000
    max_nesting: int = 16
    html_max_bytes: int = 1024 * 1024
    attachment_max_count: int = 20

    @classmethod
    def from_settings(cls, settings: Settings) -> MailLimits:
        """The limits configured in ``settings``."""
        return cls(
            header_max_bytes=settings.mail_header_max_bytes,
            header_field_max_bytes=settings.mail_header_field_max_bytes,
            header_max_encoded_words=settings.mail_header_max_encoded_words,
            message_max_encoded_words=settings.mail_message_max_encoded_words,
            max_nesting=settings.mail_max_nesting,
            html_max_bytes=settings.mail_html_max_bytes,
            attachment_max_count=settings.mail_attachment_max_count,
        )


_END_OF_HEADERS = re.compile(rb"\r?\n\r?\n")
_FIELD_START = re.compile(rb"^(?=[^ \t\r\n])", re.MULTILINE)  # a line that is no continuation starts a field
ENCODED_WORD = b"=?"  # every RFC 2047 encoded word opens so; counting openers over-counts only garbage


def header_block(raw: bytes, limit: int) -> bytes | None:
    """The message's header block (up to the first empty line), or None when it is longer than ``limit``."""
    end = _END_OF_HEADERS.search(raw, 0, limit + 4)
    if end is not None:
        return raw[: end.start()] if end.start() <= limit else None
    return raw if len(raw) <= limit else None  # a message with no body is all header


def check_headers(raw: bytes, limits: MailLimits) -> str | None:
    """Why this message's own header block is over a cap (the reason, naming the setting), or None."""
    block = header_block(raw, limits.header_max_bytes)
    if block is None:
        return f"header block is over MAIL_HEADER_MAX_BYTES ({limits.header_max_bytes} bytes)"
    total = 0
    starts = [m.start() for m in _FIELD_START.finditer(block)] + [len(block)]
    for begin, end in zip(starts, starts[1:], strict=False):
        reason = _field_over(block[begin:end], limits)
        if reason is not None:
            return reason
        total += block.count(ENCODED_WORD, begin, end)
    return _encoded_words_over(
        "headers hold", total, limits.message_max_encoded_words, "MAIL_MESSAGE_MAX_ENCODED_WORDS"
    )


def _field_over(field: bytes, limits: MailLimits) -> str | None:
    name = field.split(b":", 1)[0][:60].decode("ascii", "replace").strip() or "a header"
    if len(field) > limits.header_field_max_bytes:
        return (
            f"{name} header is {len(field)} bytes, over MAIL_HEADER_FIELD_MAX_BYTES ({limits.header_field_max_bytes})"
        )
    words = field.count(ENCODED_WORD)
    return _encoded_words_over(
        f"{name} header holds", words, limits.header_max_encoded_words, "MAIL_HEADER_MAX_ENCODED_WORDS"
    )


def _encoded_words_over(where: str, count: int, cap: int, setting: str) -> str | None:
    """The reason when ``count`` encoded words are over ``cap`` (``where``: the place, with its verb), else None."""
    if count <= cap:
        return None
    return f"{where} {count} encoded words (=?...?=), over {setting} ({cap})"


def check_structure(msg: Message, limits: MailLimits) -> str | None:
    """Why a parsed message's structure is over a cap (nesting, a part's header), or None.

    Looks only at each part's raw header text (``raw_items``) and the tree of parts, so no header value is
    parsed before its size is known.
    """
    stack: list[tuple[Message, int]] = [(msg, 1)]
    while stack:
        part, depth = stack.pop()
        if depth > limits.max_nesting:
            return f"MIME parts are nested more than {limits.max_nesting} deep (MAIL_MAX_NESTING)"
        if part is not msg:
            for name, value in part.raw_items():
                text = str(value)
                field = f"{name}: {text}".encode("utf-8", "surrogateescape")
                reason = _field_over(field, limits)
                if reason is not None:
                    return f"a MIME part's {reason}"
        payload = part.get_payload() if part.is_multipart() else None
        if isinstance(payload, list):
            stack.extend((child, depth + 1) for child in payload if isinstance(child, Message))
    return None
