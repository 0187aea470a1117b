"""Console pages: the queue, a ticket (voicemail review, timeline, actions), new tickets, on-call, exceptional events.

Thin adapters: parse the form, call one ticketing.service function inside one
transaction, then redirect (or re-render with the error and a 4xx status, the
transaction rolled back so nothing is half-applied).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Response, abort, flash, redirect, render_template, request, send_file, url_for
from sqlalchemy import String, cast, func, or_, select
from sqlalchemy.exc import InternalError, OperationalError
from sqlalchemy.orm import Session, selectinload
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import NotFound

import languages
from inbox import intake
from runtime import Runtime
from ticketing import accounts, conversation, paging, phone, portal, service
from ticketing.db import transaction
from ticketing.errors import DomainError, UnknownTicket
from ticketing.models import (
    OPEN_STATUSES,
    AuditEntry,
    Client,
    ExceptionalEvent,
    InboundMail,
    MailAttachment,
    Milestone,
    Source,
    Status,
    Ticket,
    User,
)
from ticketing.oncall import OnCall
from ticketing.priority import DEFAULT_PRIORITY, Priority
from ticketing.sla import calendar_for
from ticketing.text import one_line
from web.console import present
from web.console.auth import blueprint, role_required, rt, viewer
from web.portal.present import phone_text
from workers.dispatch import hand_off_after_response

TRIAGE = (accounts.COORDINATOR, accounts.ADMIN)
UNASSIGNED = "(unassigned)"
AUDIO_TYPES = {".wav": "audio/wav", ".mp3": "audio/mpeg", ".ogg": "audio/ogg", ".m4a": "audio/mp4"}
MANUAL_SOURCES = (Source.PHONE.value, Source.EMAIL.value, Source.PORTAL.value, Source.MANUAL.value)
log = logging.getLogger(__name__)


# --- shared context --------------------------------------------------------------------------------------


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
    """Time left until ``due`` as the queue shows it ('3h 05m', '12m 30s', '-4m 10s over'); scripts keep it live."""
    if due is None:
        return ""
    seconds = int((due - now).total_seconds())
    left = abs(seconds)
    days, rest = divmod(left, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        text = f"{days}d {hours}h"
    elif hours:
        text = f"{hours}h {minutes:02d}m"
    else:
        text = f"{minutes}m {secs:02d}s"
    return f"−{text} over" if seconds < 0 else text


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
                g.active_events = list(service.active_exceptional_events(s, runtime.now()))
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


# --- the queue -------------------------------------------------------------------------------------------


SORTS = {
    "due": "next due",
    "priority": "priority, then first come first served",
    "age": "oldest first",
}
ENDED = "ended"  # resolved or closed
ENDED_STATUSES = (Status.RESOLVED.value, Status.CLOSED.value)
STATUS_CHOICES = OPEN_STATUSES + ENDED_STATUSES + (ENDED, "all")
ENDED_LIMIT = 200  # resolved and closed tickets shown at once (newest first), narrowed by the search box


@dataclass(frozen=True)
class QueueQuery:
    """The queue's filters, sort and search as chosen in the URL, and what was wrong with them."""

    filters: service.QueueFilter
    chosen: Mapping[str, str]
    unassigned: bool
    errors: tuple[str, ...]
    sort: str = "due"
    statuses: tuple[str, ...] = OPEN_STATUSES
    text: str = ""

    @property
    def open_only(self) -> bool:
        """Only open tickets are listed (the queue proper)."""
        return set(self.statuses) <= set(OPEN_STATUSES)


