"""The coordinator's desk: what the client sees, the first response by a reply, the ack button, countdowns, and the
English queue of a message in another language."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from runtime import Runtime
from tests.conftest import FixedClock
from tests.web.conftest import Console, ticket
from tests.web.console.test_browser import sign_in
from ticketing import accounts, lifecycle, paging
from ticketing.db import transaction
from ticketing.models import Client, Contact, Ticket, TicketMessage, User
from ticketing.sla import calendar_for
from web.console.present import countdown_text

MISHEARD = "Our file firm are in town"
ACK_BUTTON = ">Acknowledge page</button>"


def _voicemail(runtime: Runtime, open_ticket: Callable[..., int], **kwargs: object) -> int:
    with transaction(runtime.sessions) as s:
        acme = Client(name="Acme Dental", main_number="+18055550100")
        s.add(Contact(client=acme, name="Dana Whitfield", phone="+18055550142", email="dana@acme.example"))
    number = open_ticket(source="voicemail", caller_number="+18055550142", summary=MISHEARD, **kwargs)
    with transaction(runtime.sessions) as s:
        lifecycle.get_ticket(s, number).recording_sid = f"RE{number}"
    return number


def _client_sees(html: str) -> str:
    match = re.search(r"<b data-client-summary>(.*?)</b>", html)
    assert match, "no client summary on the page"
    return match.group(1)


def test_the_ticket_page_shows_what_the_client_sees_and_a_person_writes_it(
    console: Console, runtime: Runtime, open_ticket: Callable[..., int]
) -> None:
    number = _voicemail(runtime, open_ticket)
    page = console.get(f"/tickets/{number}").get_data(as_text=True)
    assert "The client sees:" in page and _client_sees(page) == "Voicemail from (805) 555-0142, Wed 10:00"
    assert "(automatic:" in page
    done = console.post(f"/tickets/{number}/client-summary", {"client_summary": "Our file server\r\nis down"})
    assert done.status_code == 303
    page = console.get(f"/tickets/{number}").get_data(as_text=True)
    assert _client_sees(page) == "Our file server is down" and "(automatic:" not in page
    assert [(a.actor, a.detail) for a in ticket(runtime, number).audit if a.action == "client summary written"] == [
        ("Dana Reyes", {"from": None, "to": "Our file server is down"})
    ]


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"client_summary": "x" * 201}, "A client summary is at most 200 characters."),
        ({}, "There is no client summary"),
    ],
)
def test_a_bad_client_summary_is_refused_with_a_reason(
    console: Console, runtime: Runtime, open_ticket: Callable[..., int], form: dict[str, str], error: str
) -> None:
    number = _voicemail(runtime, open_ticket)
    refused = console.post(f"/tickets/{number}/client-summary", form)
    assert refused.status_code == 400 and error in refused.get_data(as_text=True)
    assert ticket(runtime, number).client_summary is None


def test_the_client_summary_form_needs_the_csrf_token_and_a_signed_in_user(
    console: Console, anonymous: Console, runtime: Runtime, open_ticket: Callable[..., int]
) -> None:
    number = _voicemail(runtime, open_ticket)
    forged = console.client.post(f"/tickets/{number}/client-summary", data={"client_summary": "Forged"})
    assert forged.status_code == 400
    stranger = anonymous.client.post(f"/tickets/{number}/client-summary", data={"client_summary": "Stranger"})
    assert stranger.status_code in (302, 303, 400, 401, 403)
    assert ticket(runtime, number).client_summary is None
    assert console.post("/tickets/999999/client-summary", {"client_summary": "x"}).status_code == 404


def test_a_console_reply_is_the_first_response_and_its_subject_is_what_the_client_sees(
    console: Console, runtime: Runtime, clock: FixedClock, open_ticket: Callable[..., int], api_token: str
) -> None:
    number = _voicemail(runtime, open_ticket)
    clock.advance(minutes=4)
    assert console.post(f"/tickets/{number}/reply", {"text": "We are on it."}).status_code == 303
    t = ticket(runtime, number)
    assert t.status == "acknowledged" and t.milestone("first_response").met_at == clock()
    met = [a for a in t.audit if a.action == "first response met"]
    assert [(a.actor, a.reason, a.detail["via"]) for a in met] == [
        ("Dana Reyes", "an email reply by Dana Reyes", "email")
    ]
    api = console.client.get(f"/api/tickets/{number}", headers={"Authorization": f"Bearer {api_token}"}).get_json()
    first = next(m for m in api["sla"]["milestones"] if m["name"] == "first_response")
    assert first["met_at"] == clock().astimezone(UTC).isoformat()
    assert api["status"] == "acknowledged" and api["client_summary"] == "Voicemail from (805) 555-0142, Wed 10:00"
    with runtime.sessions() as s:
        (subject,) = s.scalars(select(TicketMessage.subject).where(TicketMessage.event == "reply")).all()
    assert subject == f"[#{number}] Re: Voicemail from (805) 555-0142, Wed 10:00"


def test_an_acknowledged_ticket_offers_no_acknowledge_button(
    console: Console, runtime: Runtime, clock: FixedClock, open_ticket: Callable[..., int]
) -> None:
    number = open_ticket(priority="P1", source="voicemail", caller_number="+18055550199")
    assert ACK_BUTTON in console.get(f"/tickets/{number}").get_data(as_text=True)
    assert console.post(f"/tickets/{number}/acknowledge").status_code == 303
    assert ACK_BUTTON not in console.get(f"/tickets/{number}").get_data(as_text=True)

    # A P1 a person already answered (no page was ever sent): nothing to acknowledge.
    answered = open_ticket(priority="P1", source="manual", caller_number="+18055550198")
    assert console.post(f"/tickets/{answered}/reply", {"text": "Calling you now."}).status_code == 303
    assert ticket(runtime, answered).status == "acknowledged"
    assert ACK_BUTTON not in console.get(f"/tickets/{answered}").get_data(as_text=True)


def test_a_repeat_call_joined_to_an_acknowledged_escalation_offers_no_acknowledge_button(
    console: Console, runtime: Runtime, clock: FixedClock, open_ticket: Callable[..., int]
) -> None:
    main = open_ticket(priority="P1", source="voicemail", caller_number="+18055550199")
    repeat = open_ticket(priority="P1", source="voicemail", caller_number="+18055550199")
    oncall = paging.oncall_from(runtime.settings.oncall_file)
    with transaction(runtime.sessions) as s:
        t = s.scalars(select(Ticket).where(Ticket.number == main)).one()
        esc = paging.start_escalation(s, t, oncall=oncall, calendar=calendar_for(runtime.policy), now=clock())
        paging.join_escalation(s, lifecycle.get_ticket(s, repeat), esc, why="same caller", now=clock())
    assert ACK_BUTTON in console.get(f"/tickets/{repeat}").get_data(as_text=True)  # still paging: offered
    with transaction(runtime.sessions) as s:
        paging.acknowledge(s, main, "Eli", clock(), "sms")
    page = console.get(f"/tickets/{repeat}").get_data(as_text=True)
    assert ACK_BUTTON not in page and ACK_BUTTON not in console.get(f"/tickets/{main}").get_data(as_text=True)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-(18 * 86400 + 14 * 3600 + 59), "18d 14h over"),
        (-(4 * 60 + 10), "4m 10s over"),
        (-1, "0m 01s over"),
        (0, "0m 00s"),
        (3 * 3600 + 5 * 60, "3h 05m"),
        (2 * 86400 + 4 * 3600, "2d 4h"),
    ],
)
def test_countdowns_read_over_without_a_minus_sign(seconds: int, text: str) -> None:
    assert countdown_text(seconds) == text


def test_a_ticket_long_past_due_reads_over_in_the_queue_and_on_its_page(
    console: Console, open_ticket: Callable[..., int]
) -> None:
    number = open_ticket("2026-10-30 09:00", priority="P2")
    for path in ("/queue", f"/tickets/{number}"):
        html = console.get(path).get_data(as_text=True)
        assert re.search(r">\d+d \d+h over<", html), path
        assert "−" not in html and "&minus;" not in html and "-18d" not in html


def test_the_english_queue_shows_the_english_summary_of_a_spanish_message(
    console: Console, runtime: Runtime, open_ticket: Callable[..., int]
) -> None:
    spanish = "El servidor de archivos no funciona"
    number = open_ticket(source="voicemail", caller_number="+18055550142", summary=spanish)
    with transaction(runtime.sessions) as s:
        t = lifecycle.get_ticket(s, number)
        t.language = "es"
        t.transcript = f"Hola, habla Dana. {spanish}. Llámeme por favor."
        t.transcript_language = "es"
        t.transcript_translation = "Hello, this is Dana. The file server is not working. Please call me."
        t.hints = {"summary": spanish, "caller_name": "Dana"}
    queue = console.get("/queue").get_data(as_text=True)
    row = re.search(rf'data-number="{number}".*?</tr>', queue, re.S)
    assert row is not None
    assert re.search(r'<span class="sum"[^>]*>The file server is not working</span>', row.group(0))
    assert spanish not in re.search(r'<span class="sum".*?</span>', row.group(0), re.S).group(0)  # type: ignore[union-attr]
    page = console.get(f"/tickets/{number}").get_data(as_text=True)
    assert f'<span class="title">{spanish}</span>' in page  # the original stays on the ticket page
    # A summary a person wrote in Spanish is theirs: shown as written.
    other = open_ticket(source="phone", summary="Impresora sin conexión")
    queue = console.get("/queue").get_data(as_text=True)
    assert re.search(rf'data-number="{other}".*?Impresora sin conexión', queue, re.S)


def test_a_live_countdown_past_due_reads_over_without_a_minus_sign_in_the_browser(
    browser_runtime: Runtime, live_console: str, page: Any, password_hash: str
) -> None:
    with transaction(browser_runtime.sessions) as s:
        s.add(
            User(
                username="dana",
                display_name="Dana Reyes",
                role=accounts.COORDINATOR,
                password_hash=password_hash,
                active=True,
                created_at=browser_runtime.now(),
                failed_logins=0,
            )
        )
        # A P3's first response is due 12 minutes after opening: 5 seconds ago.
        opened = browser_runtime.now() - timedelta(minutes=12, seconds=5)
        t = lifecycle.open_ticket(
            s, policy=browser_runtime.policy, now=opened, priority="P3", source="phone", actor="t", summary="Printer"
        )
        number = t.number
    sign_in(page, live_console)
    countdown = f"tr[data-number='{number}'] .cd"
    before = page.locator(countdown).inner_text()
    assert before.endswith(" over") and "−" not in before
    page.wait_for_function(
        "([sel, text]) => document.querySelector(sel).textContent !== text", arg=[countdown, before], timeout=5000
    )
    after = page.locator(countdown).inner_text()
    assert re.fullmatch(r"\d+m \d{2}s over", after), after
