"""The ``flask --app wsgi <group> <command>`` commands: tickets, directory, SLA, mail, on-call, users, tokens, portal."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    """Attach every command group to the app."""
    from web.commands import accounts, oncall, portal, tickets

    tickets.register(app)
    oncall.register(app)
    accounts.register(app)
    portal.register(app)
