"""What the console's pages share: role groups, form fields, the ticket lookup, stored files, the hand-off to workers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from flask import abort
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from runtime import Runtime
from ticketing import accounts, lifecycle, paging
from ticketing.errors import DomainError, UnknownTicket
from ticketing.models import Ticket, User
from ticketing.oncall import OnCall

TRIAGE = (accounts.COORDINATOR, accounts.ADMIN)


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
        return lifecycle.get_ticket(session, number, for_update=for_update)
    except UnknownTicket:
        abort(404, description=f"No ticket {number}.")


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


def _sentence(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, KeyError):
        text = f"unknown {text}"
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."
