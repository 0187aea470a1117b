"""Every console page in real Chromium at a phone's 390x844 and a desktop's 1440x900: no horizontal scroll, the header
readable, tap targets of at least 44 px on the phone, and each action an engineer needs working at that width."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from runtime import Runtime
from tests.web.conftest import PASSWORD, ticket
from tests.web.console.test_browser import seed
from ticketing import conversation, lifecycle, paging, portal
from ticketing.audit import audit
from ticketing.db import transaction
from ticketing.models import Contact, Escalation, MailAttachment, Page

WIDTHS = {"phone": (390, 844), "tablet": (768, 1024), "desktop": (1440, 900)}
LONG_NAME = "Maximiliana Bartholomew-Featherstonehaugh of the Regional Emergency Response Rotation"


@pytest.fixture(params=list(WIDTHS))
def sized(request: pytest.FixtureRequest, chromium: Any) -> Any:
    """A fresh browser context at one of the two widths; yields (name, page)."""
    width, height = WIDTHS[request.param]
    context = chromium.new_context(viewport={"width": width, "height": height}, locale="en-US")
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield request.param, page
    context.close()


def overflow(page: Any) -> int:
    """How many CSS pixels the page is wider than the viewport (0: no horizontal scroll)."""
    return int(page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth"))


def small_targets(page: Any) -> list[str]:
    """Visible buttons, links styled as buttons, inputs and selects in the page less than 44 px tall."""
    return list(
        page.evaluate(
            """() => Array.from(document.querySelectorAll(
                 'main button, main a.button, main input:not([type=hidden]):not([type=checkbox]), main select, '
                 + 'header button, header nav a, .tl-filter a'))
               .filter(el => el.offsetParent !== null && getComputedStyle(el).visibility !== 'hidden')
               .filter(el => el.getBoundingClientRect().height < 43.5)
               .map(el => el.outerHTML.slice(0, 90))"""
        )
    )


def header_readable(page: Any) -> None:
    """Clock, user and Sign out are inside the dark header and inside the viewport."""
    bar = page.locator("header.topbar").bounding_box()
    width = page.viewport_size["width"]
    for sel in ("header .clock", "header .me", "header button:has-text('Sign out')"):
        box = page.locator(sel).bounding_box()
        assert box is not None, sel
        assert box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, sel
        assert bar["y"] <= box["y"] and box["y"] + box["height"] <= bar["y"] + bar["height"] + 0.5, sel


def open_menu(page: Any) -> None:
    """On a phone the header's clock, user, Sign out and pages fold behind its Menu button: open it."""
    if page.locator("header .menu summary").is_visible():
        page.evaluate("() => { document.querySelector('header details.menu').open = true; }")


def close_menu(page: Any) -> None:
    """Fold the header's menu again (a phone)."""
    if page.locator("header .menu summary").is_visible():
        page.evaluate("() => { document.querySelector('header details.menu').open = false; }")


def check(page: Any, name: str, label: str, artifacts: Path) -> None:
    """The page as it is now: no overflow, readable header, big enough targets on a phone; a screenshot."""
    page.screenshot(path=str(artifacts / f"{name}-{label}.png"), full_page=True)
    assert overflow(page) <= 0, f"{label} at {name} is {overflow(page)} px too wide"
    if page.locator("header.topbar").count():
        open_menu(page)
        header_readable(page)
        close_menu(page)
    if name == "phone":
        assert small_targets(page) == [], label


def add_client_files(runtime: Runtime, number: int) -> None:
    """The client emails a long-named log and uploads a photo in the portal on ticket ``number``."""
    folder = Path(runtime.settings.recordings_dir) / "attachments"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "photo.png").write_bytes(b"\x89PNG\r\n")
    with transaction(runtime.sessions) as s:
        t = lifecycle.get_ticket(s, number)
        now = runtime.now()
        landing = conversation.add_client_message(
            s, t, body="The log from the file server.", author="Dana Whitfield", now=now, policy=runtime.policy,
            from_address="dana@acme-dental.example",
        )  # fmt: skip
        name = "fileserver-" + "x" * 90 + ".log"
        s.add(MailAttachment(message=landing.message, filename=name, content_type="text/plain", size=9, path=None))
        portal.add_attachment(
            s, t, filename="photo.png", content_type="image/png", size=6, sha256="0" * 64,
            path=str(folder / "photo.png"), now=now, contact_id=None,
        )  # fmt: skip


def lengthen_paging_names(runtime: Runtime) -> None:
    """Every paged person gets a very long name (a badge that must not widen the queue)."""
    with transaction(runtime.sessions) as s:
        for p in s.scalars(select(Page)).all():
            p.person_name = LONG_NAME


