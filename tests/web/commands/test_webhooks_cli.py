"""``flask webhooks ...``: add (secret shown once), list, disable, enable, rotate, deliveries, send-again."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from integrations import webhooks
from integrations.webhook_models import WebhookDelivery, WebhookEndpoint
from runtime import Runtime
from ticketing.db import transaction


def test_the_webhooks_commands(app: Flask, runtime: Runtime) -> None:
    cli = app.test_cli_runner()
    added = cli.invoke(args=["webhooks", "add", "https://hooks.example.com/x", "--event", "ticket.created",
                             "--event", "page.sent", "--description", "PSA"])  # fmt: skip
    assert added.exit_code == 0, added.output
    with runtime.sessions() as s:
        row = s.scalars(select(WebhookEndpoint)).one()
    assert row.secret in added.output and row.events == ["ticket.created", "page.sent"] and not row.include_pii
    listing = cli.invoke(args=["webhooks", "list"]).output
    assert "https://hooks.example.com/x" in listing and row.secret not in listing and "no-pii" in listing

    for args, why in (
        (["https://hooks.example.com/x", "--event", "ticket.deleted"], "Invalid value"),
        (["http://hooks.example.com/x"], "https"),
        (["https://hooks.example.com/\r\nx"], "control"),
        (["https://u:p@hooks.example.com/"], "user name"),
    ):
        refused = cli.invoke(args=["webhooks", "add", *args])
        assert refused.exit_code != 0 and why in refused.output, args

    assert cli.invoke(args=["webhooks", "disable", str(row.id)]).exit_code == 0
    assert "disabled (disabled from the command line)" in cli.invoke(args=["webhooks", "list"]).output
    assert cli.invoke(args=["webhooks", "enable", str(row.id)]).exit_code == 0
    rotated = cli.invoke(args=["webhooks", "rotate", str(row.id), "--overlap-hours", "2"])
    with runtime.sessions() as s:
        after = s.get(WebhookEndpoint, row.id)
        assert after is not None and after.secret in rotated.output and after.previous_secret == row.secret
    missing = cli.invoke(args=["webhooks", "disable", "999"])
    assert missing.exit_code != 0 and "no webhook endpoint 999" in missing.output

    with transaction(runtime.sessions) as s:
        webhooks._record(s, "k", "page.sent", 7, runtime.now(), {"ticket": 7}, {}, runtime.now())
    with runtime.sessions() as s:
        delivery = s.scalars(select(WebhookDelivery)).one()
    shown = cli.invoke(args=["webhooks", "deliveries", str(row.id)]).output
    assert delivery.message_id in shown and "page.sent" in shown and "pending" in shown
    assert cli.invoke(args=["webhooks", "send-again", str(delivery.id)]).exit_code == 0
    assert cli.invoke(args=["webhooks", "send-again", "999"]).exit_code != 0
    assert cli.invoke(args=["webhooks", "deliveries", "999"]).exit_code != 0


def test_an_admin_gets_an_address_for_alerts(app: Flask, runtime: Runtime) -> None:
    cli = app.test_cli_runner()
    assert (
        cli.invoke(args=["users", "add", "ada", "--role", "admin", "--password", "a long admin secret"]).exit_code == 0
    )
    assert cli.invoke(args=["users", "set-email", "ada", " Ada@MSP.example "]).exit_code == 0
    for bad in ("not an address", "ada@msp.example\r\nBcc: x@y.z"):
        refused = cli.invoke(args=["users", "set-email", "ada", bad])
        assert refused.exit_code != 0 and "is not an email address" in refused.output
    with runtime.sessions() as s:
        assert webhooks.admin_addresses(s) == ["ada@msp.example"]
    assert cli.invoke(args=["users", "set-email", "ada", ""]).exit_code == 0
    with runtime.sessions() as s:
        assert webhooks.admin_addresses(s) == []
