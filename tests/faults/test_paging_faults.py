"""P1 paging on the real stack when Twilio is down, and under a flood of withheld-number P1 calls."""

from __future__ import annotations

import time

from ivr.simulate import CallPlan
from testing.stack import Caller, Stack, wait_until
from testing.twilio_server import TwilioTestServer
from tests.faults.conftest import new_number
from tests.faults.test_faults import acknowledge, assert_caller_served, deliver

STEP_SECONDS = 6.0  # the fault stack's on-call file: 0.1 minute per step
WITHHELD = ["anonymous", "+266696687", "+7378742833", "Restricted", "unknown"]


def test_twilio_down_for_the_whole_first_step_then_back_pages_on_time_and_the_ack_arrives(
    stack: Stack, caller: Caller, twilio_api: TwilioTestServer
) -> None:
    twilio_api.fail_next("/Messages.json", status=503, count=100_000)  # Twilio's REST API is down
    twilio_api.fail_next("/Calls.json", status=503, count=100_000)
    try:
        number = new_number()
        result = caller.call(number, CallPlan(keys=["2"], audio=None))
        assert_caller_served(caller.exchanges_of(result.call_sid))
        (ticket,) = stack.tickets_of_caller(number)
        started = time.monotonic()
        wait_until(
            lambda: {p.state for p in stack.pages(ticket.number) if p.position == 0} == {"retrying"},
            15,
            "the first step's pages to wait for Twilio",
            every=0.1,
        )
        time.sleep(2.0)  # more retries fail meanwhile: no step is skipped
        assert "escalated early" not in stack.audit(ticket.number)
        assert {p.position for p in stack.pages(ticket.number)} == {0}

        wait_until(lambda: any(p.position == 1 for p in stack.pages(ticket.number)), 30, "step 2", every=0.1)
        assert time.monotonic() - started >= STEP_SECONDS - 2.5, "step 2 was paged before the first step's wait"
        # retried with backoff (5-10 s, then the sweeper's next pass), beyond the immediate tries
        wait_until(
            lambda: max(p.tries for p in stack.pages(ticket.number) if p.position == 0) > 3,
            20,
            "a retry of the first step's pages",
            every=0.2,
        )
        assert {p.state for p in stack.pages(ticket.number)} <= {"retrying", "claimed"}  # none sent, none failed
        assert "nobody reached" in stack.audit(ticket.number)
    finally:
        twilio_api.clear_faults()  # Twilio is back

    wait_until(
        lambda: any(p.state == "sent" and p.channel == "sms" for p in stack.pages(ticket.number)),
        20,
        "a page to go out once Twilio is back",
        every=0.1,
    )
    sent = next(p for p in stack.pages(ticket.number) if p.state == "sent" and p.channel == "sms")
    deliver(caller, twilio_api, sent.id)
    wait_until(lambda: "page delivered" in stack.audit(ticket.number), 10, "the delivery to be recorded", every=0.1)
    acknowledge(caller, twilio_api, ticket.number)
    escalation = stack.escalation(ticket.number)
    assert escalation is not None and escalation.acknowledged_at is not None
    # Each page reached Twilio once it answered: no duplicate sends of one page row.
    for page in stack.pages(ticket.number):
        ok = [
            r
            for r in twilio_api.requests
            if f"page={page.id}" in (r.param("StatusCallback") or "") and r.status in (200, 201)
        ]
        assert len(ok) <= 1, (page.person, page.channel, len(ok))


def test_a_flood_of_withheld_number_p1_calls_makes_every_ticket_and_one_escalation(
    stack: Stack, caller: Caller, twilio_api: TwilioTestServer
) -> None:
    from sqlalchemy import select

    from ticketing.models import Escalation, EscalationJoin, Ticket

    before = {t.id for t in _withheld_tickets(stack)}
    calls = [caller.call(WITHHELD[i % len(WITHHELD)], CallPlan(keys=["2"], audio=None)) for i in range(15)]
    for call in calls:
        assert_caller_served(caller.exchanges_of(call.call_sid))
    tickets = stack.tickets_of_calls([c.call_sid for c in calls])
    assert len(tickets) == 15 and all(t.priority == "P1" for t in tickets)

    def settled() -> bool:
        with stack.session() as s:
            ids = [t.id for t in tickets]
            started = s.scalars(select(Escalation.ticket_id).where(Escalation.ticket_id.in_(ids))).all()
            joined = s.scalars(select(EscalationJoin.ticket_id).where(EscalationJoin.ticket_id.in_(ids))).all()
            return len(started) + len(joined) == 15

    wait_until(settled, 60, "every P1 to start or join paging", every=0.2)
    with stack.session() as s:
        ids = [t.id for t in tickets]
        started = s.scalars(select(Escalation).where(Escalation.ticket_id.in_(ids))).all()
        fresh = [e for e in started if e.ticket_id not in before]
    # An escalation from withheld numbers may already be open from another test: then all 15 join it.
    assert len(fresh) <= 1
    time.sleep(1.0)
    page_calls = [r for r in twilio_api.requests if r.path.endswith("/Calls.json")]
    texts = [r for r in twilio_api.requests if r.path.endswith("/Messages.json")]
    assert len(page_calls) <= 1, "one page call, not one per call"
    assert len(texts) <= 1 + 2  # the page, and one "another call" text per two minutes
    with stack.session() as s:
        for t in s.scalars(select(Ticket).where(Ticket.id.in_(ids))).all():
            assert t.status in ("new", "acknowledged")
    main = fresh[0] if fresh else None
    if main is not None:
        with stack.session() as s:
            number = s.get(Ticket, main.ticket_id).number  # type: ignore[union-attr]
        acknowledge(caller, twilio_api, number)


def _withheld_tickets(stack: Stack) -> list:  # type: ignore[type-arg]
    from sqlalchemy import select

    from ticketing.models import Ticket

    with stack.session() as s:
        return list(s.scalars(select(Ticket).where(Ticket.caller_number.in_(WITHHELD))).all())
