"""A ticket's SLA milestones: their due times from the policy, their states, the next one due."""

from __future__ import annotations

from datetime import datetime, timedelta

from ticketing.models import Milestone, Ticket
from ticketing.policy import SupportPolicy
from ticketing.sla import Pause, deadlines, milestone_state


def pauses_of(ticket: Ticket) -> list[Pause]:
    """The ticket's 'waiting on client' intervals as domain values."""
    return [Pause(p.started_at, p.ended_at) for p in ticket.pauses]


def recompute_milestones(ticket: Ticket, policy: SupportPolicy) -> None:
    """Set the due time of every unmet milestone from the opening time, priority, pauses and extensions."""
    due = deadlines(
        ticket.priority,
        ticket.opened_at,
        policy,
        pauses=pauses_of(ticket),
        extension=timedelta(seconds=ticket.sla_extension_seconds or 0),
    ).as_dict()
    for m in ticket.milestones:
        if m.met_at is None:
            m.due_at = due[m.name]


def milestone_states(ticket: Ticket, policy: SupportPolicy, now: datetime) -> dict[str, str]:
    """Each milestone's state (met, breached, at risk, ...) at ``now``."""
    target = policy.target(ticket.priority)
    return {
        m.name: milestone_state(
            m.due_at,
            m.met_at,
            now,
            target.for_milestone(m.name),
            paused=ticket.paused_at is not None,
            at_risk_fraction=policy.at_risk_fraction,
        )
        for m in ticket.milestones
    }


def next_milestone(ticket: Ticket) -> Milestone | None:
    """The earliest unmet milestone that has a due time."""
    pending = [m for m in ticket.milestones if m.met_at is None and m.due_at is not None]
    return min(pending, key=lambda m: m.due_at) if pending else None  # type: ignore[arg-type,return-value]