def parse_queue_filters(args: Mapping[str, str], now: datetime) -> QueueQuery:
    """The QueueFilter, sort and search of the query string; unknown values are reported and ignored."""
    keys = ("priority", "status", "client", "assignee", "language", "breached", "sort", "q")
    chosen = {k: (args.get(k) or "").strip() for k in keys}
    errors: list[str] = []
    priority = status = None
    client_id = None
    statuses: tuple[str, ...] = OPEN_STATUSES
    if chosen["priority"]:
        try:
            priority = Priority.parse(chosen["priority"]).value
        except ValueError as exc:
            errors.append(str(exc))
    if chosen["status"]:
        if chosen["status"] in OPEN_STATUSES:
            status = chosen["status"]
            statuses = (status,)
        elif chosen["status"] in ENDED_STATUSES:
            statuses = (chosen["status"],)
        elif chosen["status"] == ENDED:
            statuses = ENDED_STATUSES
        elif chosen["status"] == "all":
            statuses = OPEN_STATUSES + ENDED_STATUSES
        else:
            errors.append(f"unknown status {chosen['status']!r} (expected one of: {', '.join(STATUS_CHOICES)})")
    if chosen["client"]:
        if chosen["client"].isdigit():
            client_id = int(chosen["client"])
        else:
            errors.append(f"unknown client {chosen['client']!r}")
    language = None
    if chosen["language"]:
        if chosen["language"] in languages.available():
            language = chosen["language"]
        else:
            errors.append(
                f"unknown language {chosen['language']!r} (expected one of: {', '.join(languages.available())})"
            )
    sort = chosen["sort"] or "due"
    if sort not in SORTS:
        errors.append(f"unknown sort {sort!r} (expected one of: {', '.join(SORTS)})")
        sort = "due"
    if chosen["breached"] and chosen["breached"] not in ("1", "on", "true"):
        errors.append(f"unknown breached value {chosen['breached']!r} (expected 1)")
    if len(chosen["q"]) > 200:
        errors.append("a search is at most 200 characters")
        chosen["q"] = chosen["q"][:200]
    unassigned = chosen["assignee"] == UNASSIGNED
    filters = service.QueueFilter(
        priority=priority,
        status=status,
        client_id=client_id,
        assignee=None if unassigned else chosen["assignee"] or None,
        breached_at=now if chosen["breached"] in ("1", "on", "true") else None,
        language=language,
    )
    return QueueQuery(filters, chosen, unassigned, tuple(errors), sort, statuses, chosen["q"])


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def find_tickets(session: Session, query: QueueQuery) -> list[Ticket]:
    """Tickets matching the query: the open queue (any order), or resolved/closed ones newest first, searched."""
    if query.open_only and not query.text:
        tickets = list(service.open_queue(session, query.filters))
    else:
        f = query.filters
        stmt = (
            select(Ticket)
            .where(Ticket.status.in_(query.statuses))
            .options(selectinload(Ticket.milestones), selectinload(Ticket.client), selectinload(Ticket.contact))
        )
        if query.open_only:
            stmt = stmt.where(Ticket.merged_into_id.is_(None))
        if f.priority:
            stmt = stmt.where(Ticket.priority == f.priority)
        if f.client_id:
            stmt = stmt.where(Ticket.client_id == f.client_id)
        if f.assignee:
            stmt = stmt.where(Ticket.assignee == f.assignee)
        if f.language:
            stmt = stmt.where(service.in_language(f.language))
        if f.breached_at is not None:
            overdue = select(Milestone.ticket_id).where(
                Milestone.due_at.is_not(None),
                or_(
                    Milestone.met_in_time.is_(False),
                    Milestone.met_at.is_(None) & (Milestone.due_at < f.breached_at),
                ),
            )
            stmt = stmt.where(Ticket.id.in_(overdue))
        if query.text:
            stmt = stmt.where(_search(query.text))
        stmt = stmt.order_by(Ticket.updated_at.desc(), Ticket.id.desc()).limit(ENDED_LIMIT)
        tickets = list(session.scalars(stmt).all())
    if query.unassigned:
        tickets = [t for t in tickets if t.assignee is None]
    return tickets


def _search(text: str) -> Any:
    """Number, caller, client, summary, transcript, description or a note containing ``text``."""
    like = _like(text)
    notes = select(AuditEntry.ticket_id).where(
        AuditEntry.action == "note", cast(AuditEntry.detail, String).ilike(like, escape="\\")
    )
    clients = select(Client.id).where(Client.name.ilike(like, escape="\\"))
    conditions = [
        Ticket.summary.ilike(like, escape="\\"),
        Ticket.description.ilike(like, escape="\\"),
        Ticket.transcript.ilike(like, escape="\\"),
        Ticket.caller_number.ilike(like, escape="\\"),
        Ticket.assignee.ilike(like, escape="\\"),
        Ticket.client_id.in_(clients),
        Ticket.id.in_(notes),
    ]
    digits = "".join(ch for ch in text if ch.isdigit())
    if digits and all(ch.isdigit() or ch in " -().+#" for ch in text):
        # A ticket number (#400127) or a phone number as people type it: (805) 555-0142, 805.555.0142.
        if 6 <= len(digits) <= 9:
            conditions.append(Ticket.number == int(digits))
        if len(digits) >= 4:
            conditions.append(Ticket.caller_number.like(f"%{digits}%"))
    return or_(*conditions)


