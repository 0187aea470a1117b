"""Portal pages: sign-in by emailed link, the client's tickets, a new ticket with triage questions, a ticket's public timeline.

Thin adapters: parse the form, call one ticketing.portal function in one transaction,
then redirect (or re-render with the error and a 4xx status; nothing half-applied).
A ticket the contact may not see answers 404, exactly like one that does not exist.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import re
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    g,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import InternalError, OperationalError
from werkzeug.datastructures import FileStorage

from runtime import Runtime
from runtime.web import rt
from ticketing import conversation, portal, service
from ticketing.db import transaction
from ticketing.errors import DomainError, InvalidTransition, UnknownTicket
from ticketing.models import TicketAttachment
from ticketing.portal import PortalViewer
from ticketing.priority import Priority
from ticketing.sla import calendar_for
from ticketing.text import one_line
from ticketing.triage import QUESTIONS, Affected, TriageAnswers, parse_answers, triage
from web.portal import present
from web.security import CONTENT_SECURITY_POLICY
from workers.dispatch import hand_off_after_response

blueprint = Blueprint(
    "portal",
    __name__,
    url_prefix="/portal",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

PUBLIC_ENDPOINTS = frozenset({"portal.sign_in", "portal.confirm_link", "portal.static"})
ENDED = {
    "idle": "You were signed out after a period of inactivity. Ask for a new sign-in link below.",
    "expired": "Your session reached its maximum length. Ask for a new sign-in link below.",
    "contact removed": "Your contact record changed. Ask for a new sign-in link below.",
    "contact changed": "Your contact record changed. Ask for a new sign-in link below.",
    "signed out": "You are signed out.",
}
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
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")
log = logging.getLogger(__name__)


def cookie_name(runtime: Runtime) -> str:
    """``__Host-portal`` where HTTPS allows it (Secure, Path=/, no Domain), ``portal`` on plain-HTTP development."""
    return "__Host-portal" if runtime.settings.console_secure_cookies else "portal"


def viewer() -> PortalViewer:
    """The signed-in contact of this request (set by the guard)."""
    return g.portal_viewer  # type: ignore[no-any-return]


def _limits(runtime: Runtime) -> dict[str, timedelta]:
    s = runtime.settings
    return {"idle": timedelta(minutes=s.portal_idle_minutes), "lifetime": timedelta(hours=s.portal_session_hours)}


def link_limits(runtime: Runtime) -> portal.LinkLimits:
    """The sign-in link settings as the domain takes them."""
    s = runtime.settings
    return portal.LinkLimits(
        lifetime=timedelta(minutes=s.portal_link_minutes),
        per_address=s.portal_link_limit_per_address,
        per_source=s.portal_link_limit_per_source,
        window=timedelta(minutes=s.portal_link_window_minutes),
    )


# The forms that take files. Werkzeug's multipart parser reads the body 64 KiB at a time and answers 413 when
# one read plus the undecoded tail it keeps (up to a boundary's length) exceeds max_form_memory_size, so the
# app's 64 KiB form limit refused most files over a few hundred KiB. These forms allow a read, a boundary and
# their longest text field; every other form keeps the small limit.
UPLOAD_ENDPOINTS = frozenset({"portal.new_ticket", "portal.reply"})
UPLOAD_FORM_MEMORY_BYTES = 256 * 1024
UPLOAD_FORM_FIELDS = 20  # the new-ticket form's fields, with room to spare (files are counted on top)


@blueprint.url_value_preprocessor
def cap_request_size(endpoint: str | None, _values: dict[str, Any] | None) -> None:
    """No portal request body larger than its files allow (checked before CSRF reads the form)."""
    s = rt().settings
    request.max_content_length = s.portal_attachment_max_files * s.portal_attachment_max_bytes + 256 * 1024
    if endpoint in UPLOAD_ENDPOINTS:
        request.max_form_memory_size = UPLOAD_FORM_MEMORY_BYTES
        request.max_form_parts = UPLOAD_FORM_FIELDS + s.portal_attachment_max_files


@blueprint.before_request
def require_portal_session() -> Response | tuple[str, int] | None:
    """Every portal URL but sign-in and static files needs a live portal session (never a console one)."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    runtime = rt()
    token, found, why = _current_session(runtime)
    if found is None:
        if request.endpoint in ("portal.triage_preview", "portal.attachment"):
            return "sign in to the portal first\n", 401
        if request.method != "GET":
            # A form sent after the session ended: say so (nothing was changed) rather than lose it silently.
            html = render_template(
                "portal/message.html",
                title="Please sign in again",
                message=ENDED.get(why or "", "You are not signed in.")
                + " Nothing was sent: copy anything you wrote before you sign in again.",
            )
            return html, 401
        response = redirect(url_for("portal.sign_in", ended=why) if why in ENDED else url_for("portal.sign_in"))
        if token:
            response.delete_cookie(cookie_name(runtime), path="/", secure=runtime.settings.console_secure_cookies)
        return response
    g.portal_viewer = found
    return None


