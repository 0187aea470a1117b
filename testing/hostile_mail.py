"""Hostile mail, as an attacker (or a broken mailer) writes it: each function returns the raw bytes of one message."""

from __future__ import annotations

import base64
import uuid

FROM = "Mallory <mallory@attacker.example>"


def _message(headers: str, body: str, mid: str | None = None) -> bytes:
    mid = mid or f"<hostile-{uuid.uuid4().hex}@attacker.example>"
    head = (
        f"From: {FROM}\r\nTo: help@itech.example\r\nDate: Wed, 18 Nov 2026 10:02:11 -0800\r\n"
        f"Message-ID: {mid}\r\nMIME-Version: 1.0\r\n{headers}"
    )
    return (head + "\r\n" + body).encode("latin-1")


def encoded_word_subject(words: int, mid: str | None = None) -> bytes:
    """A Subject of ``words`` RFC 2047 encoded words, folded as mailers fold them (14 bytes each)."""
    subject = "\r\n ".join("=?utf-8?q?a?=" for _ in range(words))
    return _message(f"Subject: {subject}\r\nContent-Type: text/plain\r\n", "hello\r\n", mid)


def long_field(size: int) -> bytes:
    """One References header of ``size`` bytes of Message-IDs (plain text, no encoded word)."""
    ids = []
    total = 0
    while total < size:
        ids.append(f"<{len(ids)}@x.example>")
        total += len(ids[-1]) + 3
    return _message("Subject: a long thread\r\nReferences: " + "\r\n ".join(ids) + "\r\n", "hello\r\n")


def many_fields(total: int) -> bytes:
    """A header block of ``total`` bytes in ordinary-sized fields."""
    lines = [f"X-Filler-{i}: {'x' * 60}\r\n" for i in range(total // 76 + 1)]
    return _message("Subject: filler\r\n" + "".join(lines), "hello\r\n")


def encoded_words_across_fields(fields: int, per_field: int) -> bytes:
    """``fields`` headers of ``per_field`` encoded words each: every field under the per-field cap."""
    lines = [f"X-Words-{i}: " + " ".join("=?utf-8?q?b?=" for _ in range(per_field)) + "\r\n" for i in range(fields)]
    return _message("Subject: words\r\n" + "".join(lines), "hello\r\n")


def nested(depth: int) -> bytes:
    """Multipart/mixed parts ``depth`` deep, a line of text at the bottom."""
    body = "Content-Type: text/plain\r\n\r\ndeep down\r\n"
    for level in range(depth - 1):
        body = f'Content-Type: multipart/mixed; boundary="n{level}"\r\n\r\n--n{level}\r\n{body}\r\n--n{level}--\r\n'
    headers, _sep, rest = body.partition("\r\n\r\n")
    return _message("Subject: nested\r\n" + headers + "\r\n", rest)


def many_attachments(count: int) -> bytes:
    """A text part and ``count`` tiny attachments (10,000 make about 1 MiB)."""
    parts = ["--m\r\nContent-Type: text/plain\r\n\r\nSee the attached files.\r\n"]
    parts += [
        f'--m\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="f{i}.bin"\r\n'
        f"\r\nx{i}\r\n"
        for i in range(count)
    ]
    body = "".join(parts) + "--m--\r\n"
    return _message('Subject: files\r\nContent-Type: multipart/mixed; boundary="m"\r\n', body)


def big_html(size: int, mid: str | None = None) -> bytes:
    """An HTML-only message of about ``size`` bytes of paragraphs, base64 as mailers send it."""
    paragraph = "<p>The quarterly <b>report</b> is attached below.</p>\n"
    html = "<html><body>" + paragraph * (size // len(paragraph) + 1) + "</body></html>"
    body = base64.encodebytes(html.encode()).decode().replace("\n", "\r\n")
    return _message(
        "Subject: newsletter\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n",
        body,
        mid,
    )
