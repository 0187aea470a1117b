"""A ticket by hand: the coordinator opens one for a call they answered."""

from __future__ import annotations

from collections.abc import Mapping

from flask import Response, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from runtime import Runtime
from ticketing import lifecycle, phone
from ticketing.db import transaction
from ticketing.errors import DomainError
from ticketing.models import Client, Source
from ticketing.priority import DEFAULT_PRIORITY, Priority
from web.console.auth import blueprint, rt, viewer
from web.console.shared import _sentence, _text

MANUAL_SOURCES = (Source.PHONE.value, Source.EMAIL.value, Source.PORTAL.value, Source.MANUAL.value)


@blueprint.route("/tickets/new", methods=["GET", "POST"])
def new_ticket() -> Response | tuple[str, int]:
    """Open a ticket for a call the coordinator answered (source phone by default)."""
    runtime = rt()
    form: Mapping[str, str] = request.form if request.method == "POST" else request.args
    error = None
    if request.method == "POST":
        try:
            number = _open_by_hand(runtime, request.form)
        except (DomainError, ValueError) as exc:
            error = _sentence(exc)
        else:
            flash(f"Ticket {number} opened.", "ok")
            return redirect(url_for("console.ticket", number=number), code=303)
    with runtime.sessions() as s:
        clients = s.scalars(select(Client).order_by(Client.name)).all()
        html = render_template(
            "console/new_ticket.html",
            clients=clients,
            priorities=list(Priority),
            sources=MANUAL_SOURCES,
            form=form,
            default_priority=DEFAULT_PRIORITY.value,
            error=error,
        )
    return html, 400 if error else 200


def _open_by_hand(runtime: Runtime, form: MultiDict[str, str]) -> int:
    summary = _text(form, "summary")
    if not summary:
        raise ValueError("a ticket needs a summary")
    if len(summary) > 200:
        raise ValueError("a summary is at most 200 characters")
    caller = _text(form, "caller_number")
    if caller and phone.normalize(caller) is None:
        raise ValueError(f"{caller!r} is not a phone number")
    source = _text(form, "source") or Source.PHONE.value
    if source not in MANUAL_SOURCES:
        raise ValueError(f"unknown source {source!r}")
    client = _text(form, "client")
    if client and not client.isdigit():
        raise ValueError(f"unknown client {client!r}")
    me = viewer()
    with transaction(runtime.sessions) as s:
        t = lifecycle.open_ticket(
            s,
            policy=runtime.policy,
            now=runtime.now(),
            priority=_text(form, "priority") or DEFAULT_PRIORITY.value,
            source=source,
            actor=me.display_name,
            caller_number=caller or None,
            summary=summary,
            description=_text(form, "description"),
            client_id=int(client) if client else None,
            reason=_text(form, "reason") or None,
        )
        assignee = _text(form, "assignee")
        if assignee:
            lifecycle.assign(s, t, assignee[:120], actor=me.display_name, now=runtime.now())
        return int(t.number or 0)
