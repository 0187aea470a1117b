"""Merging tickets never lets one client's (or one colleague's) later messages show to another in the portal."""

from __future__ import annotations

import io
from collections.abc import Callable

from sqlalchemy import select

from runtime import Runtime
from tests.web.conftest import Console
from tests.web.portal.conftest import PortalClient
from ticketing import lifecycle
from ticketing.db import transaction
from ticketing.models import AuditEntry, Status, Ticket, TicketAttachment

Make = Callable[[str | None], PortalClient]


def _state(runtime: Runtime, number: int) -> tuple[str, int | None, list[str]]:
    with runtime.sessions() as s:
        t = lifecycle.get_ticket(s, number)
        actions = s.scalars(select(AuditEntry.action).where(AuditEntry.ticket_id == t.id)).all()
        return t.status, t.merged_into_id, list(actions)


def test_the_console_refuses_to_merge_one_clients_ticket_into_another_clients_and_nothing_changes(
    console: Console, portal_client: Make, client_ticket: Callable[..., int], portal_runtime: Runtime
) -> None:
    acme = client_ticket("dana", "Printer offline")
    harbor = client_ticket("priya", "Scanner offline")
    before = (_state(portal_runtime, acme), _state(portal_runtime, harbor))
    page = console.get(f"/tickets/{acme}").get_data(as_text=True)
    assert f'<option value="{harbor}">' not in page  # never offered
    refused = console.post(f"/tickets/{acme}/merge", {"into": str(harbor), "reason": "same issue"})
    text = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert "tickets of different clients are never merged" in text and "Acme Dental" in text
    assert (_state(portal_runtime, acme), _state(portal_runtime, harbor)) == before

    # Dana's later reply and file stay with Acme: Priya's portal never shows them.
    dana = portal_client("dana")
    replied = dana.post(
        f"/portal/tickets/{acme}/reply",
        {"text": "Serial number ACME-SECRET-42", "attachments": (io.BytesIO(b"acme payroll"), "payroll.txt")},
        content_type="multipart/form-data",
    )
    assert replied.status_code == 303
    priya = portal_client("priya")
    shown = priya.get("/portal/").get_data(as_text=True) + priya.get(f"/portal/tickets/{harbor}").get_data(as_text=True)
    assert "ACME-SECRET-42" not in shown and "payroll.txt" not in shown
    assert priya.get(f"/portal/tickets/{acme}").status_code == 404


def test_a_ticket_is_not_merged_into_a_colleagues_own_ticket_who_could_not_see_it(
    console: Console, client_ticket: Callable[..., int], portal_runtime: Runtime
) -> None:
    danas = client_ticket("dana", "Nobody can print")
    luis = client_ticket("luis", "Front desk printer is dead")
    refused = console.post(f"/tickets/{danas}/merge", {"into": str(luis)})
    assert refused.status_code == 400 and "Luis Ortega&#39;s own ticket" in refused.get_data(as_text=True)
    assert _state(portal_runtime, danas)[:2] == (Status.NEW.value, None)
    # The other way round is fine: Dana, the primary contact, already sees every Acme ticket.
    assert console.post(f"/tickets/{luis}/merge", {"into": str(danas)}).status_code == 303
    assert _state(portal_runtime, luis)[0] == Status.CLOSED.value


def test_a_reply_on_a_ticket_merged_across_clients_before_the_rule_stays_with_its_own_client(
    portal_client: Make, client_ticket: Callable[..., int], portal_runtime: Runtime
) -> None:
    acme = client_ticket("dana", "Printer offline")
    harbor = client_ticket("priya", "Scanner offline")
    with transaction(portal_runtime.sessions) as s:
        # What the console did before merges across clients were refused.
        t = lifecycle.get_ticket(s, acme)
        t.merged_into_id = lifecycle.get_ticket(s, harbor).id
        t.status = Status.CLOSED.value
    replied = portal_client("dana").post(
        f"/portal/tickets/{acme}/reply",
        {"text": "Serial number ACME-SECRET-42", "attachments": (io.BytesIO(b"acme payroll"), "payroll.txt")},
        content_type="multipart/form-data",
    )
    assert replied.status_code == 303
    with portal_runtime.sessions() as s:
        harbor_id = lifecycle.get_ticket(s, harbor).id
        assert s.scalars(select(TicketAttachment).where(TicketAttachment.ticket_id == harbor_id)).all() == []
        follow_up = s.scalars(select(Ticket).where(Ticket.id > harbor_id)).one()
        assert follow_up.client_id is not None and follow_up.client.name == "Acme Dental"
    priya = portal_client("priya")
    shown = priya.get("/portal/").get_data(as_text=True) + priya.get(f"/portal/tickets/{harbor}").get_data(as_text=True)
    assert "ACME-SECRET-42" not in shown and "payroll.txt" not in shown