def test_every_page_fits_and_works_at_phone_and_desktop_widths(
    sized: Any, live_console: str, browser_runtime: Runtime, voicemail_wav: Path, artifacts: Path, password_hash: str
) -> None:
    name, page = sized
    numbers = seed(browser_runtime, voicemail_wav, password_hash)
    lengthen_paging_names(browser_runtime)
    base = live_console

    # Sign-in page, then the page a link in the page SMS names: the engineer lands on that ticket.
    page.goto(f"{base}/tickets/{numbers['p1_paging']}")
    assert "/login?next=/tickets/" in page.url
    check(page, name, "login", artifacts)
    page.fill("input[name=username]", "dana")
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(re.compile(rf"/tickets/{numbers['p1_paging']}$"))

    # The P1 being paged: acknowledge from the first screen, the call-back link, no overflow despite long names.
    check(page, name, "ticket-p1-paging", artifacts)
    ack = page.locator("#quick-ack button")
    assert ack.is_visible() and ack.bounding_box()["y"] < 844
    call = page.locator("#call-back")
    assert call.get_attribute("href") == "tel:+18055550311"
    assert call.bounding_box()["y"] < 844
    ack.click()
    page.wait_for_selector(".flash-ok")
    assert "Page acknowledged" in page.locator(".flash-ok").inner_text()
    check(page, name, "ticket-p1-acknowledged", artifacts)

    # The queue: cards on the phone, a table on the desktop; both list every open ticket, next due first.
    page.goto(f"{base}/queue")
    check(page, name, "queue", artifacts)
    rows = page.locator("table.queue tbody tr.row")
    assert rows.count() == 7
    first = rows.first.bounding_box()
    width = WIDTHS[name][0]
    if width <= 1180:
        # A card: priority, countdown and client visible within the card's width.
        assert first["width"] <= width
        card = rows.first
        for sel in (".prio", ".cd", ".c-who"):
            box = card.locator(sel).first.bounding_box()
            assert box is not None and box["x"] + box["width"] <= width, sel
        assert page.locator("table.queue thead").is_hidden()
        vm = page.locator(f"tr[data-number='{numbers['voicemail']}'] .first-line")
        assert "file server is down" in vm.inner_text()
    else:
        assert page.locator("table.queue thead").is_visible()
    # Unknown filters are named, not quietly ignored.
    page.goto(f"{base}/queue?status=bogus")
    assert "Filter ignored: unknown status" in page.locator(".flash-error").inner_text()
    check(page, name, "queue-bogus-filter", artifacts)

    # The voicemail ticket: player and transcript first, then resolution plan, note, priority (reason required).
    page.goto(f"{base}/tickets/{numbers['voicemail']}")
    check(page, name, "ticket-voicemail", artifacts)
    # The number to check is named above the transcript and beside the callback number, within the width.
    banner = page.locator(".tx-numbers")
    assert "check 805 555 0142 (another reading heard 805 555 0124)" in banner.inner_text()
    chip = page.locator(".hints .chip-warn").bounding_box()
    assert chip is not None and chip["x"] + chip["width"] <= WIDTHS[name][0]
    player = page.locator("#vm-audio").bounding_box()
    transcript = page.locator("#transcript").bounding_box()
    timeline = page.locator("#timeline").bounding_box()
    assert player["y"] < transcript["y"] < timeline["y"]
    if name == "phone":
        assert player["y"] < 844 and player["width"] <= 390
    page.click("#act-note")  # the composer's internal note
    page.fill("#composer textarea", "Called back: on it.")
    page.click("#composer button.composer-send")
    page.wait_for_selector(".flash-ok")
    assert "Internal note added" in page.locator(".flash-ok").inner_text()
    page.fill("#act-plan input[name=note]", "Replace the failed disk")
    page.click("#act-plan button")
    page.wait_for_selector(".flash-ok")
    assert "Resolution plan recorded" in page.locator(".flash-ok").inner_text()
    # The browser refuses a priority change without a reason before anything is sent.
    page.select_option("#act-priority select[name=priority]", "P2")
    page.click("#act-priority button")
    assert page.evaluate("() => document.querySelector('#act-priority input[name=reason]').validity.valueMissing")
    assert ticket(browser_runtime, numbers["voicemail"]).priority == "P3"
    page.fill("#act-priority input[name=reason]", "Whole office down")
    page.click("#act-priority button")
    page.wait_for_selector(".flash-ok")
    assert ticket(browser_runtime, numbers["voicemail"]).priority == "P2"
    # The timeline filter keeps to one kind of event.
    page.click(".tl-filter a[data-show=people]")
    page.wait_for_url(re.compile(r"show=people"))
    whats = page.locator("ol.timeline .tl-what").all_inner_texts()
    assert "note" in whats and "incoming" not in whats
    check(page, name, "ticket-voicemail-people", artifacts)
    # Resolve: the milestones show their final state, never a countdown.
    page.goto(f"{base}/tickets/{numbers['voicemail']}")
    page.click("button:has-text('Resolve')")
    page.wait_for_selector(".flash-ok")
    assert page.locator(".sla [data-due]").count() == 0
    states = page.locator(".sla .ms-state .pill").all_inner_texts()
    assert all(s in ("met", "met late", "late", "not needed", "best effort") for s in states), states
    check(page, name, "ticket-resolved", artifacts)
    # The resolved ticket is found again by the words of its note.
    page.goto(f"{base}/queue?status=ended&q=called+back")
    assert [int(n) for n in page.locator("tr.row").evaluate_all("r => r.map(x => x.dataset.number)")] == [
        numbers["voicemail"]
    ]
    check(page, name, "queue-resolved-search", artifacts)

    # The other pages; development mode's banner and list of what was sent fit too.
    log = Path(browser_runtime.settings.recordings_dir).parent / "twilio.jsonl"
    entry = {"at": "2026-11-18T18:00:00+00:00", "kind": "sms", "to": "+18055550160", "body": "P1 CRITICAL " * 30}
    log.write_text(json.dumps(entry) + "\n")
    browser_runtime.settings = browser_runtime.settings.with_overrides(dev_mode=True, dev_twilio_log=log)
    with transaction(browser_runtime.sessions) as s:  # a contact with an address: the Invite to the portal button
        contact = s.scalars(select(Contact).where(Contact.name == "Dana Whitfield")).one()
        contact.email = contact.email or "dana.whitfield-frontdesk@acme-dental-practice.example"
        contact.primary = True
    for label, path in (
        ("oncall", "/oncall"),
        ("contacts", "/contacts"),
        ("mail", "/mail"),
        ("events", "/events"),
        ("dev-outbox", "/dev/outbox"),
        ("dev-mail-in", "/dev/mail-in"),
        ("new-ticket", "/tickets/new"),
    ):
        page.goto(base + path)
        check(page, name, label, artifacts)
    page.fill("input[name=summary]", "Phones down at HQ")
    page.click("button:has-text('Open ticket')")
    page.wait_for_url(re.compile(r"/tickets/\d+$"))
    assert "Phones down at HQ" in page.locator("h1").inner_text()
    response = page.goto(f"{base}/tickets/499999")
    assert response.status == 404
    assert "No ticket 499999" in page.locator("main").inner_text()
    check(page, name, "error-404", artifacts)
    assert page.request.get(f"{base}/favicon.ico").status == 200

    # A ticket with the client's files by email and portal: listed once under Client files, the conversation
    # points there; nothing widens the page.
    add_client_files(browser_runtime, numbers["voicemail"])
    page.goto(f"{base}/tickets/{numbers['voicemail']}")
    check(page, name, "ticket-client-files", artifacts)
    files = page.locator("#client-files + dd li")
    assert files.count() == 2 and "photo.png" in files.all_inner_texts()[1]
    talk = page.locator("section.conversation")
    assert "fileserver-" not in talk.inner_text() and "1 file attached" in talk.inner_text()
    talk.locator("a[href='#client-files']").click()
    box = page.locator("#client-files").bounding_box()
    assert box is not None and 0 <= box["y"] < WIDTHS[name][1] and box["x"] + box["width"] <= WIDTHS[name][0]

    # Sign out from the header at this width.
    open_menu(page)
    page.click("header button:has-text('Sign out')")
    page.wait_for_url(re.compile(r"/login"))


