"""The JSON API for integrations (PSA sync): list, read, open and update tickets.

Authorised by per-integration bearer tokens (``flask --app wsgi api-token create NAME``),
never by the console's cookie, so it needs no CSRF token. Documented in
``web/api/openapi.yaml``, served at ``/api/openapi.yaml``. Requests are validated
as strictly as that document describes them; an invalid request changes nothing
and gets 400 with a message.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, g, jsonify, request, url_for
from sqlalchemy.exc import InternalError, OperationalError
from werkzeug.exceptions import HTTPException

import languages
from runtime import Runtime
from runtime.web import rt
from ticketing import accounts, lifecycle, queue, voicemail
from ticketing.db import transaction
from ticketing.errors import DomainError, InvalidInput, InvalidTransition, UnknownTicket
from ticketing.models import OPEN_STATUSES, Client, Source, Status, Ticket
from ticketing.priority import DEFAULT_PRIORITY, Priority
from ticketing.transcripts import missing_note
from web.api import throttle
from web.console import present
from web.portal.present import phone_text

blueprint = Blueprint("api", __name__, url_prefix="/api")
OPENAPI_FILE = Path(__file__).resolve().parent / "openapi.yaml"
PRIORITIES = tuple(p.value for p in Priority)
STATUSES = tuple(s.value for s in Status)
API_SOURCES = (Source.PHONE.value, Source.EMAIL.value, Source.PORTAL.value, Source.MANUAL.value)
MAX_ID = 2**31 - 1  # INTEGER columns: larger numbers cannot name a row
_TEXT = re.compile(r"\S")
log = logging.getLogger(__name__)


class BadRequest(ValueError):
    """The request does not match the API document."""


class NotFound(LookupError):
    """A ticket or client named by the request does not exist."""


def error(status: int, message: str) -> tuple[Response, int]:
    """A JSON error body: {"error": message}."""
    return jsonify(error=message), status


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})  # all a read-only token may do


def too_many_requests(verdict: throttle.Verdict, what: str) -> tuple[Response, int]:
    """429 with Retry-After: the seconds until the window has room again."""
    response, status = error(
        429, f"too many requests: at most {verdict.described} {what}; retry after {verdict.reset_in} s"
    )
    response.headers["Retry-After"] = str(verdict.reset_in)
    return response, status


@blueprint.before_request
def require_token() -> tuple[Response, int] | None:
    """Every API call but the document itself needs ``Authorization: Bearer <token>``, within its rate limit;
    a read-only token may only read."""
    if request.endpoint == "api.openapi":
        return None
    runtime = rt()
    address = request.remote_addr or "unknown"
    refused = throttle.address_refused(runtime, address)
    if refused is not None:
        return too_many_requests(refused, "failed authentications per client address")
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    token = scope = key = None
    if scheme.lower() == "bearer" and presented.strip():
        with transaction(runtime.sessions) as s:
            row = accounts.api_token_for(s, presented.strip(), now=runtime.now())
            if row is not None:
                token, scope, key = row.name, row.scope, row.token_hash[:32]
    if token is None or key is None:
        failed = throttle.authentication_failed(runtime, address)
        if not failed.allowed:
            return too_many_requests(failed, "failed authentications per client address")
        response, status = error(401, "a valid API token is required: Authorization: Bearer <token>")
        response.headers["WWW-Authenticate"] = 'Bearer realm="supportline"'
        return response, status
    verdict = throttle.token_request(runtime, key)
    g.api_rate = verdict
    if not verdict.allowed:
        return too_many_requests(verdict, "requests per token")
    g.api_actor = f"api:{token}"
    # A method the route does not have stays a 405 (the routing error is raised after this hook).
    if scope != accounts.WRITE and request.method not in SAFE_METHODS and request.routing_exception is None:
        return error(403, f"the token {token!r} is read-only: it may not {request.method} (ask for a write token)")
    return None


@blueprint.after_request
def rate_limit_headers(response: Response) -> Response:
    """The token's window on every answer, so an integration can pace itself before it meets a 429."""
    verdict = g.get("api_rate")
    if verdict is not None:
        response.headers["RateLimit-Limit"] = str(verdict.limit.amount)
        response.headers["RateLimit-Remaining"] = str(verdict.remaining)
        response.headers["RateLimit-Reset"] = str(verdict.reset_in)
    return response


