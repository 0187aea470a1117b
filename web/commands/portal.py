"""``flask --app wsgi portal invite EMAIL``: email a contact a sign-in link to the client portal."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from runtime.web import rt
from ticketing import portal
from ticketing.db import transaction
from ticketing.errors import DomainError

group = AppGroup("portal", help="The client portal.")


@group.command("invite")
@click.argument("email")
@click.option("--by", "actor", default="coordinator", show_default=True, help="Who sends the invitation (audited).")
def invite(email: str, actor: str) -> None:
    """Email the contact with this address a single-use sign-in link (sent by the worker)."""
    from web.portal.auth import link_limits

    runtime = rt()
    address = portal.normalize_email(email)
    try:
        with transaction(runtime.sessions) as s:
            contact = portal.contact_by_email(s, address or "")
            if contact is None:
                raise click.ClickException(f"no single contact has the address {email!r}")
            portal.invite(s, contact, now=runtime.now(), limits=link_limits(runtime), actor=actor)
            name = contact.name
    except DomainError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"invitation queued for {name} <{address}>; the worker emails the link")


def register(app: Flask) -> None:
    """Add the ``portal`` command group."""
    app.cli.add_command(group)
