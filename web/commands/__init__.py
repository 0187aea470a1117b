"""The ``flask --app wsgi <group> <command>`` commands: tickets, directory, SLA, mail, on-call, users, tokens, portal, simulated time."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    """Attach every command group to the app."""
    from web.commands import accounts, alerts, devtime, oncall, portal, psa, tickets, webhooks

    tickets.register(app)
    oncall.register(app)
    accounts.register(app)
    portal.register(app)
    devtime.register(app)
    psa.register(app)
    webhooks.register(app)
    alerts.register(app)
