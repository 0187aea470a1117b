"""The queue page's Callbacks section in real Chromium at a phone's 390 px and a desktop's 1,440 px: callers who
kept their place in line, first come, first served, with their waiting time and Call back now."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from runtime import Runtime
from tests.conftest import pacific
from tests.web import measure
from tests.web.console.test_browser import sign_in
from tests.web.console.test_widths import overflow, small_targets
from ticketing import accounts, callbacks, lifecycle
from ticketing.db import transaction
from ticketing.models import Client, Contact, User

WIDTHS = {"phone": (390, 844), "desktop": (1440, 900)}


def seed_line(runtime: Runtime, password_hash: str) -> list[int]:
    """Three callers in line (asked 25, 12 and 3 minutes ago; the first already being called) and one who was
    connected; returns the ticket numbers in the order they asked."""
    numbers = []
    with transaction(runtime.sessions) as s:
        s.add(User(username="dana", display_name="Dana Reyes", role=accounts.COORDINATOR, password_hash=password_hash,
                   active=True, created_at=runtime.now(), failed_logins=0))  # fmt: skip
        acme = Client(name="Acme Dental", main_number="+18055550100")
        s.add(acme)
        s.flush()
        s.add(Contact(client=acme, name="Dana Whitfield", phone="+18055550142"))
        callers = ["+18055550142", "+18055550177", "+18055550188", "+18055550199"]
        for minutes, caller in zip((25, 12, 3, 30), callers, strict=True):
            at = runtime.now() - timedelta(minutes=minutes)
            t = lifecycle.open_ticket(s, policy=runtime.policy, now=at, priority="P3", source="voicemail",
                                      actor="support line", caller_number=caller, summary="Missed call")  # fmt: skip
            callbacks.join_line(s, t, at)
            numbers.append(int(t.number or 0))
        s.flush()
        first = callbacks.request_of(s, lifecycle.get_ticket(s, numbers[0]))
        assert first is not None
        first.state = callbacks.CALLING
        gone = callbacks.request_of(s, lifecycle.get_ticket(s, numbers[3]))
        assert gone is not None
        gone.state = callbacks.CONNECTED
    return numbers[:3]


@pytest.mark.parametrize("width", list(WIDTHS))
def test_the_callbacks_are_listed_first_come_first_served_above_the_queue(
    chromium: Any, live_console: str, browser_runtime: Runtime, password_hash: str, artifacts: Path, width: str
) -> None:
    numbers = seed_line(browser_runtime, password_hash)
    w, h = WIDTHS[width]
    context = chromium.new_context(viewport={"width": w, "height": h}, locale="en-US")
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        sign_in(page, live_console)
        section = page.locator("section.callbacks")
        section.wait_for()
        assert "3 in line" in section.locator("h2").inner_text()
        items = section.locator("li.callback")
        assert [int(n) for n in items.evaluate_all("els => els.map(e => e.dataset.number)")] == numbers
        assert items.locator(".place").all_inner_texts() == ["1", "2", "3"]
        assert items.locator(".waited").all_inner_texts() == ["waiting 25 min", "waiting 12 min", "waiting 3 min"]
        assert "Acme Dental" in items.nth(0).inner_text() and "calling" in items.nth(0).inner_text()
        assert items.nth(0).locator("button").count() == 0  # a call back under way is not started twice
        assert items.nth(1).locator("button:has-text('Call back now')").is_visible()
        # Above the queue table.
        table = page.locator("table.queue").bounding_box()
        box = section.bounding_box()
        assert box is not None and table is not None and box["y"] + box["height"] <= table["y"]
        page.screenshot(path=str(artifacts / f"callbacks-{width}.png"), full_page=True)
        assert overflow(page) <= 0
        if width == "phone":
            assert small_targets(page) == [] and measure.small_targets(page) == []
        # No coordinator phone configured here: the click says so, and the caller keeps their place.
        items.nth(1).locator("button").click()
        page.locator(".flash").first.wait_for()
        assert "No coordinator phone to ring" in page.locator(".flash").first.inner_text()
        assert page.locator("section.callbacks li.callback").count() == 3
    finally:
        context.close()


def test_a_callback_at_16_59_waits_in_line_with_a_voicemails_due_time(browser_runtime: Runtime) -> None:
    at = pacific("2026-11-18 16:59")
    with transaction(browser_runtime.sessions) as s:
        t = lifecycle.open_ticket(s, policy=browser_runtime.policy, now=at, priority="P3", source="voicemail",
                                  actor="support line", caller_number="+18055550142")  # fmt: skip
        assert callbacks.join_line(s, t, at) == 1
        assert t.milestone("first_response").due_at == pacific("2026-11-19 08:11")
        assert [w.place for w in callbacks.line(s, at + timedelta(minutes=5))] == [1]
