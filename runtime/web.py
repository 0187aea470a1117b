"""The runtime of the web app serving the current request or command, for blueprints and commands.

A leaf module: blueprints import it, never the app factory (which imports them).
"""

from __future__ import annotations

from flask import current_app

from runtime import Runtime


def rt() -> Runtime:
    """The runtime of the app serving the current request."""
    return current_app.extensions["supportline"]  # type: ignore[no-any-return]
