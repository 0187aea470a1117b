"""What a PSA (professional services automation tool) must do for the bridge, and which audit entries it hears of.

A PSA adapter (``integrations.connectwise``) implements :class:`Psa`; the bridge (``integrations.bridge``) reads
the ticket audit log, turns entries into operations with :func:`operations_for` (pure: no database, no clock,
no network) and sends them in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

# The actor our own changes carry when the PSA made them: they are never sent back to it.
PSA_ACTOR_PREFIX = "psa:"


class PsaError(Exception):
    """The PSA refused or could not be reached. ``retry``: worth trying again later (5xx, timeouts, 429)."""

    def __init__(self, message: str, *, retry: bool = True, status: int | None = None) -> None:
        super().__init__(message)
        self.retry = retry
        self.status = status


@dataclass(frozen=True)
class NewTicket:
    """What the PSA gets when one of our tickets is opened."""

    number: int
    summary: str
    description: str
    priority: str  # P1..P5
    client: str | None  # the directory client's name (mapped to the PSA's company)
    contact_email: str | None = None
    contact_phone: str | None = None
    contact_name: str | None = None


@dataclass(frozen=True)
class Change:
    """A ticket the PSA says changed: its id, its status name and when (the PSA's own lastUpdated)."""

    external_id: str
    status: str
    updated_at: datetime
    summary: str = ""


@dataclass(frozen=True)
class Operation:
    """One operation for the PSA, derived from one audit entry."""

    op: str  # create, note, status
    payload: dict[str, Any] = field(default_factory=dict)


class Psa(Protocol):
    """A PSA the bridge can mirror tickets into. Every method raises PsaError on failure."""

    name: str

    def find_ticket(self, number: int) -> str | None:
        """The PSA id of the ticket made earlier for our ``number``, if any (so a retry never makes a second)."""
        ...

    def create_ticket(self, ticket: NewTicket) -> str:
        """Create the ticket; its PSA id."""
        ...

    def add_note(self, external_id: str, text: str) -> None:
        """Add a note to the PSA ticket."""
        ...

    def update_status(self, external_id: str, status: str) -> None:
        """Set the PSA ticket's status from ours (the adapter maps our status word to its own)."""
        ...

    def changes_since(self, since: datetime | None) -> Sequence[Change]:
        """Tickets changed in the PSA after ``since`` (all pages), oldest first."""
        ...

    def ticket(self, external_id: str) -> Change:
        """One PSA ticket as it is now (a callback names a ticket; the bridge reads it itself)."""
        ...

    def our_status(self, name: str) -> str | None:
        """Our status word for the PSA's status ``name``, or None when it maps to none."""
        ...


# Audit actions whose entry becomes a note; the bridge writes the note's text from the ticket when it sends it
# (the transcript may be long: the audit detail keeps only what changed).
NOTE_ACTIONS = {
    "transcribed": "transcript",
    "transcript translated": "translation",
    "transcript corrected": "transcript",
    "portal triage": "triage",
    "recording attached": "recording",
    "reply to client": "reply",
    "client message": "client message",
}
STATUS_ACTIONS = {"status changed", "waiting on client", "resumed"}


def operations_for(action: str, actor: str, detail: dict[str, Any]) -> list[Operation]:
    """The operations one audit entry asks of the PSA (none for most entries, and none for the PSA's own)."""
    if actor.startswith(PSA_ACTOR_PREFIX):
        return []  # it came from the PSA: sending it back would echo for ever
    if action == "created":
        return [Operation("create")]
    if action in NOTE_ACTIONS:
        return [Operation("note", {"what": NOTE_ACTIONS[action], "detail": _plain(detail)})]
    if action in STATUS_ACTIONS:
        return [Operation("status")]  # the bridge sends the ticket's status as it is when the operation goes
    return []


def _plain(detail: dict[str, Any]) -> dict[str, Any]:
    """The detail's JSON-safe scalars (an operation's payload is stored as JSON)."""
    return {k: v for k, v in detail.items() if isinstance(v, str | int | float | bool) or v is None}
