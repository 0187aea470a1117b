"""Outgoing mail: SMTP (TLS or STARTTLS, with authentication) from one URL setting, or a local development mailbox.

``SMTP_URL`` forms:

- ``smtps://user:password@smtp.example.com:465`` - implicit TLS
- ``smtp://user:password@smtp.example.com:587`` - STARTTLS (required: refused if the server does not offer it)
- ``smtp+insecure://127.0.0.1:1025`` - plain SMTP, for a relay on the same host or a test server

With no ``SMTP_URL`` every message is written to a Maildir (``DEV_MAILBOX_DIR``) that a person can read with
any mail client or ``ls``; nothing leaves the machine.
"""

from __future__ import annotations

import mailbox
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

from settings import parse_smtp_url

DEFAULT_TIMEOUT_SECONDS = 15.0


class MailSendError(Exception):
    """The message could not be handed to the mail server; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def new_message_id(domain: str) -> str:
    """A fresh ``<...@domain>`` Message-ID (stored, so replies can be threaded to it)."""
    return make_msgid(domain=domain)


def send_message(
    message: EmailMessage, *, smtp_url: str, dev_mailbox: Path, timeout: float = DEFAULT_TIMEOUT_SECONDS
) -> str:
    """Hand ``message`` to SMTP (or the development Maildir when ``smtp_url`` is empty); return where it went."""
    if not smtp_url:
        dev_mailbox.parent.mkdir(parents=True, exist_ok=True)
        box = mailbox.Maildir(dev_mailbox, create=True)
        try:
            key = box.add(message)
        finally:
            box.close()
        return f"maildir:{dev_mailbox / 'new' / key}"
    target = parse_smtp_url(smtp_url)
    client: smtplib.SMTP | None = None
    try:
        if target.scheme == "smtps":
            client = smtplib.SMTP_SSL(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(target.host, target.port, timeout=timeout)
        client.ehlo()
        if target.scheme == "smtp":
            if not client.has_extn("starttls"):
                raise MailSendError(f"{target.host} does not offer STARTTLS", retryable=False)
            client.starttls(context=ssl.create_default_context())
            client.ehlo()
        if target.username:
            client.login(target.username, target.password)
        refused = client.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        # 451 to every recipient is a temporary refusal (greylisting, a full queue): worth trying again.
        temporary = all(400 <= code < 500 for code, _text in exc.recipients.values())
        raise MailSendError(f"recipient refused: {_answers(exc.recipients)}", retryable=temporary) from exc
    except smtplib.SMTPAuthenticationError as exc:
        raise MailSendError(f"authentication failed ({exc.smtp_code})", retryable=False) from exc
    except smtplib.SMTPResponseException as exc:
        # 4xx is a temporary failure by SMTP's own rules; 5xx is permanent.
        raise MailSendError(f"{exc.smtp_code} {exc.smtp_error!r}", retryable=400 <= exc.smtp_code < 500) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise MailSendError(f"{type(exc).__name__}: {exc}", retryable=True) from exc
    finally:
        if client is not None:
            _hang_up(client)
    if refused:
        raise MailSendError(f"refused recipients: {_answers(refused)}", retryable=False)
    return f"smtp:{target.host}:{target.port}"


def _answers(refused: dict[str, tuple[int, bytes]]) -> str:
    """Each refused address with the server's own answer: "dana@example.com: 550 5.1.1 No such user"."""
    return "; ".join(
        f"{address}: {code} {text.decode('utf-8', 'replace') if isinstance(text, bytes) else text}"
        for address, (code, text) in sorted(refused.items())
    )


def _hang_up(client: smtplib.SMTP) -> None:
    """QUIT, best effort: once the server answered 250 to the message it is accepted, and a connection that
    drops at QUIT must not make the caller send it again."""
    if client.sock is not None:
        client.sock.settimeout(2.0)  # a server slow to say goodbye holds up recording the message as sent
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        client.close()
