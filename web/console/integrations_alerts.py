"""Monitoring alerts (admins): issue a client's routing key for its monitoring tool, see and revoke keys."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy import select

from ticketing import accounts, alerts
from ticketing.db import transaction
from ticketing.errors import DomainError
from ticketing.models import Client
from web.console.auth import blueprint, role_required, rt, viewer
from web.console.shared import _sentence, _text


@blueprint.get("/integrations/alerts")
@role_required(accounts.ADMIN)
def integrations_alerts() -> Any:
    """The routing keys of monitoring alerts, and a form to issue one."""
    return _render()


def _render(*, error: str | None = None, issued: str | None = None, status: int = 200) -> Any:
    runtime = rt()
    with runtime.sessions() as s:
        html = render_template(
            "console/integrations_alerts.html",
            keys=alerts.alert_keys(s),
            clients=s.scalars(select(Client).order_by(Client.name)).all(),
            endpoint=f"{runtime.settings.public_base_url}/integrations/events/v2/enqueue",
            priorities=dict(runtime.settings.alert_priorities),
            error=error,
            issued=issued,
        )
    return html, status


@blueprint.post("/integrations/alerts")
@role_required(accounts.ADMIN)
def issue_alert_key() -> Any:
    """Issue a routing key: shown on this answer only (never put in a cookie or stored)."""
    runtime = rt()
    try:
        with transaction(runtime.sessions) as s:
            _, raw = alerts.issue_key(
                s,
                client=_text(request.form, "client") or "",
                name=_text(request.form, "name") or "",
                actor=viewer().display_name,
                now=runtime.now(),
            )
    except DomainError as exc:
        return _render(error=_sentence(exc), status=400)
    return _render(issued=raw)


@blueprint.post("/integrations/alerts/<int:key_id>/revoke")
@role_required(accounts.ADMIN)
def revoke_alert_key(key_id: int) -> Any:
    """Revoke a routing key: its events are refused at once."""
    runtime = rt()
    try:
        with transaction(runtime.sessions) as s:
            row = alerts.revoke_key(s, key_id, actor=viewer().display_name, now=runtime.now())
            shown = f"{row.prefix}… ({row.client.name}, {row.name})"
    except DomainError as exc:
        return _render(error=_sentence(exc), status=400)
    flash(f"Routing key {shown} revoked.", "ok")
    return redirect(url_for("console.integrations_alerts"), code=303)
