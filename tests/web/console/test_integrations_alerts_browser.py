"""The monitoring alerts page in Chromium: an admin issues a key, a tool sends with it, the admin revokes it."""

from __future__ import annotations

import re
from typing import Any

import requests

from runtime import Runtime
from tests.web.conftest import PASSWORD
from ticketing import accounts
from ticketing.db import transaction
from ticketing.models import Client, User


def test_an_admin_issues_and_revokes_a_routing_key_in_the_browser(
    page: Any, live_console: str, browser_runtime: Runtime, password_hash: str
) -> None:
    with transaction(browser_runtime.sessions) as s:
        s.add(User(username="ada", display_name="Ada Brooks", role=accounts.ADMIN, password_hash=password_hash,
                   active=True, created_at=browser_runtime.now(), failed_logins=0))  # fmt: skip
        s.add(Client(name="Harbor Logistics"))
    page.goto(f"{live_console}/integrations/alerts")
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(re.compile(r"/integrations/alerts$"))
    page.select_option("select[name=client]", label="Harbor Logistics")
    page.fill("input[name=name]", "N-able RMM")
    page.click("button:has-text('Issue key')")
    key = page.locator("#issued-key").inner_text().strip()
    assert re.fullmatch(r"[0-9a-f]{32}", key)
    event = {"routing_key": key, "event_action": "trigger",
             "payload": {"summary": "Printer offline", "source": "prn-3", "severity": "info"}}  # fmt: skip
    url = f"{live_console}/integrations/events/v2/enqueue"
    assert requests.post(url, json=event, timeout=10).status_code == 202
    page.goto(f"{live_console}/integrations/alerts")
    row = page.locator("table.grid tbody tr").first
    assert "Harbor Logistics" in row.inner_text() and "N-able RMM" in row.inner_text()
    assert "never" not in row.inner_text()  # its last use is shown
    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("button:has-text('Revoke')").click()
    page.wait_for_selector("text=revoked")
    assert requests.post(url, json=event, timeout=10).json()["errors"] == ["Invalid routing key"]
