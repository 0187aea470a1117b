"""Every portal page measured in real Chromium at a phone's 390x844: each visible link, button, field and select is at
least 44x44 CSS px (a radio button through its label), nothing scrolls sideways, the header stays on screen.
Screenshots go to test-artifacts/phone-measure-portal-*.png."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime import Runtime
from tests.web.measure import PHONE, measure
from tests.web.portal.conftest import link_path, seed_directory
from tests.web.portal.test_browser import no_word_is_split
from ticketing import portal
from ticketing.db import transaction
from ticketing.models import Contact
from web.portal.auth import link_limits

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360f8cfc0f01f0005000201e2"
    "21bc330000000049454e44ae426082"
)


@pytest.fixture
def live_portal(browser_runtime: Runtime) -> Iterator[str]:
    """The app over real HTTP; its base URL."""
    import threading

    from werkzeug.serving import make_server

    from web.app import create_app

    server = make_server("127.0.0.1", 0, create_app(runtime=browser_runtime), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


def sign_in_link(runtime: Runtime, contact_id: int) -> str:
    """A live sign-in link for a contact, as the coordinator's invitation mails it."""
    with transaction(runtime.sessions) as s:
        contact = s.get(Contact, contact_id)
        assert contact is not None
        link = portal.invite(s, contact, now=runtime.now(), limits=link_limits(runtime), actor="Dana Reyes")
        armed = portal.arm_link(s, link.id, now=runtime.now())
        assert armed is not None
        return link_path(armed[1])


def test_every_portal_page_has_44_px_targets_and_no_sideways_scroll_on_a_phone(
    chromium: Any, live_portal: str, browser_runtime: Runtime, artifacts: Path, tmp_path: Path
) -> None:
    directory = seed_directory(browser_runtime)
    context = chromium.new_context(viewport=PHONE, locale="en-US", has_touch=True, is_mobile=True)
    context.set_default_timeout(10_000)
    page = context.new_page()
    problems: list[str] = []
    try:
        page.goto(f"{live_portal}/portal/sign-in")
        problems += measure(page, "portal-sign-in", artifacts)
        page.goto(live_portal + sign_in_link(browser_runtime, directory.dana))
        problems += measure(page, "portal-confirm", artifacts)
        page.click("button:has-text('Sign in')")
        page.wait_for_url(re.compile(r"/portal/$"))
        problems += measure(page, "portal-no-tickets", artifacts)

        page.goto(f"{live_portal}/portal/tickets/new")
        problems += measure(page, "portal-new", artifacts)
        page.fill("#summary", "Nobody can open the patient records")
        page.fill("#description", "The practice software says 'database unavailable' on every PC since 9:45.")
        page.check("input[name=affected][value=everyone]")
        page.check("input[name=workaround][value=no]")
        page.check("input[name=deadline][value=no]")
        page.wait_for_selector("#preview [data-priority]:has-text('P1 - Critical')")
        photo = tmp_path / ("front-desk-screen-" + "x" * 60 + ".png")
        photo.write_bytes(PNG)
        page.set_input_files("#attachments", str(photo))
        problems += measure(page, "portal-new-filled", artifacts)
        page.click("button:has-text('Submit ticket')")
        page.wait_for_selector(".note.good")
        problems += measure(page, "portal-ticket", artifacts)
        assert page.locator("ul.files a").count() == 1

        page.click("nav a:has-text('My tickets')")
        page.wait_for_url(re.compile(r"/portal/$"))
        problems += measure(page, "portal-tickets", artifacts)
        no_word_is_split(page, ".ticket-row")  # the bigger links leave the list's cards as they were
    finally:
        context.close()
    assert problems == [], "\n".join(problems)
