"""The ConnectWise PSA bridge in the console (admins): what is linked, what failed, Send again; and its callback.

``/integrations/connectwise`` lists the operations ConnectWise refused or that failed every attempt, each with
**Send again**. ``POST /integrations/connectwise/callback/<secret>`` is the URL to give ConnectWise's ticket
callback: the secret path segment (``callback_secret`` in the ConnectWise file) is its proof, the body only
names a ticket, and the bridge reads that ticket's status from ConnectWise itself before applying it.
"""

from __future__ import annotations

import hmac
import logging

from flask import Blueprint, Response, abort, flash, jsonify, redirect, render_template, request, url_for
from sqlalchemy import func, select

from integrations import bridge
from integrations.connectwise import NAME, ConfigError
from integrations.psa import PsaError
from integrations.psa_models import PsaLink, PsaOperation
from ticketing import accounts
from ticketing.db import transaction
from web.console.auth import blueprint, role_required, rt

log = logging.getLogger(__name__)
callbacks = Blueprint("connectwise_callbacks", __name__, url_prefix="/integrations/connectwise/callback")


@blueprint.get("/integrations/connectwise")
@role_required(accounts.ADMIN)
def connectwise_page() -> tuple[str, int]:
    """The bridge's state: configured or not, counts, and the dead-letter list."""
    runtime = rt()
    problem = None
    try:
        psa = bridge.configured(runtime)
    except ConfigError as exc:
        psa, problem = None, str(exc)
    with runtime.sessions() as s:
        counts = dict(
            s.execute(
                select(PsaOperation.state, func.count(PsaOperation.id))
                .where(PsaOperation.psa == NAME)
                .group_by(PsaOperation.state)
            ).all()
        )
        linked = s.scalar(select(func.count(PsaLink.id)).where(PsaLink.psa == NAME)) or 0
        dead = bridge.dead_letters(s, NAME)
        return (
            render_template(
                "console/integrations_connectwise.html",
                configured=psa is not None,
                site=psa.config.site if psa is not None else None,
                board=psa.config.board_id if psa is not None else None,
                problem=problem,
                counts=counts,
                linked=linked,
                dead=dead,
            ),
            200,
        )


@blueprint.post("/integrations/connectwise/operations/<int:op_id>/send-again")
@role_required(accounts.ADMIN)
def connectwise_send_again(op_id: int) -> Response:
    """Put a dead operation back in line (the sweeper's next pass sends it)."""
    runtime = rt()
    with transaction(runtime.sessions) as s:
        op = bridge.send_again(s, op_id, runtime.now())
        if op is not None:
            bridge.post_sync(s, runtime)
    if op is None:
        flash("That operation is not waiting to be sent again.", "error")
    else:
        flash("Sent again: the bridge retries it on its next pass.", "ok")
    return redirect(url_for("console.connectwise_page"), code=303)


@callbacks.post("/<secret>")
def connectwise_callback(secret: str) -> tuple[Response, int]:
    """ConnectWise says a ticket changed: read it from ConnectWise and bring its status back."""
    runtime = rt()
    try:
        psa = bridge.configured(runtime)
    except ConfigError:
        psa = None
    expected = psa.config.callback_secret if psa is not None else ""
    if not expected or not hmac.compare_digest(secret.encode(), expected.encode()):
        abort(404)
    assert psa is not None
    body = request.get_json(silent=True)
    ticket_id = body.get("ID") if isinstance(body, dict) else None
    if not isinstance(ticket_id, int) or isinstance(ticket_id, bool) or ticket_id <= 0:
        return jsonify(error="the body names no ticket (ID)"), 400
    if str(body.get("Type", "ticket")).lower() != "ticket":
        return jsonify(ignored=True), 200
    try:
        change = psa.ticket(str(ticket_id))
    except PsaError as exc:
        log.warning("connectwise callback: ticket %s not read: %s", ticket_id, exc)
        return jsonify(error="ConnectWise could not be read"), 502
    with transaction(runtime.sessions) as s:
        status = bridge.apply_change(s, psa, change, policy=runtime.policy, now=runtime.now())
    return jsonify(ticket=ticket_id, status=status), 200