def test_a_long_paging_history_is_folded_and_the_queue_stays_within_1440_px(
    chromium: Any, live_console: str, browser_runtime: Runtime, voicemail_wav: Path, artifacts: Path, password_hash: str
) -> None:
    numbers = seed(browser_runtime, voicemail_wav, password_hash)
    config = paging.oncall_from(browser_runtime.settings.oncall_file)
    with transaction(browser_runtime.sessions) as s:
        t = lifecycle.get_ticket(s, numbers["p1_paging"])
        esc = s.scalars(select(Escalation).where(Escalation.ticket_id == t.id)).one()
        for position in range(1, 20):
            s.refresh(esc)
            if esc.next_due_at is None:
                break
            paging.claim_step(s, t, esc, position, oncall=config, now=esc.next_due_at)
        for p in s.scalars(select(Page).where(Page.escalation_id == esc.id)).all():
            audit(
                s,
                t,
                actor="paging",
                action="page failed",
                now=p.claimed_at,
                detail={"alert": True, "channel": p.channel},
            )
    lengthen_paging_names(browser_runtime)
    context = chromium.new_context(viewport={"width": 1440, "height": 900}, locale="en-US")
    page = context.new_page()
    try:
        page.goto(f"{live_console}/tickets/{numbers['p1_paging']}")
        page.fill("input[name=username]", "dana")
        page.fill("input[name=password]", PASSWORD)
        page.click("button:has-text('Sign in')")
        page.wait_for_url(re.compile(rf"/tickets/{numbers['p1_paging']}$"))
        assert page.locator("ol.timeline li.tl-collapsed").count() >= 1
        height = page.evaluate("() => document.documentElement.scrollHeight")
        page.screenshot(path=str(artifacts / "ticket-long-paging.png"), full_page=True)
        assert height < 2400, height
        assert overflow(page) <= 0
        for width in (1181, 1280, 1440):  # the table from where the cards end
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(f"{live_console}/queue")
            assert page.locator("table.queue thead").is_visible()
            assert overflow(page) <= 0, width
            page.screenshot(path=str(artifacts / f"queue-long-paging-{width}.png"))
    finally:
        context.close()