def sort_views(rows: list[present.TicketView], sort: str) -> list[present.TicketView]:
    """The queue's order: next due first (default), the policy's priority then first come first served, or age."""
    by_policy = [(r.ticket.priority, r.ticket.opened_at, r.ticket.id) for r in rows]
    keyed = list(zip(by_policy, rows, strict=True))
    if sort == "priority":
        keyed.sort(key=lambda kr: kr[0])
    elif sort == "age":
        keyed.sort(key=lambda kr: (kr[1].ticket.opened_at, kr[1].ticket.id))
    else:
        far = datetime.max.replace(tzinfo=UTC)

        def due_key(kr: tuple[Any, present.TicketView]) -> tuple[Any, ...]:
            r = kr[1]
            due = r.next.due_at if r.next is not None and r.next.state != "paused" else None
            return (due is None, due or far, kr[0])

        keyed.sort(key=due_key)
    return [r for _, r in keyed]


def _queue_context(session: Session, runtime: Runtime) -> dict[str, Any]:
    now = runtime.now()
    query = parse_queue_filters(request.args, now)
    tickets = find_tickets(session, query)
    rows = present.ticket_views(session, tickets, runtime.policy, now)
    if query.open_only:
        rows = sort_views(rows, query.sort)
    counts = {
        "shown": len(rows),
        "breached": sum(1 for r in rows if r.worst == "breached"),
        "at_risk": sum(1 for r in rows if r.worst == "at risk"),
        "p1": sum(1 for r in rows if r.ticket.priority == "P1"),
        "unassigned": sum(1 for r in rows if r.ticket.assignee is None),
        "paging": sum(1 for r in rows if r.paging.acknowledgeable),
    }
    args = {k: v for k, v in query.chosen.items() if v}
    return {
        "rows": rows,
        "counts": counts,
        "query": query,
        "sorts": SORTS,
        "rows_url": url_for("console.queue_rows", **args),
        "now": now,
        "limit": ENDED_LIMIT,
    }


@blueprint.get("/")
def home() -> Response:
    """The queue is the home page."""
    return redirect(url_for("console.queue"))


@blueprint.get("/go")
def jump() -> Response:
    """The ticket-number box in the top bar."""
    number = (request.args.get("number") or "").strip().lstrip("#")
    if not number.isdigit():
        flash(f"{number!r} is not a ticket number.", "error")
        return redirect(url_for("console.queue"))
    return redirect(url_for("console.ticket", number=int(number)))


@blueprint.get("/queue")
def queue() -> str:
    """Open tickets, next due first (or the policy's order, or age), with live SLA countdowns; or ended ones, searched."""
    runtime = rt()
    with runtime.sessions() as s:
        context = _queue_context(s, runtime)
        clients = s.scalars(select(Client).order_by(Client.name)).all()
        assignees = _assignee_names(s, runtime)
        return render_template(
            "console/queue.html",
            clients=clients,
            assignees=assignees,
            priorities=list(Priority),
            statuses=OPEN_STATUSES,
            ended_statuses=ENDED_STATUSES,
            unassigned=UNASSIGNED,
            languages=[(code, languages.language_name(code)) for code in languages.available()],
            **context,
        )


@blueprint.get("/queue/rows")
def queue_rows() -> str:
    """The queue table alone: polled by the queue page every few seconds."""
    runtime = rt()
    with runtime.sessions() as s:
        return render_template("console/_queue_table.html", **_queue_context(s, runtime))


# --- a ticket --------------------------------------------------------------------------------------------


def _oncall(runtime: Runtime) -> OnCall | None:
    try:
        return paging.oncall_from(runtime.settings.oncall_file)
    except DomainError:
        return None


def _assignee_names(session: Session, runtime: Runtime) -> list[str]:
    names = list(
        session.scalars(select(User.display_name).where(User.active.is_(True)).order_by(User.display_name)).all()
    )
    config = _oncall(runtime)
    if config is not None:
        names += [p.name for p in config.people.values()]
    names += [n for n in session.scalars(select(Ticket.assignee).where(Ticket.assignee.is_not(None)).distinct()) if n]
    return sorted(dict.fromkeys(names), key=str.lower)


def _ticket_or_404(session: Session, number: int, *, for_update: bool = False) -> Ticket:
    try:
        return service.get_ticket(session, number, for_update=for_update)
    except UnknownTicket:
        abort(404, description=f"No ticket {number}.")


