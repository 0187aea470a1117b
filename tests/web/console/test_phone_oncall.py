"""My incidents: the on-call page opens on the P1s paging the signed-in engineer or acknowledged by them (the
console account mapped to its on-call person), then the rota; at 390 px its tables fit without sideways scrolling."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from runtime import Runtime
from tests.conftest import pacific
from tests.web.conftest import PASSWORD, Console
from tests.web.console.test_browser import seed
from tests.web.measure import PHONE, box, scroll_width, sideways_scrollers, small_targets, stays_on_screen
from ticketing import accounts, lifecycle, paging
from ticketing.db import transaction
from ticketing.models import Status, User
from ticketing.oncall import parse_oncall
from ticketing.sla import calendar_for

ROTA = {
    "people": {
        "alex": {"name": "Alex Rivera", "mobile": "+18055550160"},
        "blake": {"name": "Blake  Chen", "mobile": "+18055550161"},
    },
    "teams": {"ert": {"name": "ERT", "members": ["alex", "blake"]}},
    "policies": {"p": {"name": "P", "fallback": "alex", "steps": [{"team": "ert"}]}},
    "routing": {"business_hours": "p", "after_hours": "p"},
}


def add_user(runtime: Runtime, username: str, name: str, password_hash: str) -> None:
    """An engineer's console account."""
    with transaction(runtime.sessions) as s:
        s.add(
            User(
                username=username,
                display_name=name,
                role=accounts.ENGINEER,
                password_hash=password_hash,
                active=True,
                created_at=runtime.now(),
                failed_logins=0,
            )
        )


def test_an_account_is_the_on_call_person_of_its_username_or_else_of_its_name() -> None:
    config = parse_oncall(ROTA)
    assert config.person_for_user("alex", "Someone Else") == config.people["alex"]
    assert config.person_for_user(" ALEX ", "") == config.people["alex"]
    assert config.person_for_user("bchen", "blake chen") == config.people["blake"]
    assert config.person_for_user("bchen", "Blake\r\nChen") == config.people["blake"]
    assert config.person_for_user("dana", "Dana Reyes") is None
    assert config.person_for_user("", "") is None
    assert config.person_for_user("nobody", "+18055550160") is None  # a number is not a name


def test_whom_an_escalation_pages_next_and_when(runtime: Runtime) -> None:
    config = parse_oncall(ROTA)
    positions = config.policies["p"].positions()  # round 1, round 2, then the fallback
    due = pacific("2026-11-18 10:00")
    first = paging.next_page(config, positions, state="paging", next_position=1, next_due_at=due)
    assert first is not None and [p.key for p in first.people] == ["alex", "blake"]
    assert first.at == due and not first.fallback
    last = paging.next_page(config, positions, state="paging", next_position=2, next_due_at=due)
    assert last is not None and last.fallback and [p.key for p in last.people] == ["alex"]
    assert paging.next_page(config, positions, state="paging", next_position=3, next_due_at=due) is None
    assert paging.next_page(config, positions, state="acknowledged", next_position=1, next_due_at=due) is None
    assert paging.next_page(config, positions, state="paging", next_position=1, next_due_at=None) is None
    assert paging.next_page(config, positions, state="paging", next_position=-1, next_due_at=due) is None


def test_incidents_for_a_person_are_the_open_p1s_paging_them_then_those_they_acknowledged(
    runtime: Runtime, open_ticket: Any
) -> None:
    config = paging.oncall_from(runtime.settings.oncall_file)
    cal = calendar_for(runtime.policy)
    now = runtime.now()
    ago = {"acked": 30, "older": 20, "newer": 10, "resolved": 5, "unpaged": 3, "p2": 2}
    numbers = {key: open_ticket(priority="P2" if key == "p2" else "P1", caller_number="+18055550142") for key in ago}
    with transaction(runtime.sessions) as s:
        for key, minutes in ago.items():
            t = lifecycle.get_ticket(s, numbers[key])
            at = now - timedelta(minutes=minutes)
            esc = paging.start_escalation(s, t, oncall=config, calendar=cal, now=at)
            if key != "unpaged":  # its first step has not run yet: it paged nobody so far
                paging.claim_step(s, t, esc, 0, oncall=config, now=at)
    with runtime.sessions() as s:
        escalation = paging.escalation_of(s, lifecycle.get_ticket(s, numbers["newer"]))
        assert escalation is not None
        paged = sorted({p.person for p in escalation.pages})
    who = paged[0]
    with transaction(runtime.sessions) as s:
        paging.acknowledge(s, numbers["acked"], "on call", now, "sms", person=who)
        t = lifecycle.get_ticket(s, numbers["resolved"])
        lifecycle.set_status(s, t, Status.RESOLVED, actor="tests", now=now, policy=runtime.policy)
    with runtime.sessions() as s:
        mine = paging.incidents_for(s, who)
        assert [(i.ticket.number, i.paging) for i in mine] == [
            (numbers["newer"], True),
            (numbers["older"], True),
            (numbers["acked"], False),
        ]
        for other in paged[1:]:  # paged too, but the acknowledged one is not theirs
            assert [i.ticket.number for i in paging.incidents_for(s, other)] == [numbers["newer"], numbers["older"]]
        assert paging.incidents_for(s, "nobody") == [] and paging.incidents_for(s, "") == []