def _current_session(runtime: Runtime) -> tuple[str | None, PortalViewer | None, str | None]:
    """This browser's portal cookie, the contact it signs in (if still live), and why it ended (if it did)."""
    token = request.cookies.get(cookie_name(runtime))
    if not token:
        return None, None, None
    with transaction(runtime.sessions) as s:
        check = portal.check_session(s, token, now=runtime.now(), **_limits(runtime))
    return token, check.viewer, check.ended_why


@blueprint.after_request
def portal_headers(response: Response) -> Response:
    """The console's security headers, on every portal response."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    if request.endpoint != "portal.static":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


@blueprint.errorhandler(CSRFError)
def csrf_failed(error: CSRFError) -> tuple[str, int]:
    """A form without a valid CSRF token changes nothing."""
    return render_template(
        "portal/message.html",
        title="Please try again",
        message="This form has expired or did not come from the portal. Go back, reload the page and try again.",
    ), 400


@blueprint.errorhandler(404)
def not_found(_error: Exception) -> tuple[str, int]:
    """Nothing here, or nothing this contact may see: the same answer."""
    return render_template(
        "portal/message.html", title="Not found", message="There is no ticket or page at this address for you."
    ), 404


@blueprint.errorhandler(413)
def too_large(_error: Exception) -> tuple[str, int]:
    """An upload over the size cap."""
    mb = rt().settings.portal_attachment_max_bytes // (1024 * 1024)
    return render_template(
        "portal/message.html",
        title="File too large",
        message=f"Attachments are at most {mb} MB each. Go back and attach a smaller file.",
    ), 413


@blueprint.errorhandler(OperationalError)
@blueprint.errorhandler(InternalError)
def not_stored(error: Exception) -> tuple[str, int, dict[str, str]]:
    """The database refused to store the request (a full disk, a read-only server) or did not answer: say so,
    and give the support number (a P1 must not end at an error page)."""
    log.error("portal %s %s failed on the database: %s", request.method, request.path, error)
    number = present.phone_text(rt().settings.support_number)
    if request.method == "GET":
        title, what = "This page is not available", "Our system is not working right now, so this page cannot be shown."
    else:
        title, what = (
            "We could not save this",
            "Our system cannot store anything right now, so nothing you sent was saved.",
        )
    html = render_template(
        "portal/message.html",
        title=title,
        message=f"{what} Please call us at {number}: we answer the phone as usual. If it is not urgent, try again later.",
        kept=_typed_text(),
    )
    return html, 503, {"Retry-After": "120"}


def _typed_text() -> list[tuple[str, str]]:
    """What the person typed into the form that could not be saved, so they can copy it."""
    labels = {"summary": "Summary", "description": "Description", "text": "Your message"}
    return [(label, request.form[key].strip()) for key, label in labels.items() if request.form.get(key, "").strip()]


@blueprint.app_context_processor
def portal_context() -> dict[str, Any]:
    """What every portal page shows."""
    runtime = rt()
    context: dict[str, Any] = {}
    if request.blueprint == blueprint.name:
        context["portal_viewer"] = getattr(g, "portal_viewer", None)
        context["company"] = runtime.settings.company_name
        context["support_number"] = present.phone_text(runtime.settings.support_number)
    return context


# --- sign-in -------------------------------------------------------------------------------------------


@blueprint.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Response | str | tuple[str, int]:
    """Enter an email address; a link is emailed when it is a contact's. The same answer either way."""
    runtime = rt()
    if request.method == "GET":
        return render_template("portal/sign_in.html", email="", ended=ENDED.get(request.args.get("ended") or ""))
    email = request.form.get("email", "")
    try:
        with transaction(runtime.sessions) as s:
            portal.request_link(
                s, email, now=runtime.now(), limits=link_limits(runtime), remote_addr=request.remote_addr
            )
    except portal.RateLimited as exc:
        with transaction(runtime.sessions) as s:  # the refusal itself is audited (the failed transaction rolled back)
            portal.log_event(
                s,
                "rate limited",
                now=runtime.now(),
                email=portal.normalize_email(email),
                remote_addr=request.remote_addr,
            )
        return render_template("portal/sign_in.html", email=email, error=str(exc)), 429
    except DomainError as exc:
        return render_template("portal/sign_in.html", email=email, error=str(exc)), 400
    response = Response(
        render_template(
            "portal/link_sent.html", email=portal.normalize_email(email), minutes=runtime.settings.portal_link_minutes
        )
    )
    hand_off_after_response(response, runtime)
    return response


