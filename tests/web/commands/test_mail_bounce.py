"""`mail bounce` (development mode): the delivery-status report it writes is one the intake acts on."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from flask import Flask

from runtime import Runtime
from settings import ROOT
from tests.inbox.conftest import Desk, desk  # noqa: F401 - the fixture
from ticketing import conversation
from web.app import create_app
from web.commands.tickets import delivery_failure

SAMPLE = ROOT / "samples" / "printer-offline.eml"


def test_the_simulated_bounce_marks_the_address_and_mail_deliverable_clears_it(desk: Desk) -> None:  # noqa: F811
    desk.receive(SAMPLE.read_bytes())
    (ticket,) = desk.tickets()
    confirmation = desk.sent()[0]
    assert confirmation["To"].addresses[0].addr_spec == "dana@acme-dental.example"
    desk.receive(
        delivery_failure(
            recipient="dana@acme-dental.example",
            original_message_id=str(confirmation["Message-ID"]),
            subject=str(confirmation["Subject"]),
            now=datetime(2026, 11, 18, 18, 0, tzinfo=UTC),
        )
    )
    with desk.runtime.sessions() as s:
        assert conversation.bouncing(s, "dana@acme-dental.example") is not None
    cli = create_app(runtime=desk.runtime).test_cli_runner()
    cleared = cli.invoke(args=["ticket", "mail-deliverable", str(ticket.number), "--by", "Dana Reyes"])
    assert cleared.exit_code == 0 and "dana@acme-dental.example marked deliverable again" in cleared.output
    again = cli.invoke(args=["ticket", "mail-deliverable", str(ticket.number)])
    assert again.exit_code != 0 and "is not marked bouncing" in again.output


def test_a_bounce_naming_a_message_we_never_sent_marks_nothing(desk: Desk) -> None:  # noqa: F811
    desk.receive(
        delivery_failure(
            recipient="dana@acme-dental.example",
            original_message_id="<made-up@example.org>",
            subject="x",
            now=datetime(2026, 11, 18, 18, 0, tzinfo=UTC),
        )
    )
    with desk.runtime.sessions() as s:
        assert conversation.bouncing(s, "dana@acme-dental.example") is None


def test_mail_bounce_is_refused_outside_development_mode_and_without_mail_sent(
    app: Flask, runtime: Runtime, tmp_path: Path
) -> None:
    cli = app.test_cli_runner()
    refused = cli.invoke(args=["mail", "bounce", "400001"])
    assert refused.exit_code != 0 and "only in development mode" in refused.output
    runtime.settings = runtime.settings.with_overrides(dev_mode=True, dispatch_after_response=False)
    dev = create_app(runtime=runtime).test_cli_runner()
    unknown = dev.invoke(args=["mail", "bounce", "499999"])
    assert unknown.exit_code != 0 and "Traceback" not in unknown.output
    opened = dev.invoke(args=["ticket", "open", "--caller", "+18055550142", "--summary", "Printer offline"])
    number = opened.output.split()[1]
    nothing = dev.invoke(args=["mail", "bounce", number])
    assert nothing.exit_code != 0 and "no mail was sent" in nothing.output


def test_a_header_value_with_a_line_break_is_refused() -> None:
    import pytest

    with pytest.raises(ValueError, match="line break"):
        delivery_failure(
            recipient="dana@acme-dental.example\r\nBcc: x@evil.example",
            original_message_id="<a@b>",
            subject="x",
            now=datetime(2026, 11, 18, 18, 0, tzinfo=UTC),
        )