def test_the_on_call_page_says_when_the_account_is_nobody_on_call(console: Console) -> None:
    html = console.get("/oncall").get_data(as_text=True)
    assert "My incidents" in html and "Dana Reyes is not a person of the on-call file" in html
    assert html.index("My incidents") < html.index("On call now")


def test_my_incidents_lists_the_signed_in_engineers_p1_first_on_a_phone(
    chromium: Any, live_console: str, browser_runtime: Runtime, voicemail_wav: Path, artifacts: Path, password_hash: str
) -> None:
    numbers = seed(browser_runtime, voicemail_wav, password_hash)  # both P1s paged the team (Alex, Blake, Casey)
    add_user(browser_runtime, "alex", "Alex R.", password_hash)  # Alex by username; Alex acknowledged p1_acked
    add_user(browser_runtime, "bchen", "Blake Chen", password_hash)  # Blake by name
    add_user(browser_runtime, "drew", "Drew Patel", password_hash)  # on call, never paged
    expected = {
        "alex": [(numbers["p1_paging"], "paging"), (numbers["p1_acked"], "acknowledged")],
        "bchen": [(numbers["p1_paging"], "paging")],  # p1_acked is Alex's: he acknowledged it
        "drew": [],
    }
    for username, rows in expected.items():
        context = chromium.new_context(viewport=PHONE, locale="en-US", has_touch=True, is_mobile=True)
        context.set_default_timeout(10_000)
        page = context.new_page()
        try:
            page.goto(f"{live_console}/oncall")
            page.fill("input[name=username]", username)
            page.fill("input[name=password]", PASSWORD)
            page.click("button:has-text('Sign in')")
            page.wait_for_url(re.compile(r"/oncall$"))
            page.screenshot(path=str(artifacts / f"phone-my-incidents-{username}.png"), full_page=True)
            first = page.locator("main section").first
            assert first.locator("h1").inner_text() == "My incidents"
            shown = [
                (int(row.get_attribute("data-number") or 0), row.locator(".inc-state b").inner_text())
                for row in first.locator("li.incident-row").all()
            ]
            assert shown == rows
            if rows:
                link = first.locator("li.incident-row a").first
                assert link.get_attribute("href") == f"/tickets/{rows[0][0]}"
                assert box(page, "li.incident-row a")["y"] < PHONE["height"]
            else:
                assert "No P1 is paging Drew Patel" in first.inner_text()
            assert small_targets(page) == [] and sideways_scrollers(page) == []
            assert scroll_width(page) <= PHONE["width"] and stays_on_screen(page, "header.topbar")
            headers = page.locator("table.grid th")
            assert headers.count() and all(not h.is_visible() for h in headers.all())  # stacked: a label per value
            assert "Fallback" in page.locator("td[data-label=Fallback]").first.evaluate(
                "td => getComputedStyle(td, '::before').content"
            )
        finally:
            context.close()


def test_on_a_desk_the_on_call_tables_stay_tables_under_my_incidents(
    page: Any, live_console: str, browser_runtime: Runtime, voicemail_wav: Path, artifacts: Path, password_hash: str
) -> None:
    numbers = seed(browser_runtime, voicemail_wav, password_hash)
    add_user(browser_runtime, "alex", "Alex Rivera", password_hash)
    page.goto(f"{live_console}/oncall")
    page.fill("input[name=username]", "alex")
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(re.compile(r"/oncall$"))
    page.screenshot(path=str(artifacts / "desktop-my-incidents-alex.png"), full_page=True)
    assert page.locator("li.incident-row").first.get_attribute("data-number") == str(numbers["p1_paging"])
    displays = page.evaluate("() => [...document.querySelectorAll('table.grid')].map(t => getComputedStyle(t).display)")
    assert displays and set(displays) == {"table"}
    assert all(h.is_visible() for h in page.locator("table.grid th").all())
    # Each header sits above its column.
    first = page.locator("table.grid").last
    header, cell = first.locator("th").nth(1).bounding_box(), first.locator("td").nth(1).bounding_box()
    assert header is not None and cell is not None and abs(header["x"] - cell["x"]) < 1