def render_ticket(number: int, *, error: str | None = None, status: int = 200) -> tuple[str, int]:
    """The ticket page: voicemail review, SLA, paging, timeline, audit log and actions."""
    runtime = rt()
    now = runtime.now()
    with runtime.sessions() as s:
        t = _ticket_or_404(s, number)
        view = present.ticket_views(s, [t], runtime.policy, now)[0]
        escalation = paging.escalation_of(s, t)
        joined_calls = [j.ticket_id for j in paging.joined_from(s, escalation)] if escalation is not None else []
        joined_calls = [n for n in s.scalars(select(Ticket.number).where(Ticket.id.in_(joined_calls)))]
        merged_from = s.scalars(select(Ticket).where(Ticket.merged_into_id == t.id).order_by(Ticket.id)).all()
        merged_into = s.get(Ticket, t.merged_into_id) if t.merged_into_id else None
        related = _merge_candidates(s, t)
        extension_reasons = [a.reason for a in t.audit if a.action == "exceptional event" and a.reason]
        stale = timedelta(minutes=runtime.settings.transcription_pending_minutes)
        retryable = bool(t.recording_sid) and (
            t.transcription_state == "failed"
            or (
                t.transcription_state == "pending"
                and t.transcription_requested_at is not None
                and now - t.transcription_requested_at >= stale
            )
        )
        everything = present.timeline(service.call_events(s, t.call_sid), t.audit, runtime.policy.timezone)
        counts = {c: sum(1 for e in everything if e.category == c) for c in present.TIMELINE_CATEGORIES}
        shown = request.args.get("show", "")
        if shown and shown not in present.TIMELINE_CATEGORIES:
            error = error or f"Unknown timeline filter {shown!r}: showing everything."
            shown = ""
        timeline = present.collapse_paging([e for e in everything if not shown or e.category == shown])
        html = render_template(
            "console/ticket.html",
            v=view,
            t=t,
            escalation=escalation,
            timeline=timeline,
            ended=present.ended_at(t),
            timeline_counts=counts,
            timeline_shown=shown,
            categories=present.TIMELINE_CATEGORIES,
            joined_calls=joined_calls,
            describe=functools.partial(present.describe_detail, tz=runtime.policy.timezone),
            merged_from=merged_from,
            merged_into=merged_into,
            related=related,
            extension_reasons=extension_reasons,
            retryable=retryable,
            priorities=list(Priority),
            assignees=_assignee_names(s, runtime),
            is_open=Status(t.status).is_open and t.merged_into_id is None,
            error=error,
            estimate_default=_local_input(now + timedelta(hours=4), runtime),
            estimate_min=_local_input(now, runtime),
            mail=_mail_context(s, t),
        )
    return html, status


def _merge_candidates(session: Session, ticket: Ticket) -> list[Ticket]:
    """Other open tickets of the same caller or client: where a repeat call probably belongs."""
    match = []
    if ticket.caller_number:
        match.append(Ticket.caller_number == ticket.caller_number)
    if ticket.client_id:
        match.append(Ticket.client_id == ticket.client_id)
    if not match:
        return []
    candidates = session.scalars(
        select(Ticket)
        .where(or_(*match), Ticket.id != ticket.id, Ticket.status.in_(OPEN_STATUSES), Ticket.merged_into_id.is_(None))
        .order_by(Ticket.opened_at)
        .limit(8)
    ).all()
    # Never offer a merge the service refuses (another client's ticket with the same caller ID).
    return [c for c in candidates if service.merge_refusal(ticket, c) is None]


def _local_input(at: datetime, runtime: Runtime) -> str:
    return at.astimezone(runtime.policy.timezone).strftime("%Y-%m-%dT%H:%M")


@blueprint.get("/tickets/<int:number>")
def ticket(number: int) -> tuple[str, int]:
    """One ticket."""
    return render_ticket(number)


def recording_file(audio_path: str | None, root: Path) -> Path | None:
    """The stored recording, only if it really lies inside ``root`` (no ``..``, no symlink out)."""
    if not audio_path:
        return None
    base = Path(root).resolve()
    candidate = Path(audio_path)
    if not candidate.is_absolute():
        candidate = base / candidate
    try:
        resolved = candidate.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not resolved.is_relative_to(base) or not resolved.is_file():
        return None
    return resolved


@blueprint.get("/tickets/<int:number>/audio")
def ticket_audio(number: int) -> Response:
    """The voicemail's audio, with HTTP range requests so the player can seek."""
    runtime = rt()
    with runtime.sessions() as s:
        audio_path = _ticket_or_404(s, number).audio_path
    path = recording_file(audio_path, runtime.settings.recordings_dir)
    if path is None:
        abort(404)
    mimetype = AUDIO_TYPES.get(path.suffix.lower(), "application/octet-stream")
    response = send_file(path, mimetype=mimetype, conditional=True, max_age=0, etag=True)
    response.headers["Cache-Control"] = "private, no-store"
    return response


