"""The console's Contacts page in a real headless Chromium: disable a contact who left, then enable it again."""

from __future__ import annotations

import re
import tomllib
from typing import Any

from runtime import Runtime
from settings import ROOT
from tests.web.conftest import PASSWORD
from ticketing import accounts, directory, lifecycle
from ticketing.db import transaction
from ticketing.models import User


def test_a_coordinator_disables_and_enables_a_contact_on_the_contacts_page(
    page: Any, live_console: str, browser_runtime: Runtime, password_hash: str
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
        directory.import_directory(s, tomllib.loads((ROOT / "config" / "directory.example.toml").read_text()))
    page.goto(f"{live_console}/contacts")
    page.fill("input[name=username]", "dana")
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(re.compile(r"/contacts"))
    row = page.locator("tr", has_text="Luis Ortega")
    assert row.locator("button", has_text="Invite to the portal").count() == 1
    row.locator("button", has_text="Disable").click()
    page.wait_for_selector("text=Luis Ortega disabled")
    row = page.locator("tr", has_text="Luis Ortega")
    assert row.get_attribute("data-disabled") is not None
    assert row.locator("button", has_text="Invite to the portal").count() == 0  # no sign-in link for a disabled one
    with browser_runtime.sessions() as s:
        assert lifecycle.find_caller(s, "+18055550143")[1] is None
    row.locator("button", has_text="Enable").click()
    page.wait_for_selector("text=Luis Ortega enabled")
    assert page.locator("tr", has_text="Luis Ortega").get_attribute("data-disabled") is None
    with browser_runtime.sessions() as s:
        assert lifecycle.find_caller(s, "+18055550143")[1] is not None
