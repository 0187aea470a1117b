"""The stand-in's answers parse with pyconnectwise's models (generated from ConnectWise's own API schema)."""

from __future__ import annotations

import warnings

import requests

from integrations.connectwise import ACCEPT, API_PATH
from integrations.psa import NewTicket
from tests.integrations.conftest import Bridge

with warnings.catch_warnings():
    # Its generated models still use pydantic 1's Field(example=...): deprecation warnings only.
    warnings.simplefilter("ignore", DeprecationWarning)
    from pyconnectwise.models.manage import ServiceTicketNote, Ticket


def _get(bridge: Bridge, path: str) -> requests.Response:
    headers = {"Authorization": bridge.config.auth, "clientId": bridge.config.client_id, "Accept": ACCEPT}
    return requests.get(bridge.standin.url + API_PATH + path, headers=headers, timeout=5)


def test_tickets_and_notes_parse_as_connectwise_models(connectwise: Bridge) -> None:
    psa = connectwise.psa
    external = psa.create_ticket(
        NewTicket(400001, "Printer offline", "Room 4", "P2", "Acme Dental", contact_email="dana@acme.example")
    )
    psa.add_note(external, "Voicemail transcript:\nThe printer is jammed.")
    psa.update_status(external, "in progress")
    ticket = Ticket.model_validate(_get(connectwise, f"/service/tickets/{external}").json())
    assert ticket.id == int(external) and ticket.summary == "#400001 Printer offline"
    assert ticket.board is not None and ticket.board.id == 7
    assert ticket.company is not None and ticket.company.id == 250
    assert ticket.priority is not None and ticket.priority.id == 2
    assert ticket.status is not None and ticket.status.name == "In Progress"
    assert ticket.contact_email_address == "dana@acme.example" and ticket.initial_description == "Room 4"
    listed = [Ticket.model_validate(row) for row in _get(connectwise, "/service/tickets?pageSize=10").json()]
    assert [t.id for t in listed] == [int(external)]
    notes = [
        ServiceTicketNote.model_validate(n) for n in _get(connectwise, f"/service/tickets/{external}/notes").json()
    ]
    assert [(n.text, n.detail_description_flag, n.internal_analysis_flag) for n in notes] == [
        ("Voicemail transcript:\nThe printer is jammed.", True, False)
    ]


def test_errors_have_connectwise_shape(connectwise: Bridge) -> None:
    missing = _get(connectwise, "/service/tickets/424242")
    assert missing.status_code == 404 and set(missing.json()) == {"code", "message", "errors"}
    stranger = requests.get(connectwise.standin.url + API_PATH + "/service/tickets", timeout=5)
    assert stranger.status_code == 401 and stranger.json()["code"] == "Unauthorized"
