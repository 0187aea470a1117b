"""The console in a real headless Chromium: sign in, the queue, a voicemail ticket with its audio, re-triage, refusals."""

from __future__ import annotations

import re
import wave
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from runtime import Runtime
from tests.conftest import pacific
from tests.web.conftest import PASSWORD, attach_voicemail
from ticketing import accounts, lifecycle, paging, voicemail
from ticketing.db import transaction
from ticketing.models import Client, Contact, User
from ticketing.sla import calendar_for

COUNTDOWN = re.compile(r"^(−)?(\d+d \d+h|\d+h \d{2}m|\d+m \d{2}s)( over)?$")


def seed(runtime: Runtime, wav: Path, password_hash: str) -> dict[str, int]:
    """A morning's queue: P1s paging and acknowledged, an at-risk P2, breached and waiting P3/P4s, a voicemail."""
    numbers: dict[str, int] = {}
    with transaction(runtime.sessions) as s:
        s.add(
            User(
                username="dana",
                display_name="Dana Reyes",
                role=accounts.COORDINATOR,
                password_hash=password_hash,
                active=True,
                created_at=runtime.now(),
                failed_logins=0,
            )
        )
        acme = Client(name="Acme Dental", main_number="+18055550100")
        harbor = Client(name="Harbor Logistics", main_number="+18055550200")
        s.add_all([acme, harbor, Client(name="Mesa Law Group", main_number="+18055550300")])
        s.flush()
        s.add(Contact(client=acme, name="Dana Whitfield", phone="+18055550142"))
        s.add(Contact(client=harbor, name="Luis Ortega", phone="+18055550211"))

        def make(key: str, at: str, priority: str, source: str, caller: str, summary: str, **extra: Any) -> None:
            t = lifecycle.open_ticket(
                s,
                policy=runtime.policy,
                now=pacific(at),
                priority=priority,
                source=source,
                actor="support line",
                caller_number=caller,
                summary=summary,
            )
            for name, value in extra.items():
                setattr(t, name, value)
            numbers[key] = int(t.number or 0)

        make(
            "voicemail",
            "2026-11-18 08:40",
            "P3",
            "voicemail",
            "+18055550142",
            "Voicemail from Dana Whitfield (Acme Dental)",
            call_sid="CA" + "a" * 32,
        )
        make("breached", "2026-11-18 09:05", "P3", "email", "+18055550377", "Outlook keeps asking for the password")
        make(
            "p2",
            "2026-11-18 09:50",
            "P2",
            "phone",
            "+18055550211",
            "Warehouse scanners cannot reach the WMS",
            assignee="Blake Chen",
        )
        make(
            "p1_paging",
            "2026-11-18 09:55",
            "P1",
            "voicemail",
            "+18055550311",
            "Critical voicemail: whole office offline",
            critical_requested=True,
        )
        make(
            "p1_acked",
            "2026-11-18 09:20",
            "P1",
            "voicemail",
            "+18055550219",
            "Critical voicemail: ransomware note on a PC",
            critical_requested=True,
        )
        make("waiting", "2026-11-17 15:10", "P4", "portal", "+18055550188", "New starter needs a laptop on Monday")
        make("p5", "2026-11-18 09:58", "P5", "phone", "+18055550399", "Add a shared mailbox for marketing")
        oncall = paging.oncall_from(runtime.settings.oncall_file)
        cal = calendar_for(runtime.policy)
        for key in ("p1_paging", "p1_acked"):
            t = lifecycle.get_ticket(s, numbers[key])
            opened = t.opened_at
            esc = paging.start_escalation(s, t, oncall=oncall, calendar=cal, now=opened)
            paging.claim_step(s, t, esc, 0, oncall=oncall, now=opened)
        call = "CA" + "a" * 32
        for minute, event, detail in (
            ("08:39", "incoming", {"business_hours": True}),
            ("08:39", "menu", {"digits": "1", "route": "coordinator"}),
            ("08:40", "coordinator ring", {"status": "no-answer", "accepted": False}),
            ("08:40", "voicemail", {"critical": False}),
            ("08:41", "recording status", {"status": "completed", "recording_sid": "RE…"}),
        ):
            voicemail.log_call_event(s, call, event, pacific(f"2026-11-18 {minute}"), **detail)
        paging.acknowledge(s, numbers["p1_acked"], "Alex Rivera", pacific("2026-11-18 09:24"), "sms", person="alex")
        lifecycle.pause_sla(
            s, lifecycle.get_ticket(s, numbers["waiting"]), actor="Dana Reyes", now=pacific("2026-11-18 08:15")
        )
    attach_voicemail(
        runtime,
        numbers["voicemail"],
        wav,
        transcript=_VOICEMAIL,
        transcript_confidence=0.91,
        transcript_engine="faster-whisper (tiny.en)",
        transcript_language="en",
        transcript_pass="first",
        # The second reading heard the callback number otherwise: the page names the number to check.
        transcript_passes=[
            {"pass": "first", "text": _VOICEMAIL},
            {"pass": "numbers", "text": _VOICEMAIL.replace("805 555 0142", "805 555 0124")},
        ],
        audio_seconds=_seconds(wav),
        hints={
            "summary": "File server down, nobody in the office can work",
            "callback_number": "+18055550142",
            "caller_name": "Dana",
            "organisation": "Acme Dental",
            "suggested_priority": "P2",
            "cues": ["server down", "whole office"],
        },
    )
    return numbers


