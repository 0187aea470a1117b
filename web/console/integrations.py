"""/integrations: the index of the integrations with the MSP's other tools (admins only)."""

from __future__ import annotations

from flask import render_template

from ticketing import accounts
from web.console.auth import blueprint, role_required


@blueprint.get("/integrations")
@role_required(accounts.ADMIN)
def integrations() -> str:
    """Links to each integration's page."""
    return render_template("console/integrations.html")
