"""/integrations/webhooks: register outbound webhook endpoints, rotate secrets, see deliveries, send again (admins)."""

from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from integrations import webhooks
from integrations.webhook_models import WebhookDelivery, WebhookEndpoint
from ticketing import accounts
from ticketing.db import transaction
from web.console.auth import blueprint, role_required, rt, viewer

ADMIN = (accounts.ADMIN,)


def _page(status: int = 200, *, secret: str | None = None, form: dict[str, object] | None = None) -> tuple[str, int]:
    runtime = rt()
    with runtime.sessions() as s:
        endpoints = s.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)).all()
        html = render_template(
            "console/integrations_webhooks.html",
            endpoints=endpoints,
            events=webhooks.EVENTS,
            secret=secret,
            form=form or {},
            dev_mode=runtime.settings.dev_mode,
        )
    return html, status


@blueprint.get("/integrations/webhooks")
@role_required(*ADMIN)
def webhook_endpoints() -> tuple[str, int]:
    """The endpoints, disabled ones first with why, and the form to add one."""
    return _page()


@blueprint.post("/integrations/webhooks")
@role_required(*ADMIN)
def add_webhook_endpoint() -> tuple[str, int]:
    """Register an endpoint; its secret is shown on this answer only."""
    runtime = rt()
    form = {
        "url": request.form.get("url", ""),
        "events": request.form.getlist("events"),
        "include_pii": request.form.get("include_pii") == "1",
        "description": request.form.get("description", ""),
    }
    try:
        with transaction(runtime.sessions) as s:
            endpoint = webhooks.add_endpoint(
                s,
                str(form["url"]),
                list(form["events"]),  # type: ignore[call-overload]
                now=runtime.now(),
                dev_mode=runtime.settings.dev_mode,
                include_pii=bool(form["include_pii"]),
                description=str(form["description"]),
                by=viewer().display_name,
            )
            secret = endpoint.secret
    except webhooks.WebhookError as exc:
        flash(f"Not added: {exc}.", "error")
        return _page(400, form=form)
    return _page(201, secret=secret)


@blueprint.post("/integrations/webhooks/<int:endpoint_id>/<any(disable, enable, rotate):action>")
@role_required(*ADMIN)
def change_webhook_endpoint(endpoint_id: int, action: str) -> Response | tuple[str, int]:
    """Disable, enable, or rotate the secret (the new one is shown once; the old one signs too for 24 hours)."""
    runtime = rt()
    with transaction(runtime.sessions) as s:
        endpoint = s.get(WebhookEndpoint, endpoint_id)
        if endpoint is None:
            abort(404)
        if action == "disable":
            webhooks.disable(s, endpoint, now=runtime.now(), reason=f"disabled by {viewer().display_name}")
        elif action == "enable":
            webhooks.enable(endpoint)
        else:
            secret = webhooks.rotate(endpoint, now=runtime.now())
    if action == "rotate":
        return _page(200, secret=secret)
    flash(f"Endpoint {endpoint_id} {action}d.", "ok")
    return redirect(url_for("console.webhook_endpoint", endpoint_id=endpoint_id), code=303)


@blueprint.get("/integrations/webhooks/<int:endpoint_id>")
@role_required(*ADMIN)
def webhook_endpoint(endpoint_id: int) -> str:
    """An endpoint's latest deliveries: event, state, status code, time, attempts, Send again."""
    runtime = rt()
    with runtime.sessions() as s:
        endpoint = s.get(WebhookEndpoint, endpoint_id)
        if endpoint is None:
            abort(404)
        rows = s.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint_id)
            .order_by(WebhookDelivery.id.desc())
            .limit(100)
        ).all()
        return render_template("console/integrations_webhook.html", endpoint=endpoint, deliveries=rows)


@blueprint.post("/integrations/webhooks/deliveries/<int:delivery_id>/send-again")
@role_required(*ADMIN)
def webhook_send_again(delivery_id: int) -> Response:
    """Send a delivery again, with the same webhook-id (the worker does it, never this request)."""
    runtime = rt()
    try:
        with transaction(runtime.sessions) as s:
            delivery = webhooks.send_again(s, delivery_id, now=runtime.now())
            endpoint_id = delivery.endpoint_id
    except webhooks.WebhookError as exc:
        flash(f"Not sent again: {exc}.", "error")
        return redirect(url_for("console.webhook_endpoints"), code=303)
    flash(f"Delivery {delivery_id} will be sent again.", "ok")
    return redirect(url_for("console.webhook_endpoint", endpoint_id=endpoint_id), code=303)