# --- ticket actions --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionContext:
    """What an action handler needs besides the ticket and the form."""

    session: Session
    runtime: Runtime
    actor: str
    now: datetime


Handler = Callable[[Ticket, MultiDict[str, str], ActionContext], str]
ACTIONS: dict[str, tuple[Handler, tuple[str, ...]]] = {}


def action(name: str, roles: tuple[str, ...] = accounts.ROLES) -> Callable[[Handler], Handler]:
    """Register a ticket action handler under ``/tickets/<number>/<name>``."""

    def register(handler: Handler) -> Handler:
        ACTIONS[name] = (handler, roles)
        return handler

    return register


def _text(form: MultiDict[str, str], key: str) -> str:
    return (form.get(key) or "").strip()


def _local_datetime(text: str, runtime: Runtime, what: str) -> datetime:
    try:
        naive = datetime.strptime(text.strip(), "%Y-%m-%dT%H:%M")
    except ValueError:
        raise ValueError(f"{what}: expected a date and time (YYYY-MM-DD HH:MM)") from None
    return naive.replace(tzinfo=runtime.policy.timezone)


@action("priority", TRIAGE)
def _priority(t: Ticket, form: MultiDict[str, str], c: ActionContext) -> str:
    new = Priority.parse(_text(form, "priority"))
    service.change_priority(
        c.session, t, new, reason=_text(form, "reason"), actor=c.actor, now=c.now, policy=c.runtime.policy
    )
    return f"Priority changed to {new.label}: due times recomputed."


@action("assign")
def _assign(t: Ticket, form: MultiDict[str, str], c: ActionContext) -> str:
    who = _text(form, "assignee")
    if len(who) > 120:
        raise ValueError("an engineer's name is at most 120 characters")
    service.assign(c.session, t, who or None, actor=c.actor, now=c.now)
    return f"Assigned to {who}." if who else "Unassigned."


def _start_work(t: Ticket, c: ActionContext) -> None:
    if t.status == Status.NEW.value:
        service.set_status(c.session, t, Status.IN_PROGRESS, actor=c.actor, now=c.now, policy=c.runtime.policy)


@action("first-response")
def _first_response(t: Ticket, form: MultiDict[str, str], c: ActionContext) -> str:
    if t.milestone("first_response").met_at is not None:
        raise ValueError("the first response was already recorded")
    _start_work(t, c)
    if t.milestone("first_response").met_at is None:
        service.meet_milestone(
            c.session, t, "first_response", actor=c.actor, now=c.now, note=_text(form, "note") or None
        )
    return "First response recorded."


@action("resolution-plan")
def _resolution_plan(t: Ticket, form: MultiDict[str, str], c: ActionContext) -> str:
    if not _text(form, "estimate"):
        raise ValueError("a resolution plan needs the estimated resolution time")
    estimate = _local_datetime(_text(form, "estimate"), c.runtime, "estimated resolution")
    service.meet_milestone(
        c.session, t, "resolution_plan", actor=c.actor, now=c.now, estimate=estimate, note=_text(form, "note") or None
    )
    _start_work(t, c)
    return f"Resolution plan recorded: estimated resolution {local_time(estimate)}."


@action("resolve")
def _resolve(t: Ticket, form: MultiDict[str, str], c: ActionContext) -> str:
    service.set_status(
        c.session,
        t,
        Status.RESOLVED,
        actor=c.actor,
        now=c.now,
        policy=c.runtime.policy,
        reason=_text(form, "note") or None,
    )
    return "Ticket resolved."


@action("reopen")
def _reopen(t: Ticket, form: MultiDict[str, str], c: ActionContext) -> str:
    if t.status != Status.RESOLVED.value:
        raise ValueError(f"only a resolved ticket can be reopened (this one is {t.status})")
    service.set_status(
        c.session,
        t,
        Status.IN_PROGRESS,
        actor=c.actor,
        now=c.now,
        policy=c.runtime.policy,
        reason=_text(form, "reason") or None,
    )
    return "Ticket reopened."


@action("pause")
def _pause(t: Ticket, form: MultiDict[str, str], c: ActionContext) -> str:
    service.pause_sla(c.session, t, actor=c.actor, now=c.now, reason=_text(form, "reason") or None)
    return "Waiting on client: SLA clocks paused."


@action("resume")
def _resume(t: Ticket, form: MultiDict[str, str], c: ActionContext) -> str:
    service.resume_sla(
        c.session, t, actor=c.actor, now=c.now, policy=c.runtime.policy, reason=_text(form, "reason") or None
    )
    return "Resumed: SLA clocks running, due times pushed out by the pause."


