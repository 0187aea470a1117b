"""What the client sees of a voicemail ticket (emails, the portal) never comes raw from the recogniser; a person's
reply shows as the first response."""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy import select

import runtime as rt
from runtime import Runtime
from tests.web.portal.conftest import PortalClient, mails
from ticketing import conversation, lifecycle, outbox, summaries
from ticketing.db import transaction
from ticketing.models import OutboxMessage
from workers.mail import notify_ticket_event

Make = Callable[[str | None], PortalClient]
MISHEARD = "Our file firm are in town"
WORDS = ("file", "firm", "town")
NEUTRAL = "Voicemail from (805) 555-0142, Wed 10:00"


def _voicemail(client_ticket: Callable[..., int], **extra: object) -> int:
    return client_ticket(
        "dana",
        MISHEARD,
        source="voicemail",
        recording_sid="RE0001",
        transcript=f"Hi, this is Dana from Acme. {MISHEARD}. Call me back.",
        **extra,
    )


def _send_notices(runtime: Runtime, number: int) -> list[str]:
    """Run the ticket's queued notice jobs as the worker would; the subjects of the mail sent."""
    with runtime.sessions() as s:
        jobs = [
            o.payload
            for o in s.scalars(
                select(OutboxMessage).where(OutboxMessage.kind == outbox.NOTIFY).order_by(OutboxMessage.id)
            )
            if o.payload.get("ticket") == number and o.completed_at is None
        ]
    rt.install(runtime)
    try:
        for job in jobs:
            notify_ticket_event(job["ticket"], job["event"], job["key"], job.get("detail"))
    finally:
        rt.install(None)
    return [str(m["Subject"]) for m in mails(runtime) if f"#{number}" in str(m["Subject"])]


def _list_summary(html: str, number: int) -> str:
    match = re.search(rf'data-number="{number}".*?<span class="summary">(.*?)</span>', html, re.S)
    assert match, f"ticket {number} not in the list"
    return match.group(1)


def test_the_confirmation_and_the_portal_never_show_the_transcript_until_a_person_writes_a_summary(
    portal_client: Make, client_ticket: Callable[..., int], portal_runtime: Runtime
) -> None:
    number = _voicemail(client_ticket)
    (subject,) = _send_notices(portal_runtime, number)  # the "new ticket created" notice, queued on opening
    assert subject == f"[#{number}] New ticket created: {NEUTRAL}"
    assert not any(word in subject.lower() for word in WORDS)
    dana = portal_client("dana")
    listed = dana.get("/portal/").get_data(as_text=True)
    assert _list_summary(listed, number) == NEUTRAL and MISHEARD not in listed
    page = dana.get(f"/portal/tickets/{number}").get_data(as_text=True)
    assert re.search(rf"<h1><span class=\"num\">#{number}</span> {re.escape(NEUTRAL)}</h1>", page)

    with transaction(portal_runtime.sessions) as s:
        t = lifecycle.get_ticket(s, number)
        summaries.write_client_summary(
            s, t, "File server down at the front desk", actor="Alex", now=portal_runtime.now()
        )
        lifecycle.set_status(s, t, "resolved", actor="Alex", now=portal_runtime.now(), policy=portal_runtime.policy)
    subjects = _send_notices(portal_runtime, number)
    assert f"[#{number}] Resolved: File server down at the front desk" in subjects
    assert not [x for x in subjects if MISHEARD in x]
    listed = dana.get("/portal/").get_data(as_text=True)
    assert _list_summary(listed, number) == "File server down at the front desk"


def test_a_spanish_voicemail_reads_neutral_in_spanish_and_an_email_ticket_keeps_the_client_subject(
    portal_client: Make, client_ticket: Callable[..., int], portal_runtime: Runtime
) -> None:
    spanish = _voicemail(client_ticket, language="es")
    emailed = client_ticket("dana", "Impresora sin conexión", source="email")
    listed = portal_client("dana").get("/portal/").get_data(as_text=True)
    assert _list_summary(listed, spanish) == "Mensaje de voz de (805) 555-0142, mié 10:00"
    assert _list_summary(listed, emailed) == "Impresora sin conexión"


def test_a_person_reply_shows_as_the_first_response_in_the_portal(
    portal_client: Make, client_ticket: Callable[..., int], portal_runtime: Runtime
) -> None:
    number = _voicemail(client_ticket)
    dana = portal_client("dana")
    assert ">Received<" in dana.get("/portal/").get_data(as_text=True)
    with transaction(portal_runtime.sessions) as s:
        conversation.reply_to_client(
            s, lifecycle.get_ticket(s, number), "We are on it.", actor="Alex Rivera", now=portal_runtime.now()
        )
    listed = dana.get("/portal/").get_data(as_text=True)
    row = re.search(rf'data-number="{number}".*?</li>', listed, re.S)
    assert row is not None and ">Acknowledged<" in row.group(0) and ">Received<" not in row.group(0)
    page = dana.get(f"/portal/tickets/{number}").get_data(as_text=True)
    assert "We responded to your request" in page and "We are on it." in page
    assert "first response by" not in row.group(0)  # the next commitment moved on to the resolution plan
