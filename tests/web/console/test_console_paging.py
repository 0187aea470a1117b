"""The console's paging panel: "N of M pages delivered", "nobody reached", Page again and Escalate now."""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy import select

from runtime import Runtime
from tests.conftest import FixedClock
from tests.web.conftest import Console
from ticketing import paging
from ticketing.db import transaction
from ticketing.models import AuditEntry, Escalation, Ticket
from ticketing.sla import calendar_for


def paged_nobody_reached(runtime: Runtime, clock: FixedClock, number: int) -> None:
    """Step 1 paged (nothing delivered), its wait passes, step 2 paged: the ticket is 'nobody reached'."""
    oncall = paging.oncall_from(runtime.settings.oncall_file)
    with transaction(runtime.sessions) as s:
        t = s.scalars(select(Ticket).where(Ticket.number == number)).one()
        esc = paging.start_escalation(s, t, oncall=oncall, calendar=calendar_for(runtime.policy), now=clock())
        paging.claim_step(s, t, esc, 0, oncall=oncall, now=clock())
    clock.advance(minutes=6)
    with transaction(runtime.sessions) as s:
        t = s.scalars(select(Ticket).where(Ticket.number == number)).one()
        esc = paging.escalation_of(s, t)
        assert esc is not None
        if paging.claim_step(s, t, esc, 1, oncall=oncall, now=clock()) is None:
            esc.next_due_at = clock()
            paging.claim_step(s, t, esc, 1, oncall=oncall, now=clock())


def actions(runtime: Runtime, number: int) -> list[str]:
    with runtime.sessions() as s:
        return list(
            s.scalars(select(AuditEntry.action).join(Ticket).where(Ticket.number == number).order_by(AuditEntry.id))
        )


def test_a_p1_nobody_was_reached_for_is_red_on_the_ticket_the_queue_and_the_api(
    console: Console, runtime: Runtime, clock: FixedClock, open_ticket: Callable[..., int], api_token: str
) -> None:
    number = open_ticket("2026-11-18 09:58", priority="P1", source="voicemail")
    paged_nobody_reached(runtime, clock, number)

    page = console.get(f"/tickets/{number}").get_data(as_text=True)
    assert "Paging failed — nobody reached" in page and re.search(r"0 of \d+ pages delivered", page)
    assert "Page again" in page
    queue = console.get("/queue").get_data(as_text=True)
    assert "Paging failed — nobody reached" in queue and re.search(r"0 of \d+ pages delivered", queue)
    assert "fallback" not in queue  # nothing was sent to the fallback
    api = console.client.get(f"/api/tickets/{number}", headers={"Authorization": f"Bearer {api_token}"}).get_json()
    assert api["paging"]["nobody_reached"] is True and api["paging"]["state"] == "unreached"
    assert api["paging"]["pages_delivered"] == 0 and api["paging"]["pages"] >= 2
    assert "nobody reached" in actions(runtime, number)


def test_page_again_and_escalate_now_are_audited_and_need_the_form_token(
    console: Console, runtime: Runtime, clock: FixedClock, open_ticket: Callable[..., int]
) -> None:
    number = open_ticket("2026-11-18 09:58", priority="P1", source="voicemail")
    paged_nobody_reached(runtime, clock, number)

    forged = console.client.post(f"/tickets/{number}/page-again")
    assert forged.status_code == 400  # no CSRF token
    assert "page again" not in actions(runtime, number)

    assert console.post(f"/tickets/{number}/escalate-now").status_code == 303
    with runtime.sessions() as s:
        esc = s.scalars(select(Escalation)).one()
        assert esc.next_due_at == clock()
    assert console.post(f"/tickets/{number}/page-again").status_code == 303
    with runtime.sessions() as s:
        esc = s.scalars(select(Escalation)).one()
        assert (esc.next_position, esc.cycle, esc.state) == (0, 1, "paging")
    done = actions(runtime, number)
    assert "escalated now" in done and "page again" in done
