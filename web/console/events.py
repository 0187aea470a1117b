"""Exceptional events: declare one (extends open and new tickets' targets), end it, see past ones."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy import select

from ticketing import queue
from ticketing.db import transaction
from ticketing.errors import DomainError
from ticketing.events import declare_exceptional_event, end_exceptional_event
from ticketing.models import ExceptionalEvent
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
        html = render_template(
            "console/events.html", history=history, open_count=open_count, error=error, form=form or {}
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
