"""Known incidents on the web: the console declares and ends them (CSRF, roles, one-line messages), the affected
clients' portal shows a banner, the public status page lists them without client, caller or ticket, and ending
one resolves the callers' tickets and tells each contact once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from sqlalchemy import select

from runtime import Runtime
from tests.web.conftest import Console
from tests.web.portal.conftest import (  # noqa: F401 - the portal's fixtures: its app, directory and clients
    Directory,
    PortalClient,
    app,
    directory,
    portal_client,
    portal_runtime,
)
from ticketing import lifecycle, outages, outbox
from ticketing.db import transaction
from ticketing.models import Client, KnownIncident, OutboxMessage, Ticket, TicketMessage

MESSAGE = "email is down for some clients since 7 am"


def incidents(runtime: Runtime) -> list[KnownIncident]:
    with runtime.sessions() as s:
        rows = list(s.scalars(select(KnownIncident).order_by(KnownIncident.id)))
        for row in rows:
            s.expunge(row)
        return rows


def caller_ticket(runtime: Runtime, incident_id: int, caller: str) -> int:
    """A caller's P3 joined to the incident, as pressing 1 leaves it."""
    with transaction(runtime.sessions) as s:
        t = lifecycle.open_ticket(
            s,
            policy=runtime.policy,
            now=runtime.now(),
            priority="P3",
            source="voicemail",
            actor="support line",
            caller_number=caller,
            notify=False,
        )
        outages.join(s, incident_id, t, now=runtime.now(), policy=runtime.policy)
        return int(t.number or 0)


def test_the_console_declares_a_known_incident_with_csrf_and_one_line_only(
    console: Console,
    portal_runtime: Runtime,  # noqa: F811
    directory: Directory,  # noqa: F811
    users: dict[str, str],
) -> None:
    form = {"message": MESSAGE, "clients": [str(directory.acme)]}
    # No CSRF token: refused, nothing declared.
    assert console.client.post("/events/incidents", data=form).status_code == 400
    for bad, why in (
        ("email is down\r\nCall 555-0100 now", "must be one line"),
        ("x" * 201, "at most 200 characters"),
        ("   ", "is required"),
    ):
        refused = console.post("/events/incidents", {**form, "message": bad})
        assert refused.status_code == 400 and why in refused.get_data(as_text=True)
    assert console.post("/events/incidents", {**form, "clients": "99999"}).status_code == 400
    assert console.post("/events/incidents", {**form, "parent": "12ab"}).status_code == 400
    assert incidents(portal_runtime) == []

    assert console.post("/events/incidents", form).status_code == 303
    (incident,) = incidents(portal_runtime)
    assert (incident.message, incident.client_ids, incident.declared_by) == (MESSAGE, [directory.acme], "Dana Reyes")
    with portal_runtime.sessions() as s:
        parent = s.get(Ticket, incident.parent_ticket_id)
        assert parent is not None and parent.summary == f"Known incident: {MESSAGE}"
        parent_number = parent.number
    page = console.get("/events").get_data(as_text=True)
    assert MESSAGE in page and "0 callers" in page and "Acme Dental" in page

    # An existing ticket as the parent; every caller when no client is ticked.
    assert (
        console.post("/events/incidents", {"message": "phones are down", "parent": str(parent_number)}).status_code
        == 303
    )
    assert incidents(portal_runtime)[-1].parent_ticket_id == incident.parent_ticket_id
    assert incidents(portal_runtime)[-1].client_ids == []

    # An engineer may not declare one, nor a stranger.
    eli = Console(console.client.application.test_client())
    eli.login("eli")
    assert eli.post("/events/incidents", form).status_code == 403
    stranger = console.client.application.test_client()
    assert stranger.post("/events/incidents", data=form).status_code in (302, 303, 400)
    assert len(incidents(portal_runtime)) == 2


def test_the_portal_shows_the_banner_to_the_affected_clients_contacts_only(
    console: Console,
    portal_runtime: Runtime,  # noqa: F811
    directory: Directory,  # noqa: F811
    portal_client: Callable[..., PortalClient],  # noqa: F811
) -> None:
    hostile = 'the <script>alert("x")</script> server is down'
    assert console.post("/events/incidents", {"message": hostile, "clients": [str(directory.acme)]}).status_code == 303
    dana = portal_client("dana").get("/portal/").get_data(as_text=True)
    assert "We are aware that the &lt;script&gt;alert(" in dana and "<script>alert" not in dana
    priya = portal_client("priya").get("/portal/").get_data(as_text=True)
    assert "We are aware" not in priya
    assert "We are aware" not in portal_client(None).get("/portal/sign-in").get_data(as_text=True)

    (incident,) = incidents(portal_runtime)
    assert console.post(f"/events/incidents/{incident.id}/end", {"notify": ""}).status_code == 303
    assert "We are aware" not in portal_client("dana").get("/portal/").get_data(as_text=True)


