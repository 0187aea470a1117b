"""What every console page shows: template filters (times, phone numbers, countdowns), the top bar's context, error pages."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from babel.dates import format_timedelta
from flask import render_template, request
from sqlalchemy import func, select
from sqlalchemy.exc import InternalError, OperationalError
from werkzeug.exceptions import NotFound

import languages
from ticketing import events, paging
from ticketing.models import Escalation, InboundMail, Ticket
from web.console import present
from web.console.auth import blueprint, rt
from web.console.shared import _oncall
from web.portal.present import phone_text

log = logging.getLogger(__name__)


@blueprint.app_template_filter("local")
def local_time(value: datetime | None, fmt: str = "%a %b %-d %H:%M") -> str:
    """A time in the support policy's time zone."""
    if value is None:
        return "—"
    return value.astimezone(rt().policy.timezone).strftime(fmt)


@blueprint.app_template_filter("iso")
def iso(value: datetime | None) -> str:
    """An ISO 8601 instant for scripts (empty for None)."""
    return value.isoformat() if value is not None else ""


@blueprint.app_template_filter("isolocal")
def iso_local(value: str | None, fmt: str = "%a %b %-d %H:%M") -> str:
    """An ISO 8601 instant from an audit detail, in the policy's time zone ('best effort' for none)."""
    if not value:
        return "best effort"
    try:
        return local_time(datetime.fromisoformat(value), fmt)
    except ValueError:
        return value


@blueprint.app_template_filter("language_name")
def _language_name(code: str | None) -> str:
    """'es' -> 'Spanish'."""
    return languages.language_name(code)


@blueprint.app_template_filter("phone")
def phone_display(number: str | None) -> str:
    """A North American number as (805) 555-0142; other numbers unchanged."""
    if not number:
        return "withheld"
    if number.startswith("+1") and len(number) == 12 and number[2:].isdigit():
        d = number[2:]
        return f"({d[:3]}) {d[3:6]}-{d[6:]}"
    return number


@blueprint.app_template_filter("hours")
def hours_text(seconds: int | None) -> str:
    """Seconds as '4 h' or '1 h 30 min'."""
    if not seconds:
        return "0 h"
    h, rest = divmod(int(seconds), 3600)
    m = rest // 60
    return f"{h} h {m:02d} min" if m else f"{h} h"


@blueprint.app_template_filter("countdown")
def countdown(due: datetime | None, now: datetime) -> str:
    """Time left until ``due`` as the queue shows it ('3h 05m', '4m 10s over': ``present.countdown_text``)."""
    if due is None:
        return ""
    return present.countdown_text(int((due - now).total_seconds()))


@blueprint.app_template_filter("span")
def span_text(seconds: float) -> str:
    """A stretch of time as a phone reads it: '12 min', '2 hr'; 'under a minute' below one."""
    if abs(seconds) < 60:
        return "under a minute"
    stretch = timedelta(seconds=abs(seconds))
    return str(format_timedelta(stretch, granularity="minute", threshold=2, format="short", locale="en_US"))


@dataclass(frozen=True)
class IncidentSummary:
    """A paged P1's first screen: what is broken, when paging was triggered and whom it pages next."""

    broken: str | None  # the message's first lines (the English translation of a message in another language)
    translated_from: str | None  # "Spanish"
    triggered_at: datetime
    next: paging.NextPage | None


@blueprint.app_template_global()
def incident_summary(ticket: Ticket, escalation: Escalation | None) -> IncidentSummary | None:
    """The ticket page's incident summary (None for a ticket never paged): the same words the page SMS carries."""
    if escalation is None:
        return None
    content = paging.content_of(ticket)
    message = content.translation or content.transcript
    config = _oncall(rt())
    upcoming = None
    if config is not None and escalation.acknowledged_at is None:
        upcoming = paging.next_page(
            config,
            paging.positions_of(escalation, config),
            state=escalation.state,
            next_position=escalation.next_position,
            next_due_at=escalation.next_due_at,
        )
    return IncidentSummary(
        broken=paging.shorten(message, 240) if message else None,
        translated_from=content.translated_from,
        triggered_at=escalation.started_at,
        next=upcoming,
    )


@blueprint.app_context_processor
def console_context() -> dict[str, Any]:
    """What every console page shows: the signed-in user, the time, exceptional events in force."""
    from flask import g

    runtime = rt()
    context: dict[str, Any] = {
        "now": runtime.now(),
        "timezone": runtime.policy.timezone,
        "dev_mode": runtime.settings.dev_mode,
    }
    if getattr(g, "viewer", None) is not None:
        context["viewer"] = g.viewer
        if "active_events" not in g:
            with runtime.sessions() as s:
                g.active_events = list(events.active_exceptional_events(s, runtime.now()))
                g.quarantined_mail = s.scalar(
                    select(func.count(InboundMail.id)).where(InboundMail.state == "quarantined")
                )
        context["active_events"] = g.active_events
        context["quarantined_mail"] = g.get("quarantined_mail", 0)
    return context


@blueprint.errorhandler(OperationalError)
@blueprint.errorhandler(InternalError)
def not_stored(error: Exception) -> tuple[str, int, dict[str, str]]:
    """The database refused to store the change (a full disk, a read-only server) or did not answer: say so."""
    log.error("console %s %s failed on the database: %s", request.method, request.path, error)
    number = phone_text(rt().settings.support_number)
    kept = "; ".join(
        f"{key}: {request.form[key].strip()}"
        for key in ("summary", "description", "text", "note", "reason")
        if request.form.get(key, "").strip()
    )
    if request.method == "GET":
        title, what = "The database is not available", "The database did not answer, so this page cannot be shown."
    else:
        title = "Not saved: the database refuses writes"
        what = "The database cannot store anything right now (its disk may be full), so this change was not saved."
    html = render_template(
        "console/error.html",
        title=title,
        message=f"{what} Calls to {number} are still answered and voicemails recorded; the administrator should "
        "check the database and its disk (/readyz names the failing part). Try again once it says ready.",
        detail=f"What you typed: {kept}" if kept else None,
    )
    return html, 503, {"Retry-After": "120"}


@blueprint.errorhandler(404)
def console_not_found(error: Exception) -> tuple[str, int]:
    """A console page that names no ticket ("No ticket 400999"), or an audio file that is not there."""
    description = getattr(error, "description", None)
    if not isinstance(description, str) or description == NotFound.description:
        return render_template(
            "console/error.html", title="Not found", message="There is nothing at this address."
        ), 404
    return render_template("console/error.html", title=description.rstrip("."), message=description), 404
