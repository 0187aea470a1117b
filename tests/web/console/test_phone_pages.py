"""Every console page measured in real Chromium at a phone's 390x844: each visible link, button, field, select and
fold is at least 44x44 CSS px, nothing scrolls sideways, and the header stays on screen. Screenshots go to
test-artifacts/phone-measure-*.png."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from runtime import Runtime
from tests.web.conftest import PASSWORD, attach_voicemail
from tests.web.console.test_browser import seed
from tests.web.measure import PHONE, measure, scroll_width, sideways_scrollers, small_targets, stays_on_screen
from ticketing import events, lifecycle
from ticketing.db import transaction

PAGES = {
    "queue": "/queue",
    "queue-filtered": "/queue?priority=P1&status=bogus",
    "ticket-p1-paging": "/tickets/{p1_paging}",
    "ticket-p1-acknowledged": "/tickets/{p1_acked}",
    "ticket-voicemail": "/tickets/{voicemail}",
    "oncall": "/oncall",
    "mail": "/mail",
    "contacts": "/contacts",
    "new-ticket": "/tickets/new",
    "events": "/events",
    "unknown-ticket": "/tickets/499999",
}


def test_every_console_page_has_44_px_targets_and_no_sideways_scroll_on_a_phone(
    chromium: Any, live_console: str, browser_runtime: Runtime, voicemail_wav: Path, artifacts: Path, password_hash: str
) -> None:
    numbers = seed(browser_runtime, voicemail_wav, password_hash)
    attach_voicemail(
        browser_runtime,
        numbers["p1_paging"],
        voicemail_wav,
        transcript="Everything is down at the warehouse, call me back.",
        transcript_language="en",
    )
    with transaction(browser_runtime.sessions) as s:
        # The same caller again: the voicemail's page lists it among the related tickets (links to measure).
        lifecycle.open_ticket(
            s,
            policy=browser_runtime.policy,
            now=browser_runtime.now(),
            priority="P4",
            source="phone",
            actor="support line",
            caller_number="+18055550142",
            summary="Second call about the file server",
        )
    with transaction(browser_runtime.sessions) as s:  # the banner every page shows while an event is in force
        events.declare_exceptional_event(
            s,
            reason="Regional power cut",
            extension=timedelta(hours=4),
            actor="Dana Reyes",
            now=browser_runtime.now(),
            policy=browser_runtime.policy,
        )
    browser_runtime.settings = browser_runtime.settings.with_overrides(dev_mode=True)
    context = chromium.new_context(viewport=PHONE, locale="en-US", has_touch=True, is_mobile=True)
    context.set_default_timeout(10_000)
    page = context.new_page()
    problems: list[str] = []
    try:
        page.goto(f"{live_console}/login")
        problems += measure(page, "login", artifacts)
        page.fill("input[name=username]", "dana")
        page.fill("input[name=password]", PASSWORD)
        page.click("button:has-text('Sign in')")
        page.wait_for_url(re.compile(r"/queue"))
        for label, path in PAGES.items():
            page.goto(live_console + path.format(**numbers))
            # Folds a phone keeps closed are opened too: what they hold is measured as well.
            page.evaluate("() => document.querySelectorAll('main details').forEach(d => { d.open = true; })")
            problems += measure(page, label, artifacts)
            if label == "ticket-voicemail":
                assert page.locator("ul.related a").count() == 1
        page.goto(f"{live_console}/queue")
        page.click("header .menu summary")
        problems += measure(page, "menu", artifacts)
    finally:
        context.close()
    assert problems == [], "\n".join(problems)


def test_the_measures_name_a_small_target_a_clipped_table_and_a_too_wide_page(chromium: Any) -> None:
    context = chromium.new_context(viewport=PHONE)
    page = context.new_page()
    try:
        page.set_content(
            """<body style="margin:0"><a href="/q">← Queue</a>
            <a class="skip" href="#m" style="position:absolute;left:-999px">Skip</a>
            <label style="display:block;padding:14px"><input type="checkbox"> a check box hit through its label</label>
            <details><summary>4 pages sent</summary><a href="/hidden">in a closed fold</a></details>
            <div style="overflow-x:auto;width:200px"><table><tr><td style="white-space:nowrap">FALLBACK FALLBACK
            FALLBACK FALLBACK</td></tr></table></div><div style="width:500px">wide</div></body>"""
        )
        found = small_targets(page)
        assert [t.split('"')[1] for t in found] == ["← Queue", "4 pages sent"], found
        assert len(sideways_scrollers(page)) == 1
        assert scroll_width(page) == 500
        assert not stays_on_screen(page, "a")
    finally:
        context.close()
