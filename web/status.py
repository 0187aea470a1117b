"""The public status page: the known incidents in force and those ended in the last week, for anyone.

No sign-in, and nothing but each incident's public message and times: no client, caller or ticket. Small and
cacheable for a minute, as HTML (``/status``) and JSON (``/status.json``).
"""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, Response, jsonify, render_template

from runtime.web import rt
from ticketing import outages
from ticketing.sla import calendar_for

blueprint = Blueprint("status", __name__, template_folder="templates")
CACHE = "public, max-age=60"


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


@blueprint.get("/status")
def status_page() -> Response:
    """The status page: active incidents, then recently ended ones (autoescaped)."""
    runtime = rt()
    with runtime.sessions() as s:
        active, ended = outages.public_status(s, runtime.now())
    cal = calendar_for(runtime.policy)
    html = render_template(
        "status/status.html",
        company=runtime.settings.company_name,
        active=active,
        ended=ended,
        local=lambda when: cal.local(when).strftime("%a %d %b %Y, %H:%M %Z"),
    )
    response = Response(html, mimetype="text/html")
    response.headers["Cache-Control"] = CACHE
    return response


@blueprint.get("/status.json")
def status_json() -> Response:
    """The same as JSON: ``active`` and ``ended``, each with message, started, updated (and ended)."""
    runtime = rt()
    with runtime.sessions() as s:
        active, ended = outages.public_status(s, runtime.now())

    def row(i: outages.PublicIncident) -> dict[str, str | None]:
        return {
            "message": i.message,
            "started": _iso(i.started_at),
            "updated": _iso(i.updated_at),
            "ended": _iso(i.ended_at),
        }

    response = jsonify(active=[row(i) for i in active], ended=[row(i) for i in ended])
    response.headers["Cache-Control"] = CACHE
    return response
