"""The portal in real Chromium at phone (390x844) and desktop (1440x900) sizes: the whole magic-link flow
through a real SMTP server (aiosmtpd) and the real RQ job, the triage form's live preview, submit with a file,
the list, a reply; no horizontal scroll, labelled controls, keyboard use, text contrast. Screenshots go to
test-artifacts/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from rq import SimpleWorker
from sqlalchemy import select

import runtime as rt
from runtime import Runtime
from tests.conftest import SmtpInbox
from tests.web.portal.conftest import LINK, seed_directory
from ticketing.models import OutboxMessage, Ticket
from workers.dispatch import dispatch_pending

SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1440, "height": 900}}
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360f8cfc0f01f0005000201e2"
    "21bc330000000049454e44ae426082"
)


@pytest.fixture
def smtp(smtp_server: tuple[Controller, SmtpInbox]) -> tuple[int, SmtpInbox]:
    """A real SMTP server on a free port."""
    controller, inbox = smtp_server
    return controller.port, inbox


@pytest.fixture
def live_portal(browser_runtime: Runtime, smtp: tuple[int, SmtpInbox], redis_url: str) -> Iterator[str]:
    """The app over real HTTP; sign-in links point at it and mail goes to the SMTP server."""
    import threading

    from werkzeug.serving import make_server

    from web.app import create_app

    app = create_app(runtime=browser_runtime)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    browser_runtime.settings = browser_runtime.settings.with_overrides(
        smtp_url=f"smtp+insecure://127.0.0.1:{smtp[0]}", portal_base_url=base, redis_url=redis_url
    )
    yield base
    server.shutdown()
    thread.join(timeout=5)


def run_worker(runtime: Runtime) -> None:
    """Hand the outbox to Redis and run the queued jobs, as the worker process does."""
    rt.install(runtime)
    try:
        dispatch_pending(runtime)
        SimpleWorker([runtime.queue()], connection=runtime.redis).work(burst=True)
    finally:
        rt.install(None)


def no_horizontal_scroll(page: Any) -> None:
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"page is {width[0]} px wide in a {width[1]} px window ({page.url})"


def every_control_is_labelled(page: Any) -> None:
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), textarea, select')]
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
            .map(el => el.name)"""
    )
    assert unlabelled == []


SPLIT_WORDS = """(selector) => {
  const out = [];
  for (const root of document.querySelectorAll(selector)) {
    const walk = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let node; (node = walk.nextNode());) {
      for (const m of node.textContent.matchAll(/\\S+/g)) {
        const r = document.createRange();
        r.setStart(node, m.index); r.setEnd(node, m.index + m[0].length);
        const lines = new Set([...r.getClientRects()].filter(b => b.width > 0).map(b => Math.round(b.top)));
        if (lines.size > 1) out.push(m[0]);
      }
    }
  }
  return out;
}"""


def no_word_is_split(page: Any, selector: str) -> None:
    """No word in ``selector`` is broken across lines (e.g. 'Resoluti / on')."""
    assert page.locator(selector).count() > 0, selector
    split = page.evaluate(SPLIT_WORDS, selector)
    assert split == [], f"split across lines in {selector}: {split}"


CONTRAST = """(selectors) => {
  const lum = (rgb) => { const c = rgb.map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]; };
  const parse = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const bg = (el) => { for (; el; el = el.parentElement) { const c = parse(getComputedStyle(el).backgroundColor);
    if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3); } return [255, 255, 255]; };
  const out = [];
  for (const sel of selectors) for (const el of document.querySelectorAll(sel)) {
    const fg = parse(getComputedStyle(el).color).slice(0, 3); const b = bg(el);
    const [l1, l2] = [lum(fg), lum(b)].sort((a, b) => b - a);
    out.push([sel, Math.round(((l1 + 0.05) / (l2 + 0.05)) * 100) / 100]);
  }
  return out;
}"""


def contrast_is_enough(page: Any, selectors: list[str]) -> None:
    ratios = page.evaluate(CONTRAST, selectors)
    assert ratios, selectors
    low = [(sel, ratio) for sel, ratio in ratios if ratio < 4.5]
    assert low == [], low


