"""The on-call engineer's phone at night: the page SMS's link opens the P1's ticket in real Chromium at 390x844, and
the first screen holds Acknowledge (full width), what is broken, when paging was triggered, whom it pages next and
Call back; acknowledging works from there. Screenshots go to test-artifacts/."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from runtime import Runtime
from tests.conftest import pacific
from tests.web.conftest import PASSWORD, Console, attach_voicemail, ticket
from tests.web.console.test_browser import seed
from tests.web.measure import PHONE, box, in_first_screen, scroll_width, small_targets, stays_on_screen
from ticketing import lifecycle, paging
from ticketing.db import transaction
from ticketing.sla import calendar_for
from web.console.layout import span_text

MESSAGE = (
    "This is Harbor Logistics. The whole office is offline, no internet and no phones since ten to ten.\n"
    "Trucks are waiting at the dock and we cannot print the manifests. Call me on 805 555 0311."
)


@pytest.fixture
def phone(chromium: Any) -> Any:
    """A phone-sized browser context (390x844, touch) and its page."""
    context = chromium.new_context(viewport=PHONE, locale="en-US", has_touch=True, is_mobile=True)
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def test_the_page_link_opens_a_first_screen_to_acknowledge_from_on_a_phone(
    phone: Any, live_console: str, browser_runtime: Runtime, voicemail_wav: Path, artifacts: Path, password_hash: str
) -> None:
    numbers = seed(browser_runtime, voicemail_wav, password_hash)
    number = numbers["p1_paging"]  # paged at 09:55; the second step is due at 10:00
    attach_voicemail(browser_runtime, number, voicemail_wav, transcript=MESSAGE, transcript_language="en")
    browser_runtime.clock.set("2026-11-18 09:56")  # type: ignore[attr-defined]
    browser_runtime.settings = browser_runtime.settings.with_overrides(dev_mode=True)
    page = phone

    page.goto(f"{live_console}/tickets/{number}")
    page.fill("input[name=username]", "dana")
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(re.compile(rf"/tickets/{number}$"))
    page.screenshot(path=str(artifacts / "phone-p1-paging.png"))
    page.screenshot(path=str(artifacts / "phone-p1-paging-full.png"), full_page=True)

    # One line on top that stays there: brand, ticket number, priority; the development banner one line too.
    header = box(page, "header.topbar")
    assert header["height"] <= 56, header
    assert re.fullmatch(rf"#{number}\s+P1", page.locator("header .ctx").inner_text().strip())
    assert page.locator("header .brand").is_visible() and page.locator("header nav").is_hidden()
    assert stays_on_screen(page, "header.topbar")
    assert box(page, ".dev-banner")["height"] <= 48

    # Acknowledge first, full width, then what is broken, when, who next and Call back: all on the first screen.
    ack = box(page, "#quick-ack button")
    assert ack["width"] >= 0.9 * PHONE["width"], ack
    assert page.locator("#quick-ack button").inner_text().strip() == "Acknowledge"
    broken = page.locator("#broken")
    assert broken.inner_text().startswith("This is Harbor Logistics. The whole office is offline")
    assert page.locator("#triggered").inner_text() == "triggered 1 min ago"
    assert page.locator("#next-page").inner_text() == "next: Alex Rivera, Blake Chen, Casey Morgan at 10:00, in 4 min"
    call = page.locator("#call-back")
    assert call.get_attribute("href") == "tel:+18055550311" and "Call back (805) 555-0311" in call.inner_text()
    order = [box(page, s)["y"] for s in ("#quick-ack button", "#broken", "#triggered", "#call-back", "#timeline")]
    assert order == sorted(order), order
    for selector in ("#quick-ack button", "#broken", "#triggered", "#next-page", "#call-back"):
        assert in_first_screen(page, selector), selector
    assert small_targets(page) == []
    assert scroll_width(page) <= PHONE["width"]

    # The menu folds behind one button and opens over the page.
    page.click("header .menu summary")
    assert page.locator("header nav a:has-text('On-call')").is_visible()
    assert page.locator("header button:has-text('Sign out')").is_visible()
    assert small_targets(page) == [] and scroll_width(page) <= PHONE["width"]
    page.screenshot(path=str(artifacts / "phone-menu.png"))
    page.click("header .menu summary")

    # Acknowledge from there: the escalation stops, the button goes, the screen says who acknowledged.
    page.click("#quick-ack button")
    page.wait_for_selector(".flash-ok")
    assert "Page acknowledged" in page.locator(".flash-ok").inner_text()
    assert page.locator("#quick-ack").count() == 0
    assert page.locator("button:has-text('Acknowledge')").count() == 0
    assert "acknowledged by Dana Reyes under a minute ago" in page.locator(".incident").inner_text()
    assert page.locator("#next-page").count() == 0
    page.screenshot(path=str(artifacts / "phone-p1-acknowledged.png"))
    with browser_runtime.sessions() as s:
        escalation = paging.escalation_of(s, lifecycle.get_ticket(s, number))
        assert escalation is not None and escalation.acknowledged_by == "Dana Reyes"
        assert escalation.acknowledged_via == "console" and escalation.next_due_at is None
    assert ticket(browser_runtime, number).milestone("first_response").met_at == pacific("2026-11-18 09:56")


def test_a_spanish_voicemail_shows_its_english_translation_as_what_is_broken(
    console: Console, runtime: Runtime, open_ticket: Any
) -> None:
    number = open_ticket(priority="P1", source="voicemail", caller_number="+18055550142")
    with transaction(runtime.sessions) as s:
        t = lifecycle.get_ticket(s, number)
        t.transcript = "El servidor de archivos no funciona y nadie en la oficina puede trabajar."
        t.transcript_language = "es"
        t.transcript_translation = "The file server is down and nobody in the office can work."
        config = paging.oncall_from(runtime.settings.oncall_file)
        paging.start_escalation(s, t, oncall=config, calendar=calendar_for(runtime.policy), now=runtime.now())
    html = console.get(f"/tickets/{number}").get_data(as_text=True)
    broken = re.search(r'<blockquote class="broken" id="broken" lang="en">(.*?)</blockquote>', html, re.S)
    assert broken is not None
    text = re.sub(r"<[^>]+>", "", broken.group(1))
    assert text == "Translated from Spanish: The file server is down and nobody in the office can work."
    assert 'id="quick-ack"' in html and "triggered under a minute ago" in html


def test_no_acknowledge_button_or_incident_on_a_ticket_that_was_never_paged(console: Console, open_ticket: Any) -> None:
    number = open_ticket(priority="P3", caller_number="+18055550142", summary="Printer\r\nout of toner")
    html = console.get(f"/tickets/{number}").get_data(as_text=True)
    assert 'id="quick-ack"' not in html and 'class="incident' not in html
    assert 'href="tel:+18055550142" id="call-back"' in html


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "under a minute"), (59, "under a minute"), (60, "1 min"), (-720, "12 min"), (3700, "62 min"), (7200, "2 hr")],
)
def test_a_stretch_of_time_reads_in_minutes_then_hours(seconds: float, text: str) -> None:
    assert span_text(seconds) == text