@blueprint.errorhandler(BadRequest)
def bad_request(exc: BadRequest) -> tuple[Response, int]:
    return error(400, str(exc))


@blueprint.errorhandler(NotFound)
def not_found(exc: NotFound) -> tuple[Response, int]:
    return error(404, str(exc))


@blueprint.errorhandler(405)
def method_not_allowed(exc: Any) -> Response:
    response = exc.get_response()
    response.set_data(jsonify(error="method not allowed").get_data())
    response.mimetype = "application/json"
    return response  # type: ignore[no-any-return]


@blueprint.get("/openapi.yaml")
def openapi() -> Response:
    """The API's OpenAPI 3 document."""
    return Response(OPENAPI_FILE.read_bytes(), mimetype="application/yaml")


# --- validation ----------------------------------------------------------------------------------------


def _json_object() -> dict[str, Any]:
    if not request.is_json:
        raise BadRequest("send a JSON object with Content-Type: application/json")
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        raise BadRequest("the JSON body is nested too deeply") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _only(body: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r}: expected only {', '.join(sorted(allowed))}")


def _string(
    body: Mapping[str, Any], key: str, *, max_length: int, nullable: bool = False, text: bool = False
) -> str | None:
    value = body.get(key)
    if value is None:
        if key in body and not nullable:
            raise BadRequest(f"{key} must be a string, not null")
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{key} must be a string")
    if len(value) > max_length:
        raise BadRequest(f"{key} is at most {max_length} characters")
    if text and not _TEXT.search(value):
        raise BadRequest(f"{key} must not be empty")
    return value


