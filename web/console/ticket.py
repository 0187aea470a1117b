"""A ticket's page (voicemail review, SLA, paging, timeline, audit log) and the actions on it.

Thin adapters: parse the form, call one domain function (ticketing.lifecycle, ticketing.voicemail,
ticketing.paging) inside one transaction, then redirect (or re-render with the error and a 4xx status, the
transaction rolled back so nothing is half-applied).
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta

from flask import Response, abort, flash, redirect, render_template, request, send_file, url_for
from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from runtime import Runtime
from ticketing import accounts, lifecycle, paging, voicemail
from ticketing.db import transaction
from ticketing.errors import DomainError, UnknownTicket
from ticketing.models import OPEN_STATUSES, Status, Ticket
from ticketing.priority import Priority
from web.console import present
from web.console.auth import blueprint, rt, viewer
from web.console.conversation import _mail_context
from web.console.layout import local_time
from web.console.shared import (
    ACTIONS,
    TRIAGE,
    ActionContext,
    _oncall,
    _sentence,
    _text,
    _ticket_or_404,
    action,
    recording_file,
)
from workers.dispatch import hand_off_after_response

AUDIO_TYPES = {".wav": "audio/wav", ".mp3": "audio/mpeg", ".ogg": "audio/ogg", ".m4a": "audio/mp4"}
# The section of the ticket page each action returns to (the id of its form or panel).
SECTIONS = {
    "compose": "composer",
    "reply": "composer",
    "note": "composer",
    "send-again": "conversation",
    "mail-deliverable": "conversation",
    "assign": "act-assign",
    "take": "act-assign",
    "priority": "act-priority",
    "resolution-plan": "sla",
    "first-response": "act-status",
    "pause": "act-status",
    "resume": "act-status",
    "resolve": "act-status",
    "reopen": "act-status",
    "merge": "act-merge",
    "transcript": "voicemail",
    "retry-transcription": "voicemail",
}


def render_ticket(
    number: int, *, error: str | None = None, status: int = 200, draft: MultiDict[str, str] | None = None
) -> tuple[str, int]:
    """The ticket page: voicemail review, SLA, paging, timeline, audit log and actions (``draft``: a refused
    form's fields, so the composer keeps what was typed)."""
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
        retryable = voicemail.transcription_retry_refusal(s, t, now=now, stale_after=stale) is None
        everything = present.timeline(lifecycle.call_events(s, t.call_sid), t.audit, runtime.policy.timezone)
        counts = {c: sum(1 for e in everything if e.category == c) for c in present.TIMELINE_CATEGORIES}
        shown = request.args.get("show", "")
        if shown and shown not in present.TIMELINE_CATEGORIES:
            error = error or f"Unknown timeline filter {shown!r}: showing everything."
            shown = ""
        mail = _mail_context(s, t)
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
            people=accounts.assignable(s),
            draft=draft or MultiDict(),
            is_open=Status(t.status).is_open and t.merged_into_id is None,
            error=error,
            estimate_default=_local_input(now + timedelta(hours=4), runtime),
            estimate_min=_local_input(now, runtime),
            mail=mail,
            sender_shown=_after_name(mail["sender"], view.caller_name),
        )
    return html, status


def _after_name(sender: str | None, name: str | None) -> str | None:
    """The sender as the header shows it beside the caller's name: '<address>' when the name is already there."""
    if sender and name:
        return sender.removeprefix(f"{name} ")
    return sender


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
    # Never offer a merge ticketing.lifecycle refuses (another client's ticket with the same caller ID).
    return [c for c in candidates if lifecycle.merge_refusal(ticket, c) is None]


def _local_input(at: datetime, runtime: Runtime) -> str:
    return at.astimezone(runtime.policy.timezone).strftime("%Y-%m-%dT%H:%M")


@blueprint.get("/tickets/<int:number>")
def ticket(number: int) -> tuple[str, int]:
    """One ticket."""
    return render_ticket(number)


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


def _local_datetime(text: str, runtime: Runtime, what: str) -> datetime:
    try:
        naive = datetime.strptime(text.strip(), "%Y-%m-%dT%H:%M")
    except ValueError:
        raise ValueError(f"{what}: expected a date and time (YYYY-MM-DD HH:MM)") from None
    return naive.replace(tzinfo=runtime.policy.timezone)


@action("priority", TRIAGE)
def _priority(t: Ticket, form: MultiDict[str, str], c: ActionContext) -> str:
    new = Priority.parse(_text(form, "priority"))
    lifecycle.change_priority(
        c.session, t, new, reason=_text(form, "reason"), actor=c.actor, now=c.now, policy=c.runtime.policy
    )
    return f"Priority changed to {new.label}: due times recomputed."


@action("assign")
def _assign(t: Ticket, form: MultiDict[str, str], c: ActionContext) -> str:
    username = _text(form, "assignee")
    if not username:
        lifecycle.assign(c.session, t, None, actor=c.actor, now=c.now)
        return "Unassigned."
    person = accounts.assignee(c.session, username)
    lifecycle.assign(c.session, t, person.display_name, actor=c.actor, now=c.now)
    return f"Assigned to {person.display_name}."


@action("take")
def _take(t: Ticket, form: MultiDict[str, str], c: ActionContext) -> str:
    me = accounts.assignee(c.session, viewer().username)
    lifecycle.assign(c.session, t, me.display_name, actor=c.actor, now=c.now)
    return "You have it: assigned to you."