@blueprint.route("/sign-in/link", methods=["GET", "POST"])
def confirm_link() -> Response | str | tuple[str, int]:
    """The emailed link opens a page; only pressing its button signs in (mail scanners open links by themselves).

    The token rides in the query string of the link and in the form of the button, never in a path, so the
    access log (which records paths only, see the Procfile) never holds it; no page sends it on as a Referer.
    """
    runtime = rt()
    if request.method == "GET":
        token = request.args.get("token", "")
        with runtime.sessions() as s:
            check = portal.check_link(s, token, now=runtime.now())
            name = check.contact.name if check.contact else None
        if check.contact is None:
            _token, found, _why = _current_session(runtime)
            if found is not None:
                # The link clicked a second time, in the browser it already signed in: nothing is wrong.
                g.portal_viewer = found
                return _no_referrer(
                    render_template(
                        "portal/message.html",
                        title="You are already signed in",
                        message=f"This sign-in link was used already, and you are still signed in as {found.name}.",
                    )
                )
            return _no_referrer(_link_problem(check.why))
        return _no_referrer(render_template("portal/confirm.html", token=token, name=name))
    token = request.form.get("token", "")
    try:
        with transaction(runtime.sessions) as s:
            # A browser signed in as someone else (a shared front-desk PC): that session ends on the server too.
            portal.end_session(
                s, request.cookies.get(cookie_name(runtime)), now=runtime.now(), remote_addr=request.remote_addr
            )
            _contact, session_token = portal.sign_in(
                s,
                token,
                now=runtime.now(),
                remote_addr=request.remote_addr,
                user_agent=request.headers.get("User-Agent"),
            )
    except InvalidTransition as exc:
        with transaction(runtime.sessions) as s:  # audited outside the rolled-back transaction
            portal.log_event(s, "refused", now=runtime.now(), remote_addr=request.remote_addr, why=str(exc))
        return _no_referrer(_link_problem(str(exc)))
    response = redirect(url_for("portal.tickets"), code=303)
    response.set_cookie(
        cookie_name(runtime),
        session_token,
        max_age=runtime.settings.portal_session_hours * 3600,
        path="/",
        secure=runtime.settings.console_secure_cookies,
        httponly=True,
        samesite="Lax",
    )
    return _no_referrer(response)


def _no_referrer(answer: Response | str | tuple[str, int]) -> Response:
    """A sign-in link's page tells no other page (its stylesheet, a link on it) the address it was opened at."""
    response = make_response(answer)
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _link_problem(why: str | None) -> tuple[str, int]:
    messages = {
        "used": "This sign-in link was already used. Each link works once: ask for a new one below.",
        "expired": "This sign-in link has expired. Links work for a short time: ask for a new one below.",
    }
    message = messages.get(why or "", "This sign-in link is not valid. Ask for a new one below.")
    return render_template("portal/sign_in.html", email="", error=message), 400


@blueprint.post("/sign-out")
def sign_out() -> Response:
    """Sign out: the session ends on the server, so a copied cookie is worthless."""
    runtime = rt()
    with transaction(runtime.sessions) as s:
        portal.end_session(
            s, request.cookies.get(cookie_name(runtime)), now=runtime.now(), remote_addr=request.remote_addr
        )
    response = redirect(url_for("portal.sign_in", ended="signed out"), code=303)
    response.delete_cookie(cookie_name(runtime), path="/", secure=runtime.settings.console_secure_cookies)
    return response


# --- the client's tickets ------------------------------------------------------------------------------


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
                t, service.call_events(s, t.call_sid), runtime.policy.timezone, conversation.conversation(s, t)
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


@contextmanager
def _removing_on_failure(written: list[Path]) -> Iterator[None]:
    """Files written for a request whose transaction then failed would belong to nothing: remove them."""
    try:
        yield
    except BaseException:
        remove_files(written)
        raise


# --- a new ticket --------------------------------------------------------------------------------------


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


# --- attachments ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """A file read from the form, within the size cap."""

    filename: str
    content_type: str
    data: bytes


