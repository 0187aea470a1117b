"""Routing keys of monitoring alerts from the command line: ``flask --app wsgi alerts key add|list|revoke``."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from runtime.web import rt as _runtime
from ticketing import alerts as alert_keys
from web.commands.transactions import changing

alerts = AppGroup("alerts", help="Monitoring alerts through the PagerDuty Events API v2 endpoint.")
key = AppGroup("key", help="Routing keys: one per client and monitoring tool.")
alerts.add_command(key)


@key.command("add")
@click.argument("client")
@click.option("--name", required=True, help="The tool that will send with it (e.g. its RMM's name).")
def add_key(client: str, name: str) -> None:
    """Issue a routing key for CLIENT (name or id); shown once, only its hash is kept."""
    runtime = _runtime()
    with changing(runtime.sessions) as s:
        row, raw = alert_keys.issue_key(s, client=client, name=name, actor="command line", now=runtime.now())
        client_name = row.client.name
    url = f"{runtime.settings.public_base_url}/integrations/events/v2/enqueue"
    click.echo(f"routing key for {client_name} ({name}); send Events API v2 events to {url}")
    click.echo(raw)


@key.command("list")
def list_keys() -> None:
    """Every routing key: id, prefix, client, name, state, last used."""
    runtime = _runtime()
    with runtime.sessions() as s:
        for k in alert_keys.alert_keys(s):
            used = k.last_used_at.isoformat(timespec="minutes") if k.last_used_at else "never"
            state = f"revoked {k.revoked_at.isoformat(timespec='minutes')}" if k.revoked_at else "live"
            click.echo(f"{k.id:<5} {k.prefix}…  {k.client.name:<24} {k.name:<20} {state:<28} last used {used}")


@key.command("revoke")
@click.argument("key_id")
def revoke_key(key_id: str) -> None:
    """Revoke a routing key (its id or the prefix the list shows); its events are refused at once."""
    runtime = _runtime()
    with changing(runtime.sessions) as s:
        row = alert_keys.revoke_key(s, key_id, actor="command line", now=runtime.now())
        shown = f"{row.prefix}… of {row.client.name}"
    click.echo(f"routing key {shown} revoked")


def register(app: Flask) -> None:
    """Attach the alerts command group."""
    app.cli.add_command(alerts)