@pytest.mark.parametrize("size", list(SIZES))
def test_a_client_signs_in_by_emailed_link_submits_a_p1_with_a_screenshot_follows_it_and_replies(
    size: str,
    chromium: Any,
    live_portal: str,
    browser_runtime: Runtime,
    smtp: tuple[int, SmtpInbox],
    artifacts: Path,
    tmp_path: Path,
) -> None:
    seed_directory(browser_runtime)
    _, inbox = smtp
    context = chromium.new_context(viewport=SIZES[size], locale="en-US")
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        # Sign in: the portal sends the browser to the sign-in page; the form works from the keyboard.
        page.goto(f"{live_portal}/portal/")
        assert "/portal/sign-in" in page.url
        every_control_is_labelled(page)
        contrast_is_enough(page, ["main p", "label", "button.primary", ".foot"])
        no_horizontal_scroll(page)
        page.screenshot(path=str(artifacts / f"portal-sign-in-{size}.png"), full_page=True)
        page.focus("#email")
        page.keyboard.type("luis@acme-dental.example")
        page.keyboard.press("Enter")
        page.wait_for_selector("h1:has-text('Check your email')")
        no_horizontal_scroll(page)

        # The worker's job mails the link through the real SMTP server.
        assert inbox.messages == []
        run_worker(browser_runtime)
        assert len(inbox.messages) == 1
        mail = inbox.messages[0]
        assert "luis@acme-dental.example" in mail["To"]
        link = LINK.search(mail.get_content())
        assert link is not None and link.group(0).startswith(f"{live_portal}/portal/sign-in/link?token=")

        # The link opens a confirm page; only its button signs in.
        page.goto(link.group(0))
        page.wait_for_selector("h1:has-text('Welcome, Luis Ortega')")
        assert not any(c["name"] == "__Host-portal" for c in context.cookies())
        page.screenshot(path=str(artifacts / f"portal-confirm-{size}.png"), full_page=True)
        page.click("button:has-text('Sign in')")
        page.wait_for_url(re.compile(r"/portal/$"))
        cookie = {c["name"]: c for c in context.cookies()}["__Host-portal"]
        assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        assert "No tickets yet" in page.inner_text("main")

        # The triage form: the priority and its targets update as the client answers.
        page.click("a:has-text('Submit a new ticket')")
        page.wait_for_url(re.compile(r"/portal/tickets/new$"))
        every_control_is_labelled(page)
        assert page.locator("#preview").is_hidden()
        page.fill("#summary", "Nobody can open the patient records")
        page.fill("#description", "The practice software says 'database unavailable' on every PC since 9:45.")
        page.check("input[name=affected][value=several]")
        page.check("input[name=workaround][value=no]")
        # Keyboard: focus the "No" deadline answer and select it with the space bar.
        page.focus("input[name=deadline][value=no]")
        page.keyboard.press("Space")
        assert page.is_checked("input[name=deadline][value=no]")
        page.wait_for_selector("#preview [data-priority]:has-text('P2 - High')")
        no_word_is_split(page, "#preview table")
        assert page.locator("#preview [data-paging]").count() == 0
        page.check("input[name=affected][value=everyone]")
        page.wait_for_selector("#preview [data-priority]:has-text('P1 - Critical')")
        notice = page.inner_text("#preview [data-paging]")
        assert "pages our on-call emergency response team at once, exactly as pressing 2" in notice
        assert "by 10:12" in page.inner_text("#preview table")
        no_word_is_split(page, "#preview table")
        contrast_is_enough(
            page, ["legend", ".choice span", "#preview .prio", "#preview [data-paging]", "button.primary"]
        )
        no_horizontal_scroll(page)
        screenshot = tmp_path / "error.png"
        screenshot.write_bytes(PNG)
        page.set_input_files("#attachments", str(screenshot))
        page.screenshot(path=str(artifacts / f"portal-new-ticket-{size}.png"), full_page=True)
        page.click("button:has-text('Submit ticket')")
        page.wait_for_selector(".note.good:has-text('your ticket is submitted')")
        number = int(re.search(r"/portal/tickets/(\d+)", page.url).group(1))  # type: ignore[union-attr]
        assert "P1 - Critical" in page.inner_text("dl.facts")
        assert "first response by 10:12" in page.inner_text("dl.facts")
        assert page.locator("ul.files a:has-text('error.png')").count() == 1
        no_horizontal_scroll(page)
        page.screenshot(path=str(artifacts / f"portal-ticket-{size}.png"), full_page=True)
        with browser_runtime.sessions() as s:
            t = s.scalars(select(Ticket).where(Ticket.number == number)).one()
            assert (t.source, t.priority, t.contact.name) == ("portal", "P1", "Luis Ortega")
            keys = set(s.scalars(select(OutboxMessage.key)))
        assert f"page:{number}" in keys  # on-call is paged, as for press 2

        # A reply from the keyboard-reachable box lands on the timeline.
        page.fill("#reply-text", "Front desk PC shows the same error.")
        page.click("button:has-text('Send reply')")
        page.wait_for_selector(".note.good:has-text('Your reply was added')")
        assert "Front desk PC shows the same error." in page.inner_text("ol.timeline")

        # The list: number, summary, priority, status, next commitment, last update.
        page.click("nav a:has-text('My tickets')")
        row = page.locator(f"li[data-number='{number}']")
        text = row.inner_text()
        for part in (
            f"#{number}",
            "Nobody can open the patient records",
            "P1 - Critical",
            "Received",
            "first response by 10:12",
            "updated 10:00",
        ):
            assert part in text, part
        no_horizontal_scroll(page)
        contrast_is_enough(page, [".ticket-row .summary", ".ticket-row .meta", ".prio", ".bar a"])
        page.screenshot(path=str(artifacts / f"portal-tickets-{size}.png"), full_page=True)

        # Signing out: the portal asks for a new link again.
        page.click("button:has-text('Sign out')")
        page.wait_for_url(re.compile(r"/portal/sign-in"))
        page.goto(f"{live_portal}/portal/tickets/{number}")
        assert "/portal/sign-in" in page.url
    finally:
        context.close()