def _uploads(runtime: Runtime) -> list[Upload]:
    cap = runtime.settings.portal_attachment_max_bytes
    files: list[FileStorage] = [f for f in request.files.getlist("attachments") if f and f.filename]
    if len(files) > runtime.settings.portal_attachment_max_files:
        raise ValueError(f"Attach at most {runtime.settings.portal_attachment_max_files} files at a time.")
    out = []
    for f in files:
        data = f.stream.read(cap + 1)
        if len(data) > cap:
            raise ValueError(f"{clean_filename(f.filename or '')} is larger than {cap // (1024 * 1024)} MB.")
        if not data:
            raise ValueError(f"{clean_filename(f.filename or '')} is empty (0 bytes): leave it out or attach another.")
        out.append(Upload(clean_filename(f.filename or ""), (f.mimetype or "application/octet-stream")[:100], data))
    return out


def _with_files_note(error: str) -> str:
    """A refused form keeps what was typed, but no browser keeps chosen files: say so, or they are lost unseen."""
    return f"{error} Nothing was sent: please choose your files again." if _files_chosen() else error


def _files_chosen() -> bool:
    return any(f and f.filename for f in request.files.getlist("attachments"))


def clean_filename(name: str) -> str:
    """A file name safe to show and to send back: no folders, only plain characters."""
    base = Path(name.replace("\\", "/")).name
    cleaned = _SAFE_NAME.sub("_", base).strip(" .") or "file"
    return cleaned[:120]


def _store_files(
    session: Any, ticket: Any, files: list[Upload], runtime: Runtime, me: PortalViewer, written: list[Path]
) -> str | None:
    """Write the files beside the recordings (RECORDINGS_DIR/attachments/<ticket>/) and record them on the ticket.

    All or none: when a file cannot be written (a full disk) every file of this request is removed, none is
    recorded, and the reason is returned, so the caller keeps the text and says which part failed.
    ``written`` collects the paths, for the caller to remove should its transaction fail after this.
    """
    if not files:
        return None
    root = Path(runtime.settings.recordings_dir)
    folder = root / "attachments" / str(ticket.number)
    stored: list[tuple[Upload, Path]] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for upload in files:
            path = folder / f"{secrets.token_hex(8)}-{upload.filename}"
            written.append(path)  # before the write: a write cut short leaves a partial file to remove
            path.write_bytes(upload.data)
            stored.append((upload, path))
    except OSError as exc:
        log.error("attachments of ticket %s could not be stored: %s", ticket.number, exc)
        remove_files(written)
        return "disk full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "storage error"
    for upload, path in stored:
        portal.add_attachment(
            session,
            ticket,
            filename=upload.filename,
            content_type=upload.content_type,
            size=len(upload.data),
            sha256=hashlib.sha256(upload.data).hexdigest(),
            path=str(path.relative_to(root)),
            now=runtime.now(),
            contact_id=me.contact_id,
        )
    return None


def remove_files(paths: list[Path]) -> None:
    """Remove files written for a request that did not complete (partial or orphaned), as far as possible."""
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.error("could not remove %s: %s", path, exc)
    paths.clear()


def attachment_response(row: TicketAttachment | conversation.ClientFile, root: Path) -> Response:
    """Send a stored attachment: images inline, anything else as a download; never sniffed, never cached."""
    from web.console.views import recording_file

    path = recording_file(row.path, root)
    if path is None:
        abort(404)
    suffix = Path(row.filename).suffix.lower()
    mimetype = IMAGE_TYPES.get(suffix, "application/octet-stream")
    response = send_file(
        path,
        mimetype=mimetype,
        as_attachment=mimetype not in IMAGE_TYPES.values(),
        download_name=one_line(row.filename) or "file",  # an emailed name may carry a line break
        max_age=0,
    )
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@blueprint.get("/tickets/<int:number>/attachments/<int:attachment_id>")
def attachment(number: int, attachment_id: int) -> Response:
    """An attachment of a ticket the contact may see."""
    runtime = rt()
    with runtime.sessions() as s:
        try:
            t = portal.ticket_for(s, viewer(), number)
        except UnknownTicket:
            abort(404)
        row = s.get(TicketAttachment, attachment_id)
        if row is None or row.ticket_id != t.id:
            abort(404)
    return attachment_response(row, runtime.settings.recordings_dir)


@blueprint.get("/tickets/<int:number>/email-files/<int:attachment_id>")
def email_attachment(number: int, attachment_id: int) -> Response:
    """A file the client sent by email on a ticket the contact may see (a stored one)."""
    runtime = rt()
    with runtime.sessions() as s:
        try:
            t = portal.ticket_for(s, viewer(), number)
        except UnknownTicket:
            abort(404)
        row = conversation.client_file(s, t, "email", attachment_id)
        if row is None or row.path is None:
            abort(404)
    return attachment_response(row, runtime.settings.recordings_dir)