_VOICEMAIL = (
    "Hi, this is Dana from Acme Dental. Our file server is down and nobody in the office can work. "
    "Please call me back at 805 555 0142."
)


def _seconds(wav: Path) -> float:
    with wave.open(str(wav)) as w:
        return w.getnframes() / w.getframerate()


def sign_in(page: Any, base: str) -> None:
    """Sign in through the form, as a person would."""
    page.goto(f"{base}/queue")
    assert "/login" in page.url
    page.fill("input[name=username]", "dana")
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(re.compile(r"/queue"))


def test_a_coordinator_signs_in_works_the_queue_and_reviews_a_voicemail(
    page: Any, live_console: str, browser_runtime: Runtime, voicemail_wav: Path, artifacts: Path, password_hash: str
) -> None:
    numbers = seed(browser_runtime, voicemail_wav, password_hash)
    sign_in(page, live_console)

    # The queue in the policy's order: P1 first, then by priority, first come first served within each.
    page.select_option("select[name=sort]", "priority")
    page.wait_for_url(re.compile(r"sort=priority"))
    rows = page.locator("table.queue tbody tr.row")
    order = [int(n) for n in rows.evaluate_all("rows => rows.map(r => r.dataset.number)")]
    expected = [numbers[k] for k in ("p1_acked", "p1_paging", "p2", "voicemail", "breached", "waiting", "p5")]
    assert order == expected
    # Live countdowns, with breached and at-risk rows marked.
    first = page.locator(f"tr[data-number='{numbers['p1_paging']}'] .cd").first
    assert COUNTDOWN.match(first.inner_text().strip())
    breached = page.locator(f"tr[data-number='{numbers['breached']}']")
    assert "w-breached" in (breached.get_attribute("class") or "")
    assert "over" in breached.locator(".cd").inner_text()
    assert "w-at-risk" in (page.locator(f"tr[data-number='{numbers['p2']}']").get_attribute("class") or "")
    assert page.locator(f"tr[data-number='{numbers['p1_acked']}'] .pg-ack").inner_text().strip() == "✓ Alex Rivera"
    assert "Alex Rivera" in page.locator(f"tr[data-number='{numbers['p1_paging']}'] .pg-paging").inner_text()
    # The countdown ticks in the browser (server time + elapsed browser time).
    before = first.inner_text()
    page.wait_for_function(
        "([sel, text]) => document.querySelector(sel).textContent !== text",
        arg=[f"tr[data-number='{numbers['p1_paging']}'] .cd", before],
        timeout=5000,
    )
    page.screenshot(path=str(artifacts / "queue.png"), full_page=True)

    # Open the voicemail ticket: transcript beside the player, hints, timeline.
    with page.expect_response(lambda r: r.url.endswith("/audio")) as audio_response:
        page.click(f"tr[data-number='{numbers['voicemail']}'] td.c-num a")
        page.wait_for_url(re.compile(rf"/tickets/{numbers['voicemail']}$"))
    assert audio_response.value.status in (200, 206)
    assert "file server is down" in page.locator("#transcript").inner_text()
    assert "(805) 555-0142" in page.locator("dl.hints").inner_text()

    # The audio element loads the real WAV through the authorised route and reports its duration.
    page.wait_for_function("() => document.getElementById('vm-audio').readyState >= 1")
    duration = page.evaluate("() => document.getElementById('vm-audio').duration")
    assert duration == pytest.approx(_seconds(voicemail_wav), abs=0.1)
    # Seeking needs range requests: jump near the end and play.
    page.evaluate(
        "() => { const a = document.getElementById('vm-audio'); a.muted = true; a.currentTime = 2; return a.play(); }"
    )
    page.wait_for_function("() => document.getElementById('vm-audio').currentTime > 2.2", timeout=8000)

    # Re-triage to P2 with a reason: the deadlines change on the page.
    resolved_due = page.locator("[data-milestone=resolved] [data-due-text]")
    due_before = resolved_due.inner_text()
    page.select_option("#act-priority select[name=priority]", "P2")
    page.fill("#act-priority input[name=reason]", "Whole office down: nobody can work")
    page.click("#act-priority button")
    page.wait_for_selector(".flash-ok")
    assert "Priority changed to P2 - High" in page.locator(".flash-ok").inner_text()
    due_after = resolved_due.inner_text()
    assert due_after != due_before
    assert page.locator("h1 .prio").inner_text() == "P2"
    assert "priority changed" in page.locator("ol.timeline").inner_text()
    page.screenshot(path=str(artifacts / "ticket.png"), full_page=True)

    # A P1 being paged: who was paged, and the acknowledge button.
    page.goto(f"{live_console}/tickets/{numbers['p1_paging']}")
    assert page.locator(".paging-panel button:has-text('Acknowledge page')").count() == 1
    page.screenshot(path=str(artifacts / "ticket-p1.png"), full_page=True)

    # Signing out ends the session: the queue and the audio are refused again.
    page.click("button:has-text('Sign out')")
    page.wait_for_url(re.compile(r"/login"))
    page.goto(f"{live_console}/queue")
    assert "/login" in page.url
    response = page.request.get(f"{live_console}/tickets/{numbers['voicemail']}/audio")
    assert response.status == 401


