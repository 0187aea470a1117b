"""A new ticket from the portal: the triage questions, the priority preview, the submission with its files."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from flask import Response, jsonify, redirect, render_template, request, url_for

from runtime import Runtime
from runtime.web import rt
from ticketing import portal
from ticketing.db import transaction
from ticketing.errors import DomainError
from ticketing.priority import Priority
from ticketing.sla import calendar_for
from ticketing.triage import QUESTIONS, Affected, TriageAnswers, parse_answers, triage
from web.portal import present
from web.portal.auth import blueprint, viewer
from web.portal.files import _files_chosen, _removing_on_failure, _store_files, _uploads, _with_files_note
from workers.dispatch import hand_off_after_response


@dataclass(frozen=True)
class Preview:
    """What submitting the answers would give: the priority, its targets and due times, the paging notice."""

    priority: Priority
    description: str
    targets: list[tuple[str, str, str]]  # milestone label, target text, due text
    pages: bool
    after_hours: bool
    reason: str
    notice: str | None  # what a P1 does: pages on-call now, or notifies the after-hours team


def preview_of(answers: TriageAnswers, runtime: Runtime, now: datetime) -> Preview:
    """The preview of a submission at ``now``."""
    result = triage(answers)
    after_hours = not calendar_for(runtime.policy).is_business_hours(now)
    return Preview(
        priority=result.priority,
        description=present.PRIORITY_DESCRIPTIONS[result.priority],
        targets=present.targets_of(result.priority, runtime.policy, now),
        pages=result.priority == Priority.P1,
        after_hours=after_hours,
        reason=result.reason,
        notice=present.paging_notice(result.priority == Priority.P1, after_hours),
    )


@blueprint.route("/tickets/new", methods=["GET", "POST"])
def new_ticket() -> Response | tuple[str, int]:
    """The triage form. "Check priority" re-renders it with the preview (no JavaScript needed); "Submit" opens the ticket."""
    runtime = rt()
    now = runtime.now()
    form: Mapping[str, str] = request.form if request.method == "POST" else {}
    error = None
    preview = None
    if request.method == "POST":
        try:
            answers = parse_answers(request.form)
            preview = preview_of(answers, runtime, now)
            if request.form.get("step") == "submit":
                number, files_failed = _submit(runtime, answers)
                done = f"submitted-files-{files_failed.replace(' ', '-')}" if files_failed else "submitted"
                response = redirect(url_for("portal.ticket", number=number, done=done), code=303)
                hand_off_after_response(response, runtime)
                return response
        except (DomainError, ValueError) as exc:
            error = _with_files_note(str(exc))
    html = render_template(
        "portal/new.html",
        form=form,
        error=error,
        preview=preview,
        questions=QUESTIONS,
        files_dropped=request.method == "POST" and error is None and _files_chosen(),
        affected=list(Affected),
        max_mb=runtime.settings.portal_attachment_max_bytes // (1024 * 1024),
        max_files=runtime.settings.portal_attachment_max_files,
    )
    return html, 400 if error else 200


def _submit(runtime: Runtime, answers: TriageAnswers) -> tuple[int, str | None]:
    """Open the ticket; its files are stored if they can be (the ticket opens either way): the number, and
    why the files were not stored if they were not."""
    files = _uploads(runtime)
    me = viewer()
    written: list[Path] = []
    with _removing_on_failure(written), transaction(runtime.sessions) as s:
        t = portal.submit_portal_ticket(
            s,
            me,
            policy=runtime.policy,
            now=runtime.now(),
            summary=request.form.get("summary", ""),
            description=request.form.get("description", ""),
            answers=answers,
            result=triage(answers),
        )
        failed = _store_files(s, t, files, runtime, me, written)
        return int(t.number or 0), failed


@blueprint.get("/triage")
def triage_preview() -> Response | tuple[Response, int]:
    """The preview as JSON, so the form updates it as the client answers (the form works without it)."""
    runtime = rt()
    try:
        p = preview_of(parse_answers(request.args), runtime, runtime.now())
    except ValueError as exc:
        return jsonify(error=str(exc)), 400
    return jsonify(
        priority=p.priority.value,
        label=p.priority.label,
        description=p.description,
        targets=[{"milestone": m, "target": tgt, "due": due} for m, tgt, due in p.targets],
        pages=p.pages,
        after_hours=p.after_hours,
        notice=p.notice,
    )
