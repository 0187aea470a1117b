"""In Chromium: an admin finds a failed ConnectWise operation on the Integrations page and sends it again."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import runtime as rt_module
from integrations import bridge
from runtime import Runtime
from testing.connectwise_standin import ConnectWiseStandIn, running
from tests.web.conftest import PASSWORD
from ticketing import accounts, lifecycle
from ticketing.db import transaction
from ticketing.models import User

KEYS = {"company": "itechsol", "public_key": "pubBrowser1", "private_key": "privBrowser2", "client_id": "cid-3"}


@pytest.fixture
def standin(browser_runtime: Runtime, tmp_path: Path) -> Iterator[ConnectWiseStandIn]:
    """The stand-in serving, and the browser runtime configured for it (no company yet: creates fail)."""
    server = ConnectWiseStandIn(**KEYS, board_id=2)
    server.companies.clear()
    server.clock = browser_runtime.now
    with running(server) as url:
        path = tmp_path / "connectwise.toml"
        lines = [f'{k} = "{v}"' for k, v in KEYS.items()] + [
            f'site = "{url}"',
            "board_id = 2",
            "default_company_id = 5",
        ]
        path.write_text("\n".join(lines) + "\n")
        browser_runtime.settings = browser_runtime.settings.with_overrides(connectwise_file=path)
        rt_module.install(browser_runtime)
        try:
            yield server
        finally:
            rt_module.install(None)


def test_an_admin_sends_a_failed_operation_again(
    browser_runtime: Runtime, standin: ConnectWiseStandIn, live_console: str, page: Any
) -> None:
    runtime = browser_runtime
    with transaction(runtime.sessions) as s:
        s.add(
            User(
                username="ada",
                display_name="Ada Brooks",
                role=accounts.ADMIN,
                password_hash=accounts.hash_password(PASSWORD),
                active=True,
                created_at=runtime.now(),
                failed_logins=0,
            )
        )
        ticket = lifecycle.open_ticket(
            s,
            policy=runtime.policy,
            now=runtime.now(),
            priority="P2",
            source="manual",
            actor="ada",
            summary="Server down",
        )
        number = ticket.number
    bridge.sync(runtime=runtime, poll_changes=False)
    page.goto(f"{live_console}/integrations/connectwise")
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(re.compile(r"/integrations/connectwise$"))
    row = page.locator("table.psa-dead tbody tr[data-op]")
    assert row.count() == 1
    assert f"#{number}" in row.inner_text() and "company not found" in row.inner_text()
    standin.companies[5] = "Catchall"
    row.locator("button:has-text('Send again')").click()
    page.wait_for_selector("text=Sent again")
    bridge.sync(runtime=runtime, poll_changes=False)
    page.reload()
    page.wait_for_selector("td.empty:has-text('Nothing failed.')")
    assert [t["summary"] for t in standin.created()] == [f"#{number} Server down"]
    content = page.content()
    for secret in KEYS.values():
        assert secret not in content