def test_without_a_session_the_browser_gets_only_the_sign_in_page(
    page: Any, live_console: str, browser_runtime: Runtime, voicemail_wav: Path, password_hash: str
) -> None:
    numbers = seed(browser_runtime, voicemail_wav, password_hash)
    for path in ("/queue", f"/tickets/{numbers['voicemail']}", "/oncall", "/events", "/tickets/new"):
        page.goto(f"{live_console}{path}")
        assert "/login" in page.url, path
        assert page.locator("input[name=password]").count() == 1
    assert page.request.get(f"{live_console}/tickets/{numbers['voicemail']}/audio").status == 401
    assert page.request.get(f"{live_console}/queue/rows").status == 401
    # A wrong password is refused with a message, and no session cookie is handed out.
    page.fill("input[name=username]", "dana")
    page.fill("input[name=password]", "not the password")
    page.click("button:has-text('Sign in')")
    assert "Wrong username or password" in page.locator(".flash-error").inner_text()
    # Signing in goes back where the browser was headed; the cookie is Secure, HTTP-only and SameSite=Lax.
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(re.compile(r"/tickets/new$"))
    page.goto(f"{live_console}/queue")
    cookie = {c["name"]: c for c in page.context.cookies()}["__Host-supportline"]
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    # The page refreshes itself: a new ticket appears without a reload.
    with transaction(browser_runtime.sessions) as s:
        t = lifecycle.open_ticket(
            s,
            policy=browser_runtime.policy,
            now=browser_runtime.now() - timedelta(minutes=1),
            priority="P1",
            source="phone",
            actor="tests",
            caller_number="+18055550999",
            summary="Phones down at HQ",
        )
        new_number = t.number
    page.wait_for_selector(f"tr[data-number='{new_number}']", timeout=15_000)
