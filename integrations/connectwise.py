"""The ConnectWise PSA (Manage) adapter: service tickets, their notes and statuses over its REST API (3.0).

Configuration comes from one TOML file (``CONNECTWISE_FILE``, kept with the other secrets): the site, the
credentials, the board, and the mappings (our clients to its companies, P1-P5 to its priorities, our status
words to its status names). The credentials go in the Authorization header only: never in a log line, an
exception or a page (``ConnectWiseConfig``'s repr hides them).
"""

from __future__ import annotations

import base64
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from integrations.psa import Change, NewTicket, PsaError

NAME = "connectwise"
API_PATH = "/v4_6_release/apis/3.0"
ACCEPT = "application/vnd.connectwise.com+json; version=2022.1"
PAGE_SIZE = 100
# Our ticket number leads the PSA ticket's summary, so a retry finds the ticket an earlier attempt made.
SUMMARY_TAG = "#{number}"
DEFAULT_STATUSES = {
    "new": "New",
    "acknowledged": "Acknowledged",
    "in progress": "In Progress",
    "waiting on client": "Waiting on Client",
    "resolved": "Resolved",
    "closed": "Closed",
}


class ConfigError(ValueError):
    """The ConnectWise file is missing a value or has a wrong one."""


@dataclass(frozen=True)
class ConnectWiseConfig:
    """Where ConnectWise is, how to sign in, and how our words map to its records."""

    site: str  # https://na.myconnectwise.net (the API path is added)
    company: str = field(repr=False)
    public_key: str = field(repr=False)
    private_key: str = field(repr=False)
    client_id: str = field(repr=False)
    board_id: int = 0
    companies: Mapping[str, int] = field(default_factory=dict)  # directory client name -> company id
    default_company_id: int | None = None  # tickets of unknown callers (ConnectWise's catch-all company)
    priorities: Mapping[str, int] = field(default_factory=dict)  # P1..P5 -> priority id
    statuses: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_STATUSES))  # ours -> its name
    callback_secret: str = field(default="", repr=False)  # the secret path segment of the callback URL
    timeout: float = 10.0

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every value that must never appear in a log (the tests look for each)."""
        return tuple(
            s for s in (self.public_key, self.private_key, self.client_id, self.callback_secret, self.auth) if s
        )

    @property
    def auth(self) -> str:
        """The Authorization header: Basic base64(company+publicKey:privateKey)."""
        raw = f"{self.company}+{self.public_key}:{self.private_key}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def our_status(self, name: str) -> str | None:
        """Our status word for ConnectWise's status ``name`` (case-insensitive), or None when unmapped."""
        for ours, theirs in self.statuses.items():
            if theirs.casefold() == name.strip().casefold():
                return ours
        return None


def load_config(path: Path) -> ConnectWiseConfig:
    """Read the ConnectWise file; ConfigError names the first problem (never a secret's value)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {type(exc).__name__}") from None
    return config_from(data)


def config_from(data: Mapping[str, Any]) -> ConnectWiseConfig:
    """A config from the parsed file."""
    for key in ("site", "company", "public_key", "private_key", "client_id", "board_id"):
        if not data.get(key):
            raise ConfigError(f"connectwise: {key} is required")
    site = str(data["site"]).rstrip("/")
    if not site.startswith(("https://", "http://")):
        raise ConfigError("connectwise: site must be an http(s) URL")
    priorities = {str(k).upper(): int(v) for k, v in dict(data.get("priorities", {})).items()}
    if bad := sorted(set(priorities) - {"P1", "P2", "P3", "P4", "P5"}):
        raise ConfigError(f"connectwise: unknown priorities {', '.join(bad)}")
    statuses = dict(DEFAULT_STATUSES) | {str(k): str(v) for k, v in dict(data.get("statuses", {})).items()}
    if bad := sorted(set(statuses) - set(DEFAULT_STATUSES)):
        raise ConfigError(f"connectwise: unknown statuses {', '.join(bad)}")
    return ConnectWiseConfig(
        site=site,
        company=str(data["company"]),
        public_key=str(data["public_key"]),
        private_key=str(data["private_key"]),
        client_id=str(data["client_id"]),
        board_id=int(data["board_id"]),
        companies={str(k): int(v) for k, v in dict(data.get("companies", {})).items()},
        default_company_id=int(data["default_company_id"]) if data.get("default_company_id") else None,
        priorities=priorities,
        statuses=statuses,
        callback_secret=str(data.get("callback_secret", "")),
        timeout=float(data.get("timeout", 10.0)),
    )


def parse_time(text: str) -> datetime:
    """ConnectWise's ``_info.lastUpdated`` (``2026-12-07T14:48:55Z``) as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def condition_time(at: datetime) -> str:
    """A time as ConnectWise's conditions write it: ``[2026-12-07T14:48:55Z]``."""
    return "[" + at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") + "]"


def _next_link(header: str | None) -> str | None:
    """The rel="next" URL of a Link header, if any."""
    for part in (header or "").split(","):
        match = re.match(r'\s*<([^>]+)>\s*;\s*rel="?next"?', part)
        if match:
            return match.group(1)
    return None


