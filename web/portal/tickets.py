"""The client's tickets: the list, a ticket's public timeline, the reply box, "resolved" and "still broken".

Thin adapters: parse the form, call one ticketing.portal function in one transaction,
then redirect (or re-render with the error and a 4xx status; nothing half-applied).
A ticket the contact may not see answers 404, exactly like one that does not exist.
"""

from __future__ import annotations

from pathlib import Path

from flask import Response, abort, redirect, render_template, request, url_for

from runtime.web import rt
from ticketing import conversation, lifecycle, portal
from ticketing.db import transaction
from ticketing.errors import DomainError, UnknownTicket
from web.portal import present
from web.portal.auth import blueprint, viewer
from web.portal.files import _removing_on_failure, _store_files, _uploads, _with_files_note

_NOT_STORED = {
    "disk-full": "the files could not be stored: our disk is full",
    "storage-error": "the files could not be stored: a storage error",
}
DONE = {
    "submitted": "Thank you: your ticket is submitted. Quote its number if you call us about it.",
    "reply": "Your reply was added to the ticket.",
    **{
        f"submitted-files-{why}": f"Your ticket is submitted, but {text}. Attach them again later with a reply, "
        "or email them to us."
        for why, text in _NOT_STORED.items()
    },
    **{
        f"reply-files-{why}": f"Your message was sent, but {text}. Attach them again later, or email them to us."
        for why, text in _NOT_STORED.items()
    },
    "closed": "Thank you for confirming: the ticket is closed.",
    "reopened": "The ticket is reopened: we are on it again.",
}


@blueprint.get("/")
def tickets() -> str:
    """The contact's tickets (every ticket of the client for its primary contact)."""
    runtime = rt()
    now = runtime.now()
    me = viewer()
    with runtime.sessions() as s:
        rows = [present.row_of(t, runtime.policy, now) for t in portal.tickets_for(s, me)]
    return render_template("portal/tickets.html", rows=rows, done=DONE.get(request.args.get("done") or ""))


@blueprint.get("/tickets/<int:number>")
def ticket(number: int) -> tuple[str, int]:
    """One ticket: its public timeline, reply box, and "resolved" / "still broken" on a resolved ticket."""
    return render_ticket(number)


def render_ticket(number: int, *, error: str | None = None, status: int = 200, reply: str = "") -> tuple[str, int]:
    """The ticket page (404 for a ticket this contact may not see)."""
    runtime = rt()
    now = runtime.now()
    me = viewer()
    with runtime.sessions() as s:
        try:
            t = portal.ticket_for(s, me, number)
        except UnknownTicket:
            abort(404)
        attachments = conversation.client_files(s, t)  # portal uploads and the client's email attachments
        into = present.merged_into(t)
        into_visible = False
        if into is not None:
            try:
                into_visible = portal.ticket_for(s, me, into) is not None
            except UnknownTicket:
                into_visible = False
        html = render_template(
            "portal/ticket.html",
            t=t,
            row=present.row_of(t, runtime.policy, now),
            timeline=present.public_timeline(
                t, lifecycle.call_events(s, t.call_sid), runtime.policy.timezone, conversation.conversation(s, t)
            ),
            attachments=attachments,
            merged_into=into,
            merged_into_visible=into_visible,
            estimate=present.estimate_of(t, runtime.policy.timezone),
            error=error,
            reply=reply,
            done=DONE.get(request.args.get("done") or ""),
            max_mb=runtime.settings.portal_attachment_max_bytes // (1024 * 1024),
            max_files=runtime.settings.portal_attachment_max_files,
        )
    return html, status


@blueprint.post("/tickets/<int:number>/reply")
def reply(number: int) -> Response | tuple[str, int]:
    """A reply lands on the ticket like a client's email reply, with any files, and resumes a waiting clock."""
    return _act(number, "reply")


@blueprint.post("/tickets/<int:number>/resolved")
def resolved(number: int) -> Response | tuple[str, int]:
    """ "This is resolved": the client confirms, the ticket closes."""
    return _act(number, "closed")


@blueprint.post("/tickets/<int:number>/still-broken")
def reopen(number: int) -> Response | tuple[str, int]:
    """ "Still broken": the ticket is reopened."""
    return _act(number, "reopened")


def _act(number: int, what: str) -> Response | tuple[str, int]:
    runtime = rt()
    me = viewer()
    text = (request.form.get("text") or "").strip()
    written: list[Path] = []
    files_failed = None
    try:
        files = _uploads(runtime) if what == "reply" else []
        with _removing_on_failure(written), transaction(runtime.sessions) as s:
            try:
                t = portal.ticket_for(s, me, number, for_update=True)
            except UnknownTicket:
                abort(404)
            now = runtime.now()
            if what == "reply":
                landed = portal.record_portal_reply(
                    s, t, me, text, policy=runtime.policy, now=now, reopen_days=runtime.settings.mail_reopen_days
                )
                files_failed = _store_files(s, landed.ticket, files, runtime, me, written)
                if portal.visible(landed.ticket, me):  # a follow-up, or the ticket a merged one went into
                    number = int(landed.ticket.number or number)
            elif what == "closed":
                portal.confirm_resolved(s, t, me, policy=runtime.policy, now=now)
            else:
                portal.still_broken(s, t, me, text, policy=runtime.policy, now=now)
    except (DomainError, ValueError) as exc:
        return render_ticket(number, error=_with_files_note(str(exc)), status=400, reply=text)
    done = f"{what}-files-{files_failed.replace(' ', '-')}" if files_failed else what
    return redirect(url_for("portal.ticket", number=number, done=done), code=303)
