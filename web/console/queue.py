"""The queue: open tickets with live SLA countdowns, filters, sort and search; the home page and the ticket-number box."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Response, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session

import languages
from runtime import Runtime
from ticketing.models import OPEN_STATUSES, Client, Status
from ticketing.priority import Priority
from ticketing.queue import ENDED_LIMIT, QueueFilter, breached_among, find_tickets
from web.console import present
from web.console.auth import blueprint, rt
from web.console.shared import _assignee_names

UNASSIGNED = "(unassigned)"


SORTS = {
    "due": "next due",
    "priority": "priority, then first come first served",
    "age": "oldest first",
}
ENDED = "ended"  # resolved or closed
ENDED_STATUSES = (Status.RESOLVED.value, Status.CLOSED.value)
STATUS_CHOICES = OPEN_STATUSES + ENDED_STATUSES + (ENDED, "all")


@dataclass(frozen=True)
class QueueQuery:
    """The queue's filters, sort and search as chosen in the URL, and what was wrong with them."""

    filters: QueueFilter
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
    filters = QueueFilter(
        priority=priority,
        status=status,
        client_id=client_id,
        assignee=None if unassigned else chosen["assignee"] or None,
        breached_at=now if chosen["breached"] in ("1", "on", "true") else None,
        language=language,
    )
    return QueueQuery(filters, chosen, unassigned, tuple(errors), sort, statuses, chosen["q"])


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
    tickets = find_tickets(
        session, query.filters, statuses=query.statuses, text=query.text, unassigned=query.unassigned
    )
    rows = present.ticket_views(session, tickets, runtime.policy, now)
    if query.open_only:
        rows = sort_views(rows, query.sort)
    counts = {
        "shown": len(rows),
        "breached": len(breached_among(session, tickets, now)),
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
