"""The ticket page's desk in a real headless Chromium at a desktop width: a public reply that waits on the client,
an internal note, assigning a console user from the list, Take it; each action lands back on its section."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import select

from inbox import intake
from runtime import Runtime
from tests.inbox import fixtures
from tests.web.conftest import PASSWORD  # noqa: F401 - sign_in uses it
from tests.web.console.test_browser import sign_in
from ticketing import accounts
from ticketing.conversation import SYSTEM
from ticketing.db import transaction
from ticketing.models import Client, Contact, OutboxMessage, Ticket, TicketMessage, User


def seed(runtime: Runtime, password_hash: str) -> int:
    """Two console users and an email ticket from a directory contact, with its confirmation sent."""
    now = runtime.now()
    with transaction(runtime.sessions) as s:
        for username, role, name in (
            ("dana", accounts.COORDINATOR, "Dana Reyes"),
            ("eli", accounts.ENGINEER, "Eli Novak"),
        ):
            s.add(
                User(
                    username=username,
                    display_name=name,
                    role=role,
                    password_hash=password_hash,
                    active=True,
                    created_at=now,
                    failed_logins=0,
                )
            )
        acme = Client(name="Acme Dental", main_number="+18055550100")
        s.add(Contact(client=acme, name="Dana Whitfield", phone="+18055550142", email="dana@acme-dental.example"))
        s.flush()
        stored = intake.store_raw(
            s, mailbox="help@itech.example", raw=fixtures.multipart_alternative(), via="imap", now=now, max_bytes=10**7
        )
    with transaction(runtime.sessions) as s:
        assert intake.process(s, stored.id, settings=runtime.settings, policy=runtime.policy, now=now) == "ticketed"
    with transaction(runtime.sessions) as s:
        ticket = s.scalars(select(Ticket)).one()
        # The confirmation as the mail worker records it once sent: a notice, by no person.
        s.add(
            TicketMessage(
                ticket=ticket,
                key=f"notify:{ticket.number}:created:1",
                direction="out",
                channel="email",
                event="created",
                author=SYSTEM,
                to_address="dana@acme-dental.example",
                subject=f"[#{ticket.number}] New ticket created: Printer in reception is offline",
                body="Thank you for contacting support. A new ticket has been created for your request.",
                state="sent",
                automatic=True,
                created_at=now,
                sent_at=now,
                tries=1,
            )
        )
        return int(ticket.number or 0)


def _outbox(runtime: Runtime) -> list[tuple[str, str]]:
    with runtime.sessions() as s:
        return [(m.kind, m.key) for m in s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))]


def _ticket(runtime: Runtime, number: int) -> Ticket:
    with runtime.sessions() as s:
        t = s.scalars(select(Ticket).where(Ticket.number == number)).one()
        s.expunge(t)
        return t


def _scrolled_to(page: Any, selector: str) -> bool:
    """Whether the element is in the viewport (the redirect's #anchor took the browser there)."""
    return bool(
        page.evaluate(
            "sel => { const r = document.querySelector(sel).getBoundingClientRect();"
            " return r.top < window.innerHeight && r.bottom > 0; }",
            selector,
        )
    )


def test_a_coordinator_works_an_email_ticket_from_the_desk(
    page: Any, live_console: str, browser_runtime: Runtime, artifacts: Path, password_hash: str
) -> None:
    number = seed(browser_runtime, password_hash)
    sign_in(page, live_console)
    page.goto(f"{live_console}/tickets/{number}")

    # The sender by name and address where a phone number would be; the confirmation folded to one line.
    assert "Dana Whitfield · <dana@acme-dental.example>" in page.locator(".th-meta").inner_text()
    assert "withheld" not in page.locator(".th-meta").inner_text()
    notice = page.locator("li.msg-notice details")
    assert notice.count() == 1 and notice.get_attribute("open") is None
    assert not page.locator("li.msg-notice p.pre").is_visible()
    notice.locator("summary").click()
    assert page.locator("li.msg-notice p.pre").is_visible()

    # One composer: a public reply (blue) by default, addressed to the client.
    composer = page.locator("#composer")
    assert "Public reply to dana@acme-dental.example" in composer.locator("label.mode-reply").inner_text()
    assert composer.locator("input[value=reply]").is_checked()
    blue = composer.evaluate("f => getComputedStyle(f).borderTopColor")
    page.screenshot(path=str(artifacts / "desk-ticket.png"), full_page=False)

    # A public reply that asks the client something and waits on the client: one email, the status changes.
    before = _outbox(browser_runtime)
    composer.locator("textarea").fill("Which printer model is it? A photo of its label helps.")
    composer.locator("select[name=then]").select_option("waiting")
    composer.locator("button.composer-send").click()
    page.wait_for_url(re.compile(rf"/tickets/{number}#composer$"))
    assert _scrolled_to(page, "#composer")
    assert (
        "Reply queued (email to dana@acme-dental.example); status waiting on client."
        in page.locator(".flash-ok").inner_text()
    )
    new = _outbox(browser_runtime)[len(before) :]
    assert [kind for kind, _ in new] == ["deliver"]
    with browser_runtime.sessions() as s:
        replies = s.scalars(select(TicketMessage).where(TicketMessage.event == "reply")).all()
        assert [(r.to_address, r.channel, r.author) for r in replies] == [
            ("dana@acme-dental.example", "email", "Dana Reyes")
        ]
    assert _ticket(browser_runtime, number).status == "waiting on client"
    assert page.locator(".th-meta .status").text_content() == "waiting on client"
    assert "Which printer model is it?" in page.locator("li.msg-out:not(.msg-notice)").inner_text()
    # The reply is the ticket's first response (a person began addressing it): met, on the page's SLA card.
    with browser_runtime.sessions() as s:
        t = s.scalars(select(Ticket).where(Ticket.number == number)).one()
        assert t.milestone("first_response").met_at is not None
    card = page.locator('#sla [data-milestone="first_response"]')
    assert "met" in card.locator(".ms-state").inner_text().lower()

    # An internal note: the box turns yellow, says the client does not see it, and nothing is mailed.
    composer = page.locator("#composer")
    composer.locator("label.mode-note").click()
    assert composer.evaluate("f => getComputedStyle(f).borderTopColor") != blue
    assert composer.locator("button.composer-send").inner_text().strip() == "Add internal note"
    assert "(the client does not see this)" in composer.locator("label.mode-note").inner_text()
    composer.locator("textarea").fill("Printer is an HP M404; toner ordered.")
    page.screenshot(path=str(artifacts / "desk-note.png"), full_page=False)
    before = _outbox(browser_runtime)
    composer.locator("button.composer-send").click()
    page.wait_for_url(re.compile(rf"/tickets/{number}#composer$"))
    assert "Internal note added." in page.locator(".flash-ok").inner_text()
    assert _outbox(browser_runtime) == before
    assert "Printer is an HP M404; toner ordered." in page.locator("#timeline").inner_text()
    assert _ticket(browser_runtime, number).status == "waiting on client"

    # Assign to another console user from the list; then Take it.
    assign = page.locator("#act-assign")
    options = assign.locator("select[name=assignee] option").all_inner_texts()
    assert options == ["nobody (unassign)", "Dana Reyes · coordinator", "Eli Novak · engineer"]
    assign.locator("select[name=assignee]").select_option("eli")
    assign.locator("button:has-text('Assign')").click()
    page.wait_for_url(re.compile(rf"/tickets/{number}#act-assign$"))
    assert _scrolled_to(page, "#act-assign")
    assert _ticket(browser_runtime, number).assignee == "Eli Novak"
    assert "Assignee Eli Novak" in page.locator("#act-assign .assign-now").inner_text()
    page.screenshot(path=str(artifacts / "desk-assigned.png"), full_page=False)
    page.locator("#act-assign button:has-text('Take it')").click()
    page.wait_for_url(re.compile(rf"/tickets/{number}#act-assign$"))
    assert _ticket(browser_runtime, number).assignee == "Dana Reyes"
    assert page.locator("#act-assign button:has-text('Take it')").count() == 0
    assert page.locator("#act-assign select[name=assignee]").input_value() == "dana"
    page.evaluate("() => window.scrollTo(0, 0)")  # sticky bars drawn where they belong in a full-page shot
    page.screenshot(path=str(artifacts / "desk-full.png"), full_page=True)

    # On a phone the composer and the assign form fit the width.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_console}/tickets/{number}#composer")
    for selector in ("#composer", "#act-assign"):
        box = page.locator(selector).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, selector
    page.locator("#conversation").screenshot(path=str(artifacts / "desk-phone-conversation.png"))
    page.locator("#act-assign").screenshot(path=str(artifacts / "desk-phone-assign.png"))
    page.set_viewport_size({"width": 1440, "height": 900})

    # The Mail page: who wrote, about what, and what became of it.
    page.goto(f"{live_console}/mail")
    row = page.locator("#latest-mail tbody tr").first
    cells = row.locator("td").all_inner_texts()
    assert cells[1] == "Dana Whitfield <dana@acme-dental.example>"
    assert cells[2] == "Printer in reception is offline"
    assert cells[4] == f"new ticket #{number}"
    page.screenshot(path=str(artifacts / "desk-mail.png"), full_page=True)


def test_a_stranger_typed_into_the_assign_form_is_refused_in_the_browser(
    page: Any, live_console: str, browser_runtime: Runtime, password_hash: str
) -> None:
    number = seed(browser_runtime, password_hash)
    sign_in(page, live_console)
    page.goto(f"{live_console}/tickets/{number}")
    # A hand-edited form (the list offers only console users): the page says why, nothing changes.
    page.evaluate(
        "() => { const o = document.createElement('option'); o.value = 'Blake Chen'; o.text = 'Blake';"
        " document.querySelector('#act-assign select').append(o); }"
    )
    page.locator("#act-assign select[name=assignee]").select_option("Blake Chen")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.locator("#act-assign button:has-text('Assign')").click()
    assert answer.value.status == 400
    assert (
        "'Blake Chen' is not a console user: choose someone from the list." in page.locator(".flash-error").inner_text()
    )
    assert _ticket(browser_runtime, number).assignee is None