def _set_status(t: Ticket, c: ActionContext, status: Status, reason: str | None) -> None:
    lifecycle.set_status(c.session, t, status, actor=c.actor, now=c.now, policy=c.runtime.policy, reason=reason)


def _start_work(t: Ticket, c: ActionContext) -> None:
    if t.status == Status.NEW.value:
        lifecycle.set_status(c.session, t, Status.IN_PROGRESS, actor=c.actor, now=c.now, policy=c.runtime.policy)


@action("first-response")
def _first_response(t: Ticket, form: MultiDict[str, str], c: ActionContext) -> str:
    if t.milestone("first_response").met_at is not None:
        raise ValueError("the first response was already recorded")
    _start_work(t, c)
    if t.milestone("first_response").met_at is None:
        lifecycle.meet_milestone(
            c.session, t, "first_response", actor=c.actor, now=c.now, note=_text(form, "note") or None
        )
    return "First response recorded."


@action("resolution-plan")
def _resolution_plan(t: Ticket, form: MultiDict[str, str], c: ActionContext) -> str:
    if not _text(form, "estimate"):
        raise ValueError("a resolution plan needs the estimated resolution time")
    estimate = _local_datetime(_text(form, "estimate"), c.runtime, "estimated resolution")
    lifecycle.meet_milestone(
        c.session, t, "resolution_plan", actor=c.actor, now=c.now, estimate=estimate, note=_text(form, "note") or None
    )
    _start_work(t, c)
    return f"Resolution plan recorded: estimated resolution {local_time(estimate)}."


@action("resolve")
def _resolve(t: Ticket, form: MultiDict[str, str], c: ActionContext) -> str:
    _set_status(t, c, Status.RESOLVED, _text(form, "note") or None)
    return "Ticket resolved."


@action("reopen")
def _reopen(t: Ticket, form: MultiDict[str, str], c: ActionContext) -> str:
    if t.status != Status.RESOLVED.value:
        raise ValueError(f"only a resolved ticket can be reopened (this one is {t.status})")
    _set_status(t, c, Status.IN_PROGRESS, _text(form, "reason") or None)
    return "Ticket reopened."


@action("pause")
def _pause(t: Ticket, form: MultiDict[str, str], c: ActionContext) -> str:
    lifecycle.pause_sla(c.session, t, actor=c.actor, now=c.now, reason=_text(form, "reason") or None)
    return "Waiting on client: SLA clocks paused."


@action("resume")
def _resume(t: Ticket, form: MultiDict[str, str], c: ActionContext) -> str:
    lifecycle.resume_sla(
        c.session, t, actor=c.actor, now=c.now, policy=c.runtime.policy, reason=_text(form, "reason") or None
    )
    return "Resumed: SLA clocks running, due times pushed out by the pause."


@action("note")
def _note(t: Ticket, form: MultiDict[str, str], c: ActionContext) -> str:
    text = _text(form, "text")
    if len(text) > 10000:
        raise ValueError("a note is at most 10000 characters")
    lifecycle.add_note(c.session, t, text, actor=c.actor, now=c.now)
    return "Note added."


@action("transcript")
def _transcript(t: Ticket, form: MultiDict[str, str], c: ActionContext) -> str:
    lifecycle.correct_transcript(
        c.session, t, _text(form, "transcript"), actor=c.actor, now=c.now, reason=_text(form, "reason")
    )
    return "Transcript corrected; the original is kept in the audit log."


@action("retry-transcription")
def _retry(t: Ticket, form: MultiDict[str, str], c: ActionContext) -> str:
    stale = timedelta(minutes=c.runtime.settings.transcription_pending_minutes)
    voicemail.retry_transcription(c.session, t, actor=c.actor, now=c.now, stale_after=stale)
    return "Transcription queued again."


@action("merge", TRIAGE)
def _merge(t: Ticket, form: MultiDict[str, str], c: ActionContext) -> str:
    target_text = _text(form, "into").lstrip("#")
    if not target_text:
        raise ValueError("say which ticket to merge into")
    into = lifecycle.get_ticket(c.session, target_text, for_update=True)
    lifecycle.merge_ticket(c.session, t, into, actor=c.actor, now=c.now, reason=_text(form, "reason") or None)
    return f"Merged into ticket {into.number}."


@action("acknowledge")
def _acknowledge(t: Ticket, form: MultiDict[str, str], c: ActionContext) -> str:
    me = viewer()
    config = _oncall(c.runtime)
    person = None
    if config is not None:
        person = config.person_for_user(me.username, me.display_name)
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
            escalation = paging.escalation_of(s, lifecycle.get_ticket(s, number))
            position = escalation.next_position if escalation is not None else 0
        escalate_soon(runtime, number, position)

    response.call_on_close(run)


@blueprint.post("/tickets/<int:number>/<name>")
def ticket_action(number: int, name: str) -> Response | tuple[str, int]:
    """Run one action on a ticket, all or nothing; audited by the domain function it calls."""
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
        return render_ticket(number, error=str(exc).capitalize() + ".", status=400, draft=request.form)
    except (DomainError, ValueError, KeyError) as exc:
        return render_ticket(number, error=_sentence(exc), status=400, draft=request.form)
    flash(message, "ok")
    # Back to the section acted on, not the top of a long page.
    anchor = SECTIONS.get(name)
    response = redirect(url_for("console.ticket", number=number, _anchor=anchor), code=303)
    hand_off_after_response(response, runtime)  # retried transcriptions, notices and replies go out now
    if name in ("page-again", "escalate-now"):
        _run_paging_step_after_response(response, runtime, number)
    return response
