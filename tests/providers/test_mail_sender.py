"""providers.mail against a real SMTP server (aiosmtpd) and the development Maildir."""

from __future__ import annotations

import mailbox
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from providers.mail import MailSendError, send_message
from settings import ConfigError, load_settings, parse_smtp_url
from testing.twilio_server import free_port
from tests.conftest import SmtpInbox


def message(to: str = "ops@example.com") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "support@example.com"
    msg["To"] = to
    msg["Subject"] = "[#400127] P1 page"
    msg.set_content("Reply 1 to acknowledge.")
    return msg


def test_a_message_reaches_a_real_smtp_server(smtp_server: tuple[Controller, SmtpInbox], tmp_path: Path) -> None:
    controller, handler = smtp_server
    where = send_message(message(), smtp_url=f"smtp+insecure://127.0.0.1:{controller.port}", dev_mailbox=tmp_path)
    assert where == f"smtp:127.0.0.1:{controller.port}"
    assert [m["Subject"] for m in handler.messages] == ["[#400127] P1 page"]
    assert handler.messages[0].get_content().strip() == "Reply 1 to acknowledge."


def test_without_smtp_url_the_message_lands_in_the_development_maildir(tmp_path: Path) -> None:
    where = send_message(message(), smtp_url="", dev_mailbox=tmp_path / "mail")
    assert where.startswith("maildir:")
    stored = list(mailbox.Maildir(tmp_path / "mail"))
    assert [m["Subject"] for m in stored] == ["[#400127] P1 page"]


def test_an_unreachable_server_is_a_retryable_failure(tmp_path: Path) -> None:
    with pytest.raises(MailSendError) as failure:
        send_message(message(), smtp_url=f"smtp+insecure://127.0.0.1:{free_port()}", dev_mailbox=tmp_path, timeout=2)
    assert failure.value.retryable


def test_starttls_is_required_when_the_url_asks_for_it(
    smtp_server: tuple[Controller, SmtpInbox], tmp_path: Path
) -> None:
    controller, handler = smtp_server
    with pytest.raises(MailSendError, match="STARTTLS") as failure:
        send_message(message(), smtp_url=f"smtp://127.0.0.1:{controller.port}", dev_mailbox=tmp_path)
    assert not failure.value.retryable
    assert handler.messages == []  # never sent in the clear when TLS was asked for


@pytest.mark.parametrize("url", ["http://mail.example.com", "smtp://", "mailto:a@b"])
def test_a_malformed_smtp_url_stops_start_up_naming_the_setting(url: str) -> None:
    with pytest.raises(ConfigError):
        load_settings({"SMTP_URL": url})


def test_smtp_url_defaults_ports_by_scheme() -> None:
    assert parse_smtp_url("smtps://u:p%40ss@mail.example.com").port == 465
    assert parse_smtp_url("smtps://u:p%40ss@mail.example.com").password == "p@ss"
    assert parse_smtp_url("smtp://mail.example.com").port == 587