@action("note")
def _note(t: Ticket, form: MultiDict[str, str], c: ActionContext) -> str:
    text = _text(form, "text")
    if len(text) > 10000:
        raise ValueError("a note is at most 10000 characters")
    service.add_note(c.session, t, text, actor=c.actor, now=c.now)
    return "Note added."


@action("transcript")
def _transcript(t: Ticket, form: MultiDict[str, str], c: ActionContext) -> str:
    service.correct_transcript(
        c.session, t, _text(form, "transcript"), actor=c.actor, now=c.now, reason=_text(form, "reason")
    )
    return "Transcript corrected; the original is kept in the audit log."


@action("retry-transcription")
def _retry(t: Ticket, form: MultiDict[str, str], c: ActionContext) -> str:
    stale = timedelta(minutes=c.runtime.settings.transcription_pending_minutes)
    service.retry_transcription(c.session, t, actor=c.actor, now=c.now, stale_after=stale)
    return "Transcription queued again."


@action("merge", TRIAGE)
def _merge(t: Ticket, form: MultiDict[str, str], c: ActionContext) -> str:
    target_text = _text(form, "into").lstrip("#")
    if not target_text:
        raise ValueError("say which ticket to merge into")
    into = service.get_ticket(c.session, target_text, for_update=True)
    service.merge_ticket(c.session, t, into, actor=c.actor, now=c.now, reason=_text(form, "reason") or None)
    return f"Merged into ticket {into.number}."


@action("acknowledge")
def _acknowledge(t: Ticket, form: MultiDict[str, str], c: ActionContext) -> str:
    me = viewer()
    config = _oncall(c.runtime)
    person = None
    if config is not None:
        person = config.find_person(me.display_name) or config.find_person(me.username)
    result = paging.acknowledge(
        c.session,
        t,
        me.display_name,
        c.now,
        "console",
        person=person.key if person is not None else None,
        counts_as_first_response=c.runtime.settings.ack_counts_as_first_response,
    )
    if result.already:
        return f"Already acknowledged by {result.by} via {result.via} at {local_time(result.at)}."
    return "Page acknowledged: escalation stopped."


# Paging actions: audited in ticketing.paging; the step itself runs on the paging queue after the response.
@action("page-again", TRIAGE)
def _page_again(t: Ticket, form: MultiDict[str, str], c: ActionContext) -> str:
    paging.page_again(c.session, t, by=c.actor, now=c.now)
    return "Paging restarted from the first step."


@action("escalate-now", TRIAGE)
def _escalate_now(t: Ticket, form: MultiDict[str, str], c: ActionContext) -> str:
    paging.escalate_now(c.session, t, by=c.actor, now=c.now)
    return "The next escalation step is being paged now."


def _run_paging_step_after_response(response: Response, runtime: Runtime, number: int) -> None:
    from workers.paging import escalate_soon

    def run() -> None:
        with runtime.sessions() as s:
            escalation = paging.escalation_of(s, service.get_ticket(s, number))
            position = escalation.next_position if escalation is not None else 0
        escalate_soon(runtime, number, position)

    response.call_on_close(run)


@blueprint.post("/tickets/<int:number>/<name>")
def ticket_action(number: int, name: str) -> Response | tuple[str, int]:
    """Run one action on a ticket, all or nothing; audited by the service function."""
    entry = ACTIONS.get(name)
    if entry is None:
        abort(404)
    handler, roles = entry
    me = viewer()
    if me.role not in roles:
        return render_ticket(number, error=f"Your role ({me.role}) cannot do this: ask a coordinator.", status=403)
    runtime = rt()
    try:
        with transaction(runtime.sessions) as s:
            t = _ticket_or_404(s, number, for_update=True)
            message = handler(t, request.form, ActionContext(s, runtime, me.display_name, runtime.now()))
    except UnknownTicket as exc:
        return render_ticket(number, error=str(exc).capitalize() + ".", status=400)
    except (DomainError, ValueError, KeyError) as exc:
        return render_ticket(number, error=_sentence(exc), status=400)
    flash(message, "ok")
    response = redirect(url_for("console.ticket", number=number), code=303)
    hand_off_after_response(response, runtime)  # retried transcriptions, notices and replies go out now
    if name in ("page-again", "escalate-now"):
        _run_paging_step_after_response(response, runtime, number)
    return response


def _sentence(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, KeyError):
        text = f"unknown {text}"
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


