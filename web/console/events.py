"""Exceptional events: declare one (extends open and new tickets' targets), end it, see past ones; and known
incidents: an outage's message callers and the portal hear, its parent ticket, the callers who joined it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy import select

from ticketing import outages, queue
from ticketing.db import transaction
from ticketing.errors import DomainError
from ticketing.events import declare_exceptional_event, end_exceptional_event
from ticketing.models import Client, ExceptionalEvent, KnownIncident
from web.console.auth import blueprint, role_required, rt, viewer
from web.console.layout import hours_text
from web.console.shared import TRIAGE, _sentence, _text


@blueprint.get("/events")
def events() -> str:
    """Exceptional events: declare one (extends open and new tickets' targets), end it, see past ones."""
    return _render_events()


def _render_events(error: str | None = None, form: Mapping[str, str] | None = None) -> Any:
    runtime = rt()
    with runtime.sessions() as s:
        history = s.scalars(select(ExceptionalEvent).order_by(ExceptionalEvent.started_at.desc()).limit(50)).all()
        open_count = len(queue.open_queue(s))
        incidents = s.scalars(select(KnownIncident).order_by(KnownIncident.started_at.desc()).limit(50)).all()
        clients = s.scalars(select(Client).order_by(Client.name)).all()
        names = {c.id: c.name for c in clients}
        html = render_template(
            "console/events.html",
            history=history,
            open_count=open_count,
            error=error,
            form=form or {},
            incidents=[(i, outages.callers(s, i.id), [names.get(c, f"#{c}") for c in i.client_ids]) for i in incidents],
            clients=clients,
        )
    return (html, 400) if error else html


@blueprint.post("/events")
@role_required(*TRIAGE)
def declare_event() -> Any:
    """Declare an exceptional event."""
    runtime = rt()
    try:
        hours = float(_text(request.form, "hours") or "nan")
        if hours != hours:
            raise ValueError("say by how many hours response and resolution times are extended")
        with transaction(runtime.sessions) as s:
            event = declare_exceptional_event(
                s,
                reason=_text(request.form, "reason"),
                extension=timedelta(hours=hours),
                actor=viewer().display_name,
                now=runtime.now(),
                policy=runtime.policy,
            )
            event_id = event.id
    except (DomainError, ValueError, OverflowError) as exc:
        message = _sentence(exc) if "could not convert" not in str(exc) else "The extension must be a number of hours."
        return _render_events(error=message, form=request.form)
    flash(
        f"Exceptional event {event_id} declared: open tickets' targets extended by {hours_text(int(hours * 3600))}.",
        "ok",
    )
    return redirect(url_for("console.events"), code=303)


@blueprint.post("/events/<int:event_id>/end")
@role_required(*TRIAGE)
def end_event(event_id: int) -> Any:
    """End an exceptional event: new tickets get no extension from now on."""
    runtime = rt()
    try:
        with transaction(runtime.sessions) as s:
            end_exceptional_event(s, event_id, actor=viewer().display_name, now=runtime.now())
    except DomainError as exc:
        return _render_events(error=_sentence(exc))
    flash(f"Exceptional event {event_id} ended.", "ok")
    return redirect(url_for("console.events"), code=303)


@blueprint.post("/events/incidents")
@role_required(*TRIAGE)
def declare_incident() -> Any:
    """Declare a known incident: its public message, its parent ticket and the affected clients."""
    runtime = rt()
    try:
        parent = _text(request.form, "parent").lstrip("#")
        clients = [int(c) for c in request.form.getlist("clients") if c.strip()]
        with transaction(runtime.sessions) as s:
            incident = outages.declare_known_incident(
                s,
                message=request.form.get("message", ""),
                message_es=request.form.get("message_es", ""),
                parent_number=int(parent) if parent else None,
                client_ids=clients,
                actor=viewer().display_name,
                now=runtime.now(),
                policy=runtime.policy,
            )
            number = incident.parent.number
    except (DomainError, ValueError) as exc:
        message = "The parent ticket and clients are numbers." if "invalid literal" in str(exc) else _sentence(exc)
        return _render_events(error=message, form=request.form)
    flash(f"Known incident declared on ticket {number}: callers hear it after the greeting.", "ok")
    return redirect(url_for("console.events"), code=303)


@blueprint.post("/events/incidents/<int:incident_id>/end")
@role_required(*TRIAGE)
def end_incident(incident_id: int) -> Any:
    """End a known incident: its callers' tickets are resolved; optionally each contact is told once."""
    runtime = rt()
    try:
        with transaction(runtime.sessions) as s:
            ended = outages.end_known_incident(
                s,
                incident_id,
                actor=viewer().display_name,
                now=runtime.now(),
                policy=runtime.policy,
                note=request.form.get("note", ""),
                notify=request.form.get("notify") == "1",
            )
    except DomainError as exc:
        return _render_events(error=_sentence(exc))
    flash(
        f"Known incident ended: {ended.resolved} caller tickets resolved, {ended.notified} contacts told.",
        "ok",
    )
    return redirect(url_for("console.events"), code=303)