class ConnectWise:
    """The ConnectWise Manage REST client the bridge uses (``integrations.psa.Psa``)."""

    name = NAME

    def __init__(self, config: ConnectWiseConfig, session: requests.Session | None = None) -> None:
        self.config = config
        self.base = config.site + API_PATH
        self.http = session or requests.Session()

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {
            "Authorization": self.config.auth,
            "clientId": self.config.client_id,
            "Accept": ACCEPT,
            "Content-Type": "application/json",
        }
        url = path if path.startswith("http") else self.base + path
        try:
            response = self.http.request(method, url, headers=headers, timeout=self.config.timeout, **kwargs)
        except requests.RequestException as exc:
            raise PsaError(f"ConnectWise {method} {path}: {type(exc).__name__}") from None
        if response.status_code >= 400:
            raise PsaError(
                f"ConnectWise {method} {path}: {response.status_code} {_error_text(response)}",
                retry=response.status_code in (408, 409, 429) or response.status_code >= 500,
                status=response.status_code,
            )
        return response

    def find_ticket(self, number: int) -> str | None:
        """The ticket on our board whose summary starts with our number's tag."""
        tag = SUMMARY_TAG.format(number=number)
        conditions = f'board/id = {self.config.board_id} and summary like "{tag} %"'
        found = self._request("GET", "/service/tickets", params={"conditions": conditions, "pageSize": 1}).json()
        return str(found[0]["id"]) if found else None

    def create_ticket(self, ticket: NewTicket) -> str:
        """POST /service/tickets: the service ticket on the configured board."""
        company = self.config.companies.get(ticket.client or "", self.config.default_company_id)
        if company is None:
            raise PsaError(f"client {ticket.client or '(unknown caller)'} has no ConnectWise company", retry=False)
        body: dict[str, Any] = {
            "summary": f"{SUMMARY_TAG.format(number=ticket.number)} {ticket.summary}"[:100],
            "board": {"id": self.config.board_id},
            "company": {"id": company},
            "initialDescription": ticket.description or ticket.summary,
        }
        if ticket.priority in self.config.priorities:
            body["priority"] = {"id": self.config.priorities[ticket.priority]}
        if ticket.contact_name:
            body["contactName"] = ticket.contact_name[:62]
        if ticket.contact_email:
            body["contactEmailAddress"] = ticket.contact_email[:250]
        if ticket.contact_phone:
            body["contactPhoneNumber"] = ticket.contact_phone[:20]
        return str(self._request("POST", "/service/tickets", json=body).json()["id"])

    def add_note(self, external_id: str, text: str) -> None:
        """POST /service/tickets/{id}/notes, shown in the ticket's discussion."""
        body = {"text": text, "detailDescriptionFlag": True, "internalAnalysisFlag": False, "resolutionFlag": False}
        self._request("POST", f"/service/tickets/{int(external_id)}/notes", json=body)

    def update_status(self, external_id: str, status: str) -> None:
        """PATCH /service/tickets/{id} with a JSON Patch ``replace`` of its status (by name)."""
        name = self.config.statuses.get(status)
        if name is None:
            raise PsaError(f"our status {status!r} has no ConnectWise status", retry=False)
        ops = [{"op": "replace", "path": "status", "value": {"name": name}}]
        self._request("PATCH", f"/service/tickets/{int(external_id)}", json=ops)

    def our_status(self, name: str) -> str | None:
        """Our status word for a ConnectWise status name (the configured mapping)."""
        return self.config.our_status(name)

    def ticket(self, external_id: str) -> Change:
        """GET /service/tickets/{id}: its status now (a callback names the ticket; we read it ourselves)."""
        return _change(self._request("GET", f"/service/tickets/{int(external_id)}").json())

    def changes_since(self, since: datetime | None) -> Sequence[Change]:
        """GET /service/tickets on our board updated after ``since``, following the Link header's next pages."""
        conditions = f"board/id = {self.config.board_id}"
        if since is not None:
            conditions += f" and lastUpdated >= {condition_time(since)}"  # same second: applied twice, harmlessly
        params: dict[str, Any] | None = {
            "conditions": conditions,
            "orderBy": "lastUpdated asc",
            "fields": "id,summary,status,_info",
            "page": 1,
            "pageSize": PAGE_SIZE,
        }
        url: str | None = "/service/tickets"
        changes: list[Change] = []
        while url is not None:
            response = self._request("GET", url, params=params)
            changes += [_change(row) for row in response.json()]
            url, params = _next_link(response.headers.get("Link")), None  # the next link carries its query
        return sorted(changes, key=lambda c: c.updated_at)


def _change(row: Mapping[str, Any]) -> Change:
    return Change(
        external_id=str(row["id"]),
        status=str((row.get("status") or {}).get("name", "")),
        updated_at=parse_time(str(row["_info"]["lastUpdated"])),
        summary=str(row.get("summary", "")),
    )


def _error_text(response: requests.Response) -> str:
    """ConnectWise's error body ``{"code", "message", "errors": [{"code", "message", "field"}]}`` in one line."""
    try:
        body = response.json()
    except ValueError:
        return response.reason or ""
    if not isinstance(body, dict):
        return response.reason or ""
    parts = [f"{body.get('code', '')}: {body.get('message', '')}".strip(": ")]
    for error in body.get("errors") or []:
        if isinstance(error, dict):
            parts.append(f"{error.get('field') or error.get('resource') or ''} {error.get('message', '')}".strip())
    return "; ".join(p for p in parts if p)[:500]
