"""``flask --app wsgi psa ...``: the PSA bridge (ConnectWise): its state, a pass now, Send again."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import func, select

from integrations import bridge
from integrations.connectwise import NAME, ConfigError, ConnectWise
from integrations.psa import PsaError
from integrations.psa_models import PsaLink, PsaOperation
from runtime.web import rt
from ticketing.db import transaction

group = AppGroup("psa", help="The PSA bridge (ConnectWise).")


def _psa() -> ConnectWise:
    try:
        psa = bridge.configured(rt())
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if psa is None:
        raise click.ClickException("no PSA bridge: CONNECTWISE_FILE is not set")
    return psa


@group.command("status")
def status() -> None:
    """Tickets linked, operations by state, and the failed ones."""
    runtime = rt()
    with runtime.sessions() as s:
        linked = s.scalar(select(func.count(PsaLink.id)).where(PsaLink.psa == NAME)) or 0
        counts = dict(
            s.execute(
                select(PsaOperation.state, func.count(PsaOperation.id))
                .where(PsaOperation.psa == NAME)
                .group_by(PsaOperation.state)
            ).all()
        )
        click.echo(
            f"linked {linked}; sent {counts.get('done', 0)}; waiting {counts.get('pending', 0)}; "
            f"failed {counts.get('dead', 0)}"
        )
        for op, number in bridge.dead_letters(s, NAME):
            click.echo(f"failed {op.id}: ticket {number} {op.op} after {op.attempts} attempts: {op.last_error}")


@group.command("sync")
def sync() -> None:
    """Run one pass of the bridge now (the sweeper runs it every minute)."""
    psa = _psa()
    try:
        done = bridge.sync(psa, runtime=rt())
    except PsaError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(", ".join(f"{k} {v}" for k, v in done.items()))


@group.command("send-again")
@click.argument("operation", type=int)
def send_again(operation: int) -> None:
    """Put a failed operation back in line (sent on the bridge's next pass)."""
    runtime = rt()
    with transaction(runtime.sessions) as s:
        if bridge.send_again(s, operation, runtime.now()) is None:
            raise click.ClickException(f"operation {operation} is not a failed one")
    click.echo(f"operation {operation} will be sent again")


def register(app: Flask) -> None:
    """Add the ``psa`` command group."""
    app.cli.add_command(group)
