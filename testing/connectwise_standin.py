"""A local ConnectWise Manage stand-in: the REST shapes the PSA bridge uses, served in-process on a free port.

It answers as ConnectWise's REST API 3.0 does for service tickets: Basic auth of ``company+public:private``
plus a ``clientId`` header (401 otherwise), ticket and note bodies, JSON Patch updates, ``conditions`` on
``board/id``, ``summary like`` and ``lastUpdated``, ``page``/``pageSize`` with a ``Link`` header, and errors as
``{"code", "message", "errors": [...]}``. A test makes ConnectWise fail (``fail_next``) or changes a ticket's
status as a technician would (``set_status``).
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

PREFIX = "/v4_6_release/apis/3.0"
STATUSES = ["New", "Acknowledged", "In Progress", "Waiting on Client", "Resolved", "Closed"]


class ConnectWiseStandIn:
    """The stand-in's state: tickets, notes, every request seen; thread-safe."""

    def __init__(self, *, company: str, public_key: str, private_key: str, client_id: str, board_id: int) -> None:
        self.auth = "Basic " + base64.b64encode(f"{company}+{public_key}:{private_key}".encode()).decode()
        self.client_id = client_id
        self.board_id = board_id
        self.companies = {250: "Acme Dental", 19297: "Catchall"}
        self.tickets: dict[int, dict[str, Any]] = {}
        self.notes: dict[int, list[dict[str, Any]]] = {}
        self.requests: list[tuple[str, str]] = []
        self.failures: list[int] = []
        self.next_id = 1000
        self.lock = threading.Lock()
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.url = ""

    def fail_next(self, *statuses: int) -> None:
        """Answer the next requests with these HTTP statuses (a 5xx: ConnectWise is having a bad day)."""
        with self.lock:
            self.failures.extend(statuses)

    def set_status(self, ticket_id: int, name: str) -> None:
        """A technician changes the ticket's status in ConnectWise."""
        with self.lock:
            ticket = self.tickets[ticket_id]
            ticket["status"] = _status(name)
            ticket["_info"]["lastUpdated"] = self._stamp()

    def created(self) -> list[dict[str, Any]]:
        """Every ticket created, in order."""
        with self.lock:
            return [dict(t) for t in self.tickets.values()]

    def _stamp(self) -> str:
        return self.clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, Any, dict[str, str]]:
        """One request: (status, JSON body, extra headers)."""
        parts = urlsplit(target)
        path, query = parts.path, parse_qs(parts.query)
        with self.lock:
            self.requests.append((method, target))
            if headers.get("authorization") != self.auth or headers.get("clientid") != self.client_id:
                return 401, _error("Unauthorized", "Authentication failed."), {}
            if self.failures:
                status = self.failures.pop(0)
                return status, _error("InternalServerError", "An error occurred."), {}
            if not path.startswith(PREFIX + "/service/tickets"):
                return 404, _error("NotFound", f"No endpoint {path}."), {}
            rest = path[len(PREFIX + "/service/tickets") :].strip("/")
            try:
                payload = json.loads(body) if body else None
            except ValueError:
                return 400, _error("InvalidObject", "The body is not JSON."), {}
            if rest == "" and method == "POST":
                return self._create(payload)
            if rest == "" and method == "GET":
                return self._list(query)
            match = re.fullmatch(r"(\d+)(/notes)?", rest)
            if match is None or int(match.group(1)) not in self.tickets:
                return 404, _error("NotFound", f"Ticket {rest} not found."), {}
            ticket = self.tickets[int(match.group(1))]
            if match.group(2) and method == "POST":
                return self._note(ticket, payload)
            if match.group(2) and method == "GET":
                return 200, self.notes.get(ticket["id"], []), {}
            if method == "GET":
                return 200, ticket, {}
            if method == "PATCH":
                return self._patch(ticket, payload)
            return 405, _error("MethodNotAllowed", f"{method} is not allowed."), {}

    def _create(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        errors = []
        if not isinstance(body, dict):
            return 400, _error("InvalidObject", "ticket object is invalid"), {}
        if not str(body.get("summary") or "").strip():
            errors.append(
                {"code": "NullObject", "message": "summary may not be null", "resource": "ticket", "field": "summary"}
            )
        if len(str(body.get("summary") or "")) > 100:
            errors.append(
                {"code": "InvalidField", "message": "summary max length 100", "resource": "ticket", "field": "summary"}
            )
        if (body.get("board") or {}).get("id") != self.board_id:
            errors.append(
                {"code": "InvalidObject", "message": "board not found", "resource": "ticket", "field": "board"}
            )
        company = (body.get("company") or {}).get("id")
        if company not in self.companies:
            errors.append(
                {"code": "InvalidObject", "message": "company not found", "resource": "ticket", "field": "company"}
            )
        if errors:
            return 400, {"code": "InvalidObject", "message": "ticket object is invalid", "errors": errors}, {}
        self.next_id += 1
        now = self._stamp()
        ticket = {
            "id": self.next_id,
            "summary": body["summary"],
            "recordType": "ServiceTicket",
            "board": {"id": self.board_id, "name": "Help Desk", "_info": {}},
            "status": _status("New"),
            "company": {"id": company, "identifier": self.companies[company], "name": self.companies[company]},
            "contactName": body.get("contactName"),
            "contactPhoneNumber": body.get("contactPhoneNumber"),
            "contactEmailAddress": body.get("contactEmailAddress"),
            "priority": {"id": (body.get("priority") or {}).get("id", 4), "name": "Priority"},
            "initialDescription": body.get("initialDescription"),
            "closedFlag": False,
            "_info": {"lastUpdated": now, "dateEntered": now, "enteredBy": "api", "updatedBy": "api"},
        }
        self.tickets[ticket["id"]] = ticket
        return 201, ticket, {}

    def _note(self, ticket: dict[str, Any], body: Any) -> tuple[int, Any, dict[str, str]]:
        if not isinstance(body, dict) or not str(body.get("text") or "").strip():
            return (
                400,
                {
                    "code": "InvalidObject",
                    "message": "note is invalid",
                    "errors": [
                        {
                            "code": "NullObject",
                            "message": "text may not be null",
                            "resource": "ticketNote",
                            "field": "text",
                        }
                    ],
                },
                {},
            )
        notes = self.notes.setdefault(ticket["id"], [])
        note = {
            "id": len(notes) + 1,
            "ticketId": ticket["id"],
            "text": body["text"],
            "detailDescriptionFlag": bool(body.get("detailDescriptionFlag")),
            "internalAnalysisFlag": bool(body.get("internalAnalysisFlag")),
            "resolutionFlag": bool(body.get("resolutionFlag")),
            "dateCreated": self._stamp(),
            "_info": {"lastUpdated": self._stamp()},
        }
        notes.append(note)
        return 201, note, {}

    def _patch(self, ticket: dict[str, Any], ops: Any) -> tuple[int, Any, dict[str, str]]:
        if not isinstance(ops, list) or not ops:
            return 400, _error("InvalidObject", "patch operations expected"), {}
        for op in ops:
            if not isinstance(op, dict) or op.get("op") != "replace" or op.get("path") != "status":
                return 400, _error("InvalidObject", f"unsupported patch {op!r}"), {}
            name = (op.get("value") or {}).get("name")
            if name not in STATUSES:
                return (
                    400,
                    {
                        "code": "InvalidObject",
                        "message": "ticket object is invalid",
                        "errors": [
                            {
                                "code": "InvalidObject",
                                "message": "status not found",
                                "resource": "ticket",
                                "field": "status",
                            }
                        ],
                    },
                    {},
                )
            ticket["status"] = _status(name)
        ticket["_info"]["lastUpdated"] = self._stamp()
        return 200, ticket, {}

    def _list(self, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        conditions = (query.get("conditions") or [""])[0]
        rows = sorted(self.tickets.values(), key=lambda t: t["id"])
        for clause in re.split(r"\s+and\s+", conditions.strip()) if conditions.strip() else []:
            rows = [t for t in rows if _matches(t, clause)]
        if (query.get("orderBy") or [""])[0] == "lastUpdated asc":
            rows.sort(key=lambda t: t["_info"]["lastUpdated"])
        page = int((query.get("page") or ["1"])[0])
        size = min(1000, int((query.get("pageSize") or ["25"])[0]))
        chunk = rows[(page - 1) * size : page * size]
        headers = {}
        last = max(1, -(-len(rows) // size))
        if page < last:
            base = {k: v[0] for k, v in query.items()}
            links = [
                f'<{self.url}{PREFIX}/service/tickets?{urlencode(base | {"page": page + 1})}>; rel="next"',
                f'<{self.url}{PREFIX}/service/tickets?{urlencode(base | {"page": last})}>; rel="last"',
            ]
            headers["Link"] = ", ".join(links)
        return 200, chunk, headers


def _status(name: str) -> dict[str, Any]:
    return {"id": STATUSES.index(name) + 1 if name in STATUSES else 0, "name": name, "_info": {}}


def _error(code: str, message: str) -> dict[str, Any]:
    return {"code": code, "message": message, "errors": None}


def _matches(ticket: dict[str, Any], clause: str) -> bool:
    if m := re.fullmatch(r"board/id\s*=\s*(\d+)", clause):
        return ticket["board"]["id"] == int(m.group(1))
    if m := re.fullmatch(r'summary like "(.*)"', clause):
        pattern = "^" + re.escape(m.group(1)).replace("%", ".*").replace(r"\*", ".*") + "$"
        return re.match(pattern, ticket["summary"]) is not None
    if m := re.fullmatch(r"lastUpdated\s*(>=|>)\s*\[(.+)\]", clause):
        value = ticket["_info"]["lastUpdated"]
        return value >= m.group(2) if m.group(1) == ">=" else value > m.group(2)
    raise ValueError(f"condition not understood: {clause}")


@contextmanager
def running(standin: ConnectWiseStandIn) -> Iterator[str]:
    """Serve ``standin`` on a free loopback port; yields its site URL."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                status, payload, extra = standin.handle(self.command, self.path, headers, body)
            except ValueError as exc:
                status, payload, extra = 400, _error("InvalidObject", str(exc)), {}
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = _answer

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    standin.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield standin.url
    finally:
        server.shutdown()
        server.server_close()