def test_the_status_page_lists_incidents_without_clients_callers_or_tickets(
    console: Console,
    portal_runtime: Runtime,  # noqa: F811
    directory: Directory,  # noqa: F811
    app: Flask,  # noqa: F811
) -> None:
    public = app.test_client()
    empty = public.get("/status")
    assert empty.status_code == 200 and "No known incidents" in empty.get_data(as_text=True)
    hostile = "the <b>portal</b> & email are slow"
    assert console.post("/events/incidents", {"message": hostile, "clients": [str(directory.acme)]}).status_code == 303
    (incident,) = incidents(portal_runtime)
    number = caller_ticket(portal_runtime, incident.id, "+18055550142")
    with portal_runtime.sessions() as s:
        parent = s.get(Ticket, incident.parent_ticket_id)
        assert parent is not None
        parent_number = str(parent.number)

    page = public.get("/status")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "public, max-age=60"
    assert "the &lt;b&gt;portal&lt;/b&gt; &amp; email are slow" in html and "<b>portal</b>" not in html
    for secret in ("Acme Dental", "Dana", "+18055550142", "805", parent_number, str(number), "Reyes"):
        assert secret not in html
    body = public.get("/status.json")
    assert body.headers["Cache-Control"] == "public, max-age=60"
    data = body.get_json()
    assert [i["message"] for i in data["active"]] == [hostile] and data["ended"] == []
    assert set(data["active"][0]) == {"message", "started", "updated", "ended"}
    assert data["active"][0]["updated"] >= data["active"][0]["started"]
    assert parent_number not in body.get_data(as_text=True) and "Acme" not in body.get_data(as_text=True)

    assert console.post(f"/events/incidents/{incident.id}/end", {"notify": ""}).status_code == 303
    data = public.get("/status.json").get_json()
    assert data["active"] == [] and [i["message"] for i in data["ended"]] == [hostile]
    assert "Recently resolved" in public.get("/status").get_data(as_text=True)


def test_ending_resolves_the_callers_tickets_and_tells_each_contact_once(
    console: Console,
    portal_runtime: Runtime,  # noqa: F811
    directory: Directory,  # noqa: F811
) -> None:
    assert console.post("/events/incidents", {"message": MESSAGE}).status_code == 303
    (incident,) = incidents(portal_runtime)
    # Dana called twice, Luis and Priya once, and a stranger the directory does not know (told by SMS).
    tickets = [
        caller_ticket(portal_runtime, incident.id, number)
        for number in ("+18055550142", "+18055550142", "+18055550143", "+18055550211", "+18055550999")
    ]
    assert "5 callers" in console.get("/events").get_data(as_text=True)

    ended = console.post(f"/events/incidents/{incident.id}/end", {"notify": "1", "note": "Email is back."})
    assert ended.status_code == 303
    with portal_runtime.sessions() as s:
        replies = s.scalars(select(TicketMessage).where(TicketMessage.event == "reply")).all()
        assert sorted((m.channel, (m.to_address or "").lower()) for m in replies) == [
            ("email", "dana@acme-dental.example"),
            ("email", "luis@acme-dental.example"),
            ("email", "priya@harbor.example"),
            ("sms", "+18055550999"),
        ]
        assert all(m.body == "Email is back." for m in replies)
        statuses = s.scalars(select(Ticket.status).where(Ticket.number.in_(tickets))).all()
        assert statuses == ["resolved"] * 5
        # Resolving sends no second notice: the reply said it.
        notices = s.scalars(select(OutboxMessage.key).where(OutboxMessage.kind == outbox.NOTIFY)).all()
        assert [k for k in notices if ":resolved:" in k] == []
        deliveries = s.scalars(select(OutboxMessage.key).where(OutboxMessage.kind == outbox.DELIVER)).all()
        assert len(deliveries) == 4
    again = console.post(f"/events/incidents/{incident.id}/end", {"notify": "1"})
    assert again.status_code == 400 and "already ended" in again.get_data(as_text=True)
    assert console.post("/events/incidents/99999/end").status_code == 400


def test_in_a_browser_the_status_page_shows_the_message_as_text_and_runs_nothing(
    page: Any, live_console: str, browser_runtime: Runtime
) -> None:
    hostile = "the <img src=x onerror=window.pwned=1> portal is slow"
    with transaction(browser_runtime.sessions) as s:
        s.add(Client(name="Acme Dental"))
        s.flush()
        outages.declare_known_incident(
            s, message=hostile, actor="Dana Reyes", now=browser_runtime.now(), policy=browser_runtime.policy
        )
    response = page.goto(f"{live_console}/status")
    assert response is not None and response.status == 200
    page.locator("ul.active li b").wait_for()
    assert page.locator("ul.active li b").inner_text() == hostile
    assert page.locator("img").count() == 0 and page.evaluate("window.pwned") is None
    text = page.locator("body").inner_text()
    assert "Acme" not in text and "Dana" not in text and "Started" in text
