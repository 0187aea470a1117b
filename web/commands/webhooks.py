"""``flask --app wsgi webhooks ...``: outbound webhook endpoints (add, list, disable, enable, rotate) and deliveries."""

from __future__ import annotations

from datetime import timedelta

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import select

from integrations import webhooks
from integrations.webhook_models import WebhookDelivery, WebhookEndpoint
from runtime.web import rt
from ticketing.db import transaction

group = AppGroup("webhooks", help="Signed outbound webhooks (Standard Webhooks).")


@group.command("add")
@click.argument("url")
@click.option(
    "--event",
    "events",
    multiple=True,
    type=click.Choice(webhooks.EVENTS),
    help="An event to send (repeat it); every event when none is given.",
)
@click.option("--include-pii", is_flag=True, help="Send transcripts and phone numbers too.")
@click.option("--description", default="", help="What the endpoint is (shown on the console page).")
@click.option("--by", "actor", default="admin", show_default=True, help="Who registers it.")
def add(url: str, events: tuple[str, ...], include_pii: bool, description: str, actor: str) -> None:
    """Register an endpoint; prints its signing secret, shown this once."""
    runtime = rt()
    try:
        with transaction(runtime.sessions) as s:
            endpoint = webhooks.add_endpoint(
                s,
                url,
                list(events or webhooks.EVENTS),
                now=runtime.now(),
                dev_mode=runtime.settings.dev_mode,
                include_pii=include_pii,
                description=description,
                by=actor,
            )
            endpoint_id, secret = endpoint.id, endpoint.secret
    except webhooks.WebhookError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"endpoint {endpoint_id} added; its signing secret (shown once):\n{secret}")


@group.command("list")
def list_endpoints() -> None:
    """Every endpoint: id, state, personal data, events, URL."""
    runtime = rt()
    with runtime.sessions() as s:
        rows = s.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)).all()
        for e in rows:
            state = "enabled" if e.enabled else f"disabled ({e.disabled_reason})"
            pii = "pii" if e.include_pii else "no-pii"
            click.echo(f"{e.id}\t{state}\t{pii}\t{','.join(e.events)}\t{e.url}")
        if not rows:
            click.echo("no endpoints")


def _change(endpoint_id: int, action: str, overlap_hours: float = 24.0) -> str | None:
    runtime = rt()
    try:
        with transaction(runtime.sessions) as s:
            endpoint = webhooks.get_endpoint(s, endpoint_id)
            if action == "disable":
                webhooks.disable(s, endpoint, now=runtime.now(), reason="disabled from the command line")
            elif action == "enable":
                webhooks.enable(endpoint)
            else:
                return webhooks.rotate(endpoint, now=runtime.now(), overlap=timedelta(hours=overlap_hours))
    except webhooks.WebhookError as exc:
        raise click.ClickException(str(exc)) from None
    return None


@group.command("disable")
@click.argument("endpoint_id", type=int)
def disable(endpoint_id: int) -> None:
    """Stop sending to an endpoint (its pending deliveries fail; each can be sent again)."""
    _change(endpoint_id, "disable")
    click.echo(f"endpoint {endpoint_id} disabled")


@group.command("enable")
@click.argument("endpoint_id", type=int)
def enable(endpoint_id: int) -> None:
    """Send to an endpoint again."""
    _change(endpoint_id, "enable")
    click.echo(f"endpoint {endpoint_id} enabled")


@group.command("rotate")
@click.argument("endpoint_id", type=int)
@click.option("--overlap-hours", type=click.FloatRange(0, 24 * 7), default=24.0, show_default=True,
              help="How long the old secret signs too.")  # fmt: skip
def rotate(endpoint_id: int, overlap_hours: float) -> None:
    """A new signing secret (printed once); the old one signs too during the overlap."""
    secret = _change(endpoint_id, "rotate", overlap_hours)
    click.echo(f"endpoint {endpoint_id}: new signing secret (shown once):\n{secret}")


@group.command("deliveries")
@click.argument("endpoint_id", type=int)
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
def deliveries(endpoint_id: int, limit: int) -> None:
    """An endpoint's latest deliveries: id, state, status code, attempts, last attempt, event, webhook-id."""
    runtime = rt()
    with runtime.sessions() as s:
        try:
            webhooks.get_endpoint(s, endpoint_id)
        except webhooks.WebhookError as exc:
            raise click.ClickException(str(exc)) from None
        for d in s.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint_id)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
        ):
            last = d.last_attempt_at.isoformat() if d.last_attempt_at else "-"
            click.echo(
                f"{d.id}\t{d.state}\t{d.last_status or '-'}\t{d.attempts}\t{last}\t{d.event.type}\t{d.message_id}"
            )


@group.command("send-again")
@click.argument("delivery_id", type=int)
def send_again(delivery_id: int) -> None:
    """Send a delivery again, with the same webhook-id (the worker sends it)."""
    runtime = rt()
    try:
        with transaction(runtime.sessions) as s:
            webhooks.send_again(s, delivery_id, now=runtime.now())
    except webhooks.WebhookError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"delivery {delivery_id} will be sent again")


def register(app: Flask) -> None:
    """Add the ``webhooks`` command group."""
    app.cli.add_command(group)