def _choice(value: object, key: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise BadRequest(f"{key} must be one of {', '.join(choices)}")
    return value


def _id(value: object, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise BadRequest(f"{key} must be a whole number from 1 to {MAX_ID}")
    return value


QUERY_FILTERS = {"priority", "status", "client_id", "assignee", "breached", "language"}
PAGE_PARAMETERS = {"limit", "cursor"}
DEFAULT_PAGE_SIZE = 50  # tickets per page unless the request asks for fewer or more
MAX_PAGE_SIZE = 100  # a ticket is about 1.4 KiB of JSON: 100 are ~140 KiB per answer


def _query_filters(now: datetime) -> queue.QueueFilter:
    args = request.args
    # An unknown filter is refused rather than ignored, so a typo never returns the whole queue.
    unknown = sorted(set(args) - QUERY_FILTERS - PAGE_PARAMETERS)
    if unknown:
        expected = ", ".join(sorted(QUERY_FILTERS | PAGE_PARAMETERS))
        raise BadRequest(f"unknown filter {unknown[0]!r}: expected only {expected}")
    priority = status = assignee = None
    client_id = None
    breached = False
    if "priority" in args:
        priority = _choice(args["priority"], "priority", PRIORITIES)
    if "status" in args:
        status = _choice(args["status"], "status", OPEN_STATUSES)
    if "client_id" in args:
        raw = args["client_id"]
        if not re.fullmatch(r"[0-9]{1,10}", raw):
            raise BadRequest("client_id must be a whole number")
        client_id = _id(int(raw), "client_id")
    if "assignee" in args:
        assignee = args["assignee"]
        if len(assignee) > 120:
            raise BadRequest("assignee is at most 120 characters")
    if "breached" in args:
        breached = _choice(args["breached"], "breached", ("true", "false")) == "true"
    language = _choice(args["language"], "language", languages.available()) if "language" in args else None
    return queue.QueueFilter(
        priority=priority,
        status=status,
        client_id=client_id,
        assignee=assignee or None,
        breached_at=now if breached else None,
        language=language,
    )


def _page_size() -> int:
    raw = request.args.get("limit")
    if raw is None:
        return DEFAULT_PAGE_SIZE
    if not re.fullmatch(r"[0-9]{1,4}", raw) or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_PAGE_SIZE}")
    return int(raw)


def encode_cursor(position: queue.QueuePosition) -> str:
    """An opaque cursor naming a place in the queue (clients pass it back as it is)."""
    raw = json.dumps([position.priority, position.opened_at.astimezone(UTC).isoformat(), position.id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> queue.QueuePosition:
    """The place a cursor from ``encode_cursor`` names; BadRequest for anything else."""
    invalid = BadRequest("cursor is not one this API gave: pass the next_cursor of the previous page as it is")
    if len(cursor) > 200 or not re.fullmatch(r"[A-Za-z0-9_-]+", cursor):
        raise invalid
    try:
        priority, opened_at, ticket_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        at = datetime.fromisoformat(opened_at)
    except (ValueError, TypeError, UnicodeDecodeError):
        raise invalid from None
    if priority not in PRIORITIES or at.tzinfo is None or isinstance(ticket_id, bool) or not isinstance(ticket_id, int):
        raise invalid
    if not 1 <= ticket_id <= MAX_ID:
        raise invalid
    return queue.QueuePosition(priority, at, ticket_id)


# --- representation ------------------------------------------------------------------------------------


def _number_check(view: Any) -> dict[str, Any] | None:
    """The transcript's numbers to check against the recording (two readings heard them differently)."""
    check = view.number_check
    if check is None:
        return None
    return {
        "note": check.note,
        "unsure": [
            {"number": number, "why": why, "said_at": check.span(number) or None} for number, why in check.unsure
        ],
        "heard_by_other_reading": list(check.heard),
        "callback_number_unsure": view.callback_unsure,
    }


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def ticket_json(view: present.TicketView) -> dict[str, Any]:
    """A ticket as the API shows it."""
    t = view.ticket
    paging = view.paging
    return {
        "number": t.number,
        "priority": t.priority,
        "priority_label": view.priority_label,
        "status": t.status,
        "source": t.source,
        "summary": t.summary,
        "client_summary": view.client_summary,
        "description": t.description,
        "client": {"id": t.client.id, "name": t.client.name} if t.client is not None else None,
        "contact_name": view.caller_name,
        "caller_number": t.caller_number,
        "callback_number": view.callback_number,
        "callback_origin": view.callback[1],
        "assignee": t.assignee,
        "created_at": _iso(t.opened_at),
        "updated_at": _iso(t.updated_at),
        "after_hours": bool(t.after_hours),
        "language": t.language or "en",
        "merged_into": None,  # filled in by _render, which has the session
        "transcript": {
            "state": t.transcription_state,
            "text": t.transcript,
            "confidence": t.transcript_confidence,
            "low_confidence": bool(t.transcript_low_confidence),
            "language": t.transcript_language,
            "translation": t.transcript_translation,
            "translation_state": (translation_state := voicemail.translation_state(t)),
            "translation_error": voicemail.translation_error(t) if translation_state == "failed" else None,
            "missing": [{"start": s[0], "end": s[1]} for s in t.transcript_missing or ()],
            "missing_note": missing_note(t.transcript_missing) or None,
            "numbers_to_check": _number_check(view),
            "pass": t.transcript_pass,
            "passes": [
                {k: p.get(k) for k in ("pass", "engine", "text", "confidence", "missing", "note")}
                for p in t.transcript_passes or ()
            ],
        },
        "audio": {
            "available": view.has_audio,
            "duration_seconds": t.audio_seconds if t.audio_seconds is not None else t.recording_duration,
        },
        "sla": {
            "paused": t.paused_at is not None,
            "extension_seconds": int(t.sla_extension_seconds or 0),
            "milestones": [
                {
                    "name": m.name,
                    "due_at": _iso(m.due_at),
                    "met_at": _iso(m.met_at),
                    "met_in_time": m.met_in_time,
                    "breached": m.breached,
                    "state": m.state,
                    "estimate": _iso(m.estimate),
                }
                for m in view.milestones
            ],
        },
        "paging": {
            "state": paging.state,
            "paged": list(paging.people),
            "acknowledged_by": paging.by,
            "acknowledged_at": _iso(paging.at),
            "acknowledged_via": paging.via,
            "pages_delivered": paging.delivered,
            "pages": paging.total,
            "email_pages_sent": paging.emails,
            "nobody_reached": paging.unreached,
            "fallback_paged": list(paging.fallback_sent),
            "joined_escalation_of": paging.joined_into,
        },
    }


def _one(number: int) -> dict[str, Any]:
    runtime = rt()
    with runtime.sessions() as s:
        ticket = _find(s, number)
        return _render(s, ticket, runtime)


def _find(session: Any, number: int, *, for_update: bool = False) -> Ticket:
    if not 1 <= number <= MAX_ID:
        raise NotFound(f"no ticket {number}")
    try:
        return lifecycle.get_ticket(session, number, for_update=for_update)
    except UnknownTicket:
        raise NotFound(f"no ticket {number}") from None


def _render(session: Any, ticket: Ticket, runtime: Runtime) -> dict[str, Any]:
    view = present.ticket_views(session, [ticket], runtime.policy, runtime.now())[0]
    body = ticket_json(view)
    if ticket.merged_into_id is not None:
        target = session.get(Ticket, ticket.merged_into_id)
        body["merged_into"] = target.number if target is not None else None
    return body


# --- endpoints -----------------------------------------------------------------------------------------


@blueprint.get("/tickets")
def list_tickets() -> Response:
    """Open tickets, by priority then first come first served, a page at a time; filters as the console's queue."""
    runtime = rt()
    now = runtime.now()
    filters = _query_filters(now)
    size = _page_size()
    after = decode_cursor(request.args["cursor"]) if "cursor" in request.args else None
    with runtime.sessions() as s:
        # One more than the page: whether there is a next page, without counting the queue.
        tickets = list(queue.open_queue(s, filters, after=after, limit=size + 1))
        more, tickets = len(tickets) > size, tickets[:size]
        views = present.ticket_views(s, tickets, runtime.policy, now)
        body = [ticket_json(v) for v in views]
        cursor = encode_cursor(queue.QueuePosition.of(tickets[-1])) if more else None
    following = None
    if cursor is not None:
        args = {k: v for k, v in request.args.items() if k != "cursor"}
        following = url_for("api.list_tickets", **args, cursor=cursor)
    response = jsonify(tickets=body, count=len(body), next_cursor=cursor, next=following)
    if following is not None:
        response.headers["Link"] = f'<{following}>; rel="next"'
    return response


@blueprint.get("/tickets/<int:number>")
def get_ticket(number: int) -> Response:
    """One ticket, open or not."""
    return jsonify(_one(number))


CREATE_FIELDS = {"summary", "priority", "source", "caller_number", "client_id", "description", "reason"}
UPDATE_FIELDS = {"priority", "reason", "status", "assignee", "note"}


@blueprint.post("/tickets")
def create_ticket() -> tuple[Response, int, dict[str, str]]:
    """Open a ticket; its SLA clocks start now."""
    body = _json_object()
    _only(body, CREATE_FIELDS)
    if "summary" not in body:
        raise BadRequest("summary is required")
    summary = _string(body, "summary", max_length=200, text=True)
    priority = _choice(body["priority"], "priority", PRIORITIES) if "priority" in body else DEFAULT_PRIORITY.value
    source = _choice(body["source"], "source", API_SOURCES) if "source" in body else Source.MANUAL.value
    caller = _string(body, "caller_number", max_length=32, nullable=True)
    description = _string(body, "description", max_length=10000) or ""
    reason = _string(body, "reason", max_length=1000, nullable=True)
    client_id = None if body.get("client_id") is None else _id(body["client_id"], "client_id")
    runtime = rt()
    with transaction(runtime.sessions) as s:
        if client_id is not None and s.get(Client, client_id) is None:
            raise NotFound(f"no client {client_id}")
        try:
            ticket = lifecycle.open_ticket(
                s,
                policy=runtime.policy,
                now=runtime.now(),
                priority=priority,
                source=source,
                actor=g.api_actor,
                caller_number=caller.strip() if caller and caller.strip() else None,
                summary=(summary or "").strip(),
                description=description,
                client_id=client_id,
                reason=reason.strip() if reason and reason.strip() else None,
            )
        except InvalidInput as exc:
            raise BadRequest(str(exc)) from None
        result = _render(s, ticket, runtime)
    return jsonify(result), 201, {"Location": url_for("api.get_ticket", number=result["number"])}


@blueprint.patch("/tickets/<int:number>")
def update_ticket(number: int) -> Response | tuple[Response, int]:
    """Change priority (with a reason), status, assignee, or add a note; all or nothing."""
    body = _json_object()
    _only(body, UPDATE_FIELDS)
    if not set(body) & {"priority", "status", "assignee", "note"}:
        raise BadRequest("nothing to change: send priority (with reason), status, assignee or note")
    priority = _choice(body["priority"], "priority", PRIORITIES) if "priority" in body else None
    reason = _string(body, "reason", max_length=1000, text=True)
    if priority is not None and reason is None:
        raise BadRequest("a priority change needs a reason")
    status = _choice(body["status"], "status", STATUSES) if "status" in body else None
    assignee = _string(body, "assignee", max_length=120, nullable=True)
    note = _string(body, "note", max_length=10000, text=True)
    runtime = rt()
    actor = g.api_actor
    try:
        with transaction(runtime.sessions) as s:
            now = runtime.now()
            ticket = _find(s, number, for_update=True)
            if priority is not None:
                lifecycle.change_priority(
                    s, ticket, priority, reason=reason or "", actor=actor, now=now, policy=runtime.policy
                )
            if "assignee" in body:
                lifecycle.assign(s, ticket, assignee, actor=actor, now=now)
            if note is not None:
                lifecycle.add_note(s, ticket, note, actor=actor, now=now)
            if status is not None:
                lifecycle.set_status(s, ticket, status, actor=actor, now=now, policy=runtime.policy, reason=reason)
            result = _render(s, ticket, runtime)
    except InvalidTransition as exc:
        return error(409, str(exc))
    except (InvalidInput, ValueError) as exc:
        return error(400, str(exc))
    except DomainError as exc:
        return error(400, str(exc))
    return jsonify(result)


# --- errors: JSON for every status, never an HTML page ----------------------------------------------------


@blueprint.errorhandler(OperationalError)
@blueprint.errorhandler(InternalError)
def not_stored(exc: Exception) -> tuple[Response, int, dict[str, str]]:
    """The database refused the write (a full disk, a read-only server) or did not answer: 503, retry later."""
    log.error("API %s %s could not be stored: %s", request.method, request.path, exc)
    response = jsonify(
        error="the database is unavailable or refuses writes: nothing was changed; retry later",
        support_number=phone_text(rt().settings.support_number),
    )
    return response, 503, {"Retry-After": "120"}


@blueprint.app_errorhandler(HTTPException)
def json_http_error(exc: HTTPException) -> Response | HTTPException:
    """Under /api/ every HTTP error (an unknown URL, a wrong method, a server error) answers JSON.

    On the app, not the blueprint: a URL or method that matches no route, and an unhandled exception,
    never reach a blueprint's handlers.
    """
    if not request.path.startswith(blueprint.url_prefix or "/api"):
        return exc  # the app's own pages (console, portal) answer as before
    response = exc.get_response()
    response.set_data(jsonify(error=(exc.description or exc.name or "error").rstrip(".")).get_data())
    response.mimetype = "application/json"
    return response
