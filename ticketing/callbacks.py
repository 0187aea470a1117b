"""A place in line: callers who asked the next free coordinator to call them back, first come, first served.

The ticket is an ordinary voicemail ticket (its status and SLA clocks are a voicemail's, as the policy says);
its ``CallbackRequest`` puts it in the line. A call back rings the coordinator's phone first, then the caller;
a connected one is the ticket's first response; after ``MAX_ATTEMPTS`` that did not reach the caller the
request leaves the line and the ticket stays an ordinary voicemail ticket, with a note.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, joinedload

from ticketing import lifecycle
from ticketing.audit import audit
from ticketing.models import OPEN_STATUSES, CallbackRequest, Status, Ticket

SYSTEM = "support line"
WAITING = "waiting"  # in line
CALLING = "calling"  # a coordinator's call back is under way
CONNECTED = "connected"  # the caller was reached: out of the line
GIVEN_UP = "voicemail"  # MAX_ATTEMPTS calls did not reach the caller: an ordinary voicemail ticket now
IN_LINE = (WAITING, CALLING)
MAX_ATTEMPTS = 2

# How a call back ended, in the domain's words (providers.twilio_status-like mapping is the adapter's).
OUTCOME_CONNECTED = "connected"
OUTCOME_NO_ANSWER = "no answer"
OUTCOME_MACHINE = "voicemail"
OUTCOME_COORDINATOR_MISSED = "coordinator did not answer"
OUTCOMES = (OUTCOME_CONNECTED, OUTCOME_NO_ANSWER, OUTCOME_MACHINE, OUTCOME_COORDINATOR_MISSED)


@dataclass(frozen=True)
class Waiting:
    """One callback in line, as the console lists it."""

    request: CallbackRequest
    place: int
    waited_seconds: int


def request_of(session: Session, ticket: Ticket) -> CallbackRequest | None:
    """The ticket's callback request, if the caller asked for one."""
    return session.scalar(select(CallbackRequest).where(CallbackRequest.ticket_id == ticket.id))


def join_line(session: Session, ticket: Ticket, now: datetime) -> int:
    """The caller pressed 1 to keep their place: the ticket joins the line (once); returns its place."""
    request = request_of(session, ticket)
    if request is None:
        request = CallbackRequest(ticket=ticket, requested_at=now, state=WAITING, attempts=0, updated_at=now)
        session.add(request)
        session.flush()
        place = place_of(session, request) or 1
        audit(session, ticket, actor=SYSTEM, action="callback requested", now=now, detail={"place": place})
        return place
    return place_of(session, request) or 0


def place_of(session: Session, request: CallbackRequest) -> int | None:
    """Its place in line (1 is next): first come, first served among open tickets' waiting callbacks."""
    if request.state not in IN_LINE:
        return None
    ahead = session.scalar(
        select(func.count(CallbackRequest.id))
        .join(Ticket, Ticket.id == CallbackRequest.ticket_id)
        .where(
            CallbackRequest.state.in_(IN_LINE),
            Ticket.status.in_(OPEN_STATUSES),
            Ticket.merged_into_id.is_(None),
            or_(
                CallbackRequest.requested_at < request.requested_at,
                and_(CallbackRequest.requested_at == request.requested_at, CallbackRequest.id < request.id),
            ),
        )
    )
    return int(ahead or 0) + 1


def line(session: Session, now: datetime) -> list[Waiting]:
    """The callbacks in line, first come first served, with how long each caller has waited."""
    rows = session.scalars(
        select(CallbackRequest)
        .join(Ticket, Ticket.id == CallbackRequest.ticket_id)
        .options(joinedload(CallbackRequest.ticket))
        .where(
            CallbackRequest.state.in_(IN_LINE),
            Ticket.status.in_(OPEN_STATUSES),
            Ticket.merged_into_id.is_(None),
        )
        .order_by(CallbackRequest.requested_at, CallbackRequest.id)
    ).all()
    return [
        Waiting(request=r, place=i, waited_seconds=max(0, int((now - r.requested_at).total_seconds())))
        for i, r in enumerate(rows, start=1)
    ]


def start_call_back(session: Session, ticket: Ticket, *, by: str, now: datetime) -> CallbackRequest | None:
    """Claim the next attempt of the ticket's call back for ``by``; None when one is already under way.

    One conditional UPDATE (waiting -> calling), so a double click or a replayed form starts one call.
    """
    request = request_of(session, ticket)
    if request is None or request.state != WAITING or not Status(ticket.status).is_open:
        return None
    claimed = session.execute(
        update(CallbackRequest)
        .where(CallbackRequest.id == request.id, CallbackRequest.state == WAITING)
        .values(state=CALLING, attempts=CallbackRequest.attempts + 1, coordinator=by[:120], updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    session.refresh(request)
    return request


def call_placed(session: Session, request: CallbackRequest, call_sid: str, now: datetime) -> None:
    """Twilio took the call to the coordinator's phone: its SID names the attempt in the status callbacks."""
    request.call_sid = call_sid
    request.updated_at = now
    audit(
        session,
        request.ticket,
        actor=request.coordinator or SYSTEM,
        action="call back started",
        now=now,
        detail={"attempt": request.attempts, "call_sid": call_sid},
    )


def call_not_placed(session: Session, request: CallbackRequest, reason: str, now: datetime) -> None:
    """Twilio refused the call: the attempt does not count and the caller keeps their place."""
    request.state = WAITING
    request.attempts = max(0, request.attempts - 1)
    request.updated_at = now
    audit(
        session,
        request.ticket,
        actor=request.coordinator or SYSTEM,
        action="call back failed to start",
        now=now,
        detail={"error": reason[:300]},
    )


def by_call(session: Session, call_sid: str) -> CallbackRequest | None:
    """The callback request whose attempt is the coordinator's call ``call_sid``."""
    return session.scalar(select(CallbackRequest).where(CallbackRequest.call_sid == call_sid))


def record_outcome(session: Session, request: CallbackRequest, outcome: str, now: datetime) -> bool:
    """How the attempt under way ended (once: a replayed status callback changes nothing); True if it was news.

    Connected: the first response (by the coordinator, "call back"), out of the line. The coordinator did not
    answer: the attempt does not count. No answer or a machine: a failed attempt; the second one takes the
    ticket out of the line as an ordinary voicemail ticket, with a note.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown call back outcome {outcome!r}")
    if request.state != CALLING:
        return False
    by = request.coordinator or SYSTEM
    ticket = request.ticket
    detail = {"outcome": outcome, "attempt": request.attempts, "call_sid": request.call_sid}
    audit(session, ticket, actor=by, action="call back ended", now=now, detail=detail)
    request.updated_at = now
    request.call_sid = None  # the next attempt is a new call; a late callback of this one is no longer news
    if outcome == OUTCOME_CONNECTED:
        request.state = CONNECTED
        lifecycle.first_response_by_person(session, ticket, by=by, how="call back", now=now)
    elif outcome == OUTCOME_COORDINATOR_MISSED:
        request.state = WAITING
        request.attempts = max(0, request.attempts - 1)
    elif request.attempts >= MAX_ATTEMPTS:
        request.state = GIVEN_UP
        lifecycle.add_note(
            session,
            ticket,
            f"Call back tried {request.attempts} times without reaching the caller: out of the line, "
            "an ordinary voicemail ticket now.",
            actor=SYSTEM,
            now=now,
        )
    else:
        request.state = WAITING
    return True
