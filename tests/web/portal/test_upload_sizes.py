"""Files up to the documented cap go through the portal from a real browser; a larger one gets a clear message."""

from __future__ import annotations

import hashlib
import random
import re
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller  # noqa: F401 - the smtp fixture's type
from sqlalchemy import select

from runtime import Runtime
from tests.conftest import SmtpInbox
from tests.web.portal.conftest import LINK, seed_directory
from tests.web.portal.test_browser import live_portal, run_worker, smtp  # noqa: F401 - the fixtures
from ticketing.models import Ticket, TicketAttachment

MB = 1024 * 1024


def _file(folder: Path, name: str, size: int) -> Path:
    """Random bytes, so line breaks (which Werkzeug's parser treats specially) fall anywhere, as in real files."""
    path = folder / name
    path.write_bytes(random.Random(size).randbytes(size))
    return path


def _sign_in(page: Any, base: str, runtime: Runtime, inbox: SmtpInbox, email: str) -> None:
    page.goto(f"{base}/portal/sign-in")
    page.fill("#email", email)
    page.click("button:has-text('Email me a sign-in link')")
    page.wait_for_selector("h1:has-text('Check your email')")
    run_worker(runtime)
    link = LINK.search(inbox.messages[-1].get_content())
    assert link is not None
    page.goto(link.group(0))
    page.click("button:has-text('Sign in')")
    page.wait_for_url(re.compile(r"/portal/$"))


def _fill_request(page: Any, base: str) -> None:
    page.goto(f"{base}/portal/tickets/new")
    page.fill("#summary", "Scanner writes broken PDFs")
    page.check("input[name=affected][value=me]")
    page.check("input[name=workaround][value=yes]")
    page.check("input[name=deadline][value=no]")


def test_a_client_attaches_4_and_9_mb_files_from_a_browser_and_an_11_mb_file_is_refused_with_a_clear_message(
    chromium: Any,
    live_portal: str,  # noqa: F811
    browser_runtime: Runtime,
    smtp: tuple[int, SmtpInbox],  # noqa: F811
    tmp_path: Path,
) -> None:
    seed_directory(browser_runtime)
    assert browser_runtime.settings.portal_attachment_max_bytes == 10 * MB  # the cap the page states
    four, nine, eleven = (_file(tmp_path, f"scan-{n}mb.pdf", n * MB) for n in (4, 9, 11))
    context = chromium.new_context(viewport={"width": 1440, "height": 900}, locale="en-US")
    context.set_default_timeout(60_000)  # megabytes through a loaded machine
    page = context.new_page()
    try:
        _sign_in(page, live_portal, browser_runtime, smtp[1], "luis@acme-dental.example")
        assert "10 MB" in page.goto(f"{live_portal}/portal/tickets/new").text()  # type: ignore[union-attr]

        # Within the cap: a 4 MB and a 9 MB file arrive whole.
        _fill_request(page, live_portal)
        page.set_input_files("#attachments", [str(four), str(nine)])
        page.click("button:has-text('Submit ticket')")
        page.wait_for_selector(".note.good:has-text('your ticket is submitted')")
        assert page.locator("ul.files a:has-text('scan-9mb.pdf')").count() == 1
        number = page.url.split("/portal/tickets/")[1].split("?")[0]

        # Over the cap: the form comes back saying which file and why, and nothing is created.
        _fill_request(page, live_portal)
        page.set_input_files("#attachments", str(eleven))
        page.click("button:has-text('Submit ticket')")
        page.wait_for_selector("text=scan-11mb.pdf is larger than 10 MB")
        assert "please choose your files again" in page.inner_text("main")
        assert page.input_value("#summary") == "Scanner writes broken PDFs"
        with browser_runtime.sessions() as s:
            assert len(s.scalars(select(Ticket)).all()) == 1  # only the first request

        # And a 9 MB file with a reply.
        page.goto(f"{live_portal}/portal/tickets/{number}")
        page.fill("#reply-text", "The same scan, from the other scanner.")
        page.set_input_files("#reply-files", str(nine))
        page.click("button:has-text('Send reply')")
        page.wait_for_selector(".note.good:has-text('Your reply was added')")
        with browser_runtime.sessions() as s:
            stored = s.scalars(select(TicketAttachment).order_by(TicketAttachment.id)).all()
            got = [(a.filename, a.size, a.sha256) for a in stored]
        expected = [(p.name, p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest()) for p in (four, nine, nine)]
        assert got == expected
    finally:
        context.close()