# --- a ticket by hand ------------------------------------------------------------------------------------


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
        t = service.open_ticket(
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
            service.assign(s, t, assignee[:120], actor=me.display_name, now=runtime.now())
        return int(t.number or 0)


# --- on-call ---------------------------------------------------------------------------------------------


@blueprint.get("/oncall")
def oncall() -> tuple[str, int] | str:
    """Who is on call now and next, overrides, and the escalation policies."""
    runtime = rt()
    now = runtime.now()
    try:
        config = paging.oncall_from(runtime.settings.oncall_file)
    except DomainError as exc:
        return render_template("console/error.html", title="On-call file broken", message=str(exc)), 500
    cal = calendar_for(runtime.policy)
    business = cal.is_business_hours(now)
    holiday = cal.holiday_name(cal.local(now).date())
    if business:
        window = cal.window(cal.local(now).date())
        switch_at, switch_to = (window[1] if window else now), config.after_hours_policy
    else:
        switch_at, switch_to = cal.next_opening(now), config.business_hours_policy
    schedules = []
    for schedule in config.schedules.values():
        change_at, next_key = schedule.next_change(now)
        current = schedule.override_at(now)
        schedules.append(
            {
                "schedule": schedule,
                "now": config.people[schedule.on_call(now)],
                "override": current,
                "next_at": change_at,
                "next": config.people[next_key],
                "overrides": [o for o in schedule.overrides if o.end > now],
            }
        )
    in_force = config.policy_for(business)
    steps = [
        (position, config.people_for(position.target, now)) for position in in_force.positions() if position.round <= 1
    ]
    return render_template(
        "console/oncall.html",
        config=config,
        business=business,
        holiday=holiday,
        in_force=in_force,
        steps=steps,
        switch_at=switch_at,
        switch_to=config.policies[switch_to],
        schedules=schedules,
        oncall_file=runtime.settings.oncall_file,
    )


# --- exceptional events ----------------------------------------------------------------------------------


@blueprint.get("/events")
def events() -> str:
    """Exceptional events: declare one (extends open and new tickets' targets), end it, see past ones."""
    return _render_events()


def _render_events(error: str | None = None, form: Mapping[str, str] | None = None) -> Any:
    runtime = rt()
    with runtime.sessions() as s:
        history = s.scalars(select(ExceptionalEvent).order_by(ExceptionalEvent.started_at.desc()).limit(50)).all()
        open_count = len(service.open_queue(s))
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
            event = service.declare_exceptional_event(
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
            service.end_exceptional_event(s, event_id, actor=viewer().display_name, now=runtime.now())
    except DomainError as exc:
        return _render_events(error=_sentence(exc))
    flash(f"Exceptional event {event_id} ended.", "ok")
    return redirect(url_for("console.events"), code=303)


# --- the conversation with the client: reply box, attachments ---------------------------------------------


def _mail_context(session: Session, t: Ticket) -> dict[str, Any]:
    address = conversation.requester_address(session, t)
    return {
        "messages": conversation.conversation(session, t),
        "address": address,
        "sms_to": phone_display(t.caller_number) if address is None and phone.normalize(t.caller_number) else None,
        "bouncing": conversation.bouncing(session, address),
    }


@action("reply")
def _reply(t: Ticket, form: MultiDict[str, str], c: ActionContext) -> str:
    message = conversation.reply_to_client(
        c.session, t, _text(form, "text"), actor=c.actor, now=c.now, tag_prefix=c.runtime.settings.mail_tag_prefix
    )
    return f"Reply queued ({message.channel} to {message.to_address if message.channel == 'email' else 'the caller'})."


@action("send-again")
def _send_again(t: Ticket, form: MultiDict[str, str], c: ActionContext) -> str:
    number = _text(form, "message")
    if not number.isdigit():
        raise ValueError("say which message to send again")
    conversation.send_again(c.session, t, int(number), actor=c.actor, now=c.now)
    return "Message queued again."


@action("mail-deliverable", TRIAGE)
def _mail_deliverable(t: Ticket, form: MultiDict[str, str], c: ActionContext) -> str:
    address = conversation.clear_bouncing(c.session, t, actor=c.actor, now=c.now)
    return f"Mail to {address} resumes: marked deliverable again."


@blueprint.get("/attachments/<int:attachment_id>")
def mail_attachment(attachment_id: int) -> Response:
    """A file from a client's email, to signed-in users only, always as a download."""
    runtime = rt()
    with runtime.sessions() as s:
        attachment = s.get(MailAttachment, attachment_id)
        if attachment is None:
            abort(404)
        stored, name = attachment.path, attachment.filename
    path = recording_file(stored, runtime.settings.recordings_dir)
    if path is None:
        abort(404)
    # A name mailed with a line break (RFC 2231 lets a sender encode one) would make the header invalid: one line,
    # which send_file then quotes (and encodes per RFC 5987 when it is not ASCII).
    response = send_file(
        path, mimetype="application/octet-stream", as_attachment=True, download_name=one_line(name) or "file", max_age=0
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


@blueprint.get("/mail")
def mail_intake() -> str:
    """Inbound email: quarantined messages first (with why), then the latest messages and what became of them."""
    runtime = rt()
    with runtime.sessions() as s:
        columns = (
            InboundMail.id, InboundMail.via, InboundMail.received_at, InboundMail.size, InboundMail.state,
            InboundMail.outcome, InboundMail.dedupe_key, InboundMail.ticket_id,
        )  # fmt: skip
        quarantined = s.execute(
            select(*columns).where(InboundMail.state == "quarantined").order_by(InboundMail.id.desc()).limit(200)
        ).all()
        recent = s.execute(select(*columns).order_by(InboundMail.id.desc()).limit(100)).all()
        numbers = dict(
            s.execute(select(Ticket.id, Ticket.number).where(Ticket.id.in_([r.ticket_id for r in recent]))).all()
        )
        refused = portal.refused_links(s)
        return render_template(
            "console/mail_intake.html", quarantined=quarantined, recent=recent, numbers=numbers, refused_links=refused
        )


# --- development mode ------------------------------------------------------------------------------------


@blueprint.get("/dev/outbox")
def dev_outbox() -> str:
    """Development mode: the SMS and calls the service asked the local Twilio stand-in to send, and the mail."""
    from ivr.twilio_standin import read_log

    runtime = rt()
    settings = runtime.settings
    if not settings.dev_mode:
        abort(404, description="Development mode is off: SMS and calls go to Twilio.")
    mailbox = Path(settings.dev_mailbox_dir)
    mails = (
        sorted((mailbox / "new").glob("*"), key=lambda p: p.stat().st_mtime, reverse=True)[:50]
        if (mailbox / "new").is_dir()
        else []
    )
    return render_template(
        "console/dev_outbox.html",
        entries=read_log(Path(settings.dev_twilio_log)),
        log_path=settings.dev_twilio_log,
        mailbox=mailbox,
        mails=[_mail_summary(p) for p in mails],
        api_base=settings.twilio_api_base_url,
    )


@blueprint.route("/dev/mail-in", methods=["GET", "POST"])
def dev_mail_in() -> Response | tuple[str, int]:
    """Development mode: a message typed here (or an .eml file) enters the email intake as a provider's would."""
    runtime = rt()
    settings = runtime.settings
    if not settings.dev_mode:
        abort(404, description="Development mode is off: mail comes in by a provider webhook or IMAP.")
    inbox = settings.inbox_address or "helpdesk"
    if request.method == "GET":
        return render_template("console/dev_mail_in.html", inbox=inbox, form={}, error=None), 200
    upload = request.files.get("eml")
    try:
        if upload is not None and upload.filename:
            raw = upload.read()
            if not raw.strip():
                raise ValueError("the .eml file is empty")
        else:
            raw = intake.typed_message(
                sender=_text(request.form, "from"),
                to=inbox,
                subject=_text(request.form, "subject"),
                body=request.form.get("body") or "",
                now=runtime.now(),
            )
    except ValueError as exc:
        page = render_template("console/dev_mail_in.html", inbox=inbox, form=request.form, error=_sentence(exc))
        return page, 400
    with transaction(runtime.sessions) as s:
        stored = intake.store_raw(
            s,
            mailbox=intake.mailbox_key(settings.inbox_address),
            raw=raw,
            via="dev",
            now=runtime.now(),
            max_bytes=settings.mail_max_bytes,
        )
    flash(
        f"Message stored (#{stored.id}); the worker turns it into a ticket or a reply: see Mail."
        if stored.new
        else f"The same message was stored before (#{stored.id}): nothing new.",
        "ok",
    )
    response = redirect(url_for("console.dev_mail_in"), code=303)
    hand_off_after_response(response, runtime)  # the parsing job goes to the worker now
    return response


def _mail_summary(path: Path) -> dict[str, str]:
    from email import policy
    from email.parser import BytesParser

    try:
        with path.open("rb") as f:
            msg = BytesParser(policy=policy.default).parse(f, headersonly=True)
    except OSError:
        return {"file": path.name, "to": "?", "subject": "(unreadable)", "date": ""}
    return {
        "file": path.name,
        "to": str(msg["To"] or ""),
        "subject": str(msg["Subject"] or ""),
        "date": str(msg["Date"] or ""),
    }
