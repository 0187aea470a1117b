"""A file name mailed with a line break in it: stored as one line, and downloadable from the console."""

from __future__ import annotations

from sqlalchemy import select

from tests.inbox.conftest import Desk, desk  # noqa: F401 - the fixture
from tests.web.conftest import Console
from ticketing.db import transaction
from ticketing.models import MailAttachment

# RFC 2231 lets a sender percent-encode any byte of a parameter, CR and LF included.
MAIL = b"""From: Dana Whitfield <dana@acme-dental.example>\r
To: help@itech.example\r
Subject: The log\r
Date: Wed, 18 Nov 2026 10:08:00 -0800\r
Message-ID: <crlf-name@acme-dental.example>\r
MIME-Version: 1.0\r
Content-Type: multipart/mixed; boundary="mix"\r
\r
--mix\r
Content-Type: text/plain; charset=us-ascii\r
\r
See attached.\r
\r
--mix\r
Content-Type: text/plain; name="log.txt"\r
Content-Disposition: attachment; filename*=utf-8''printer%0D%0AX-Injected%3A%201%0A%C3%A9t%C3%A9.log\r
\r
paper jam at tray 2\r
--mix--\r
"""


def test_a_mailed_file_name_with_a_line_break_is_stored_as_one_line_and_downloads(
    desk: Desk,  # noqa: F811
    console: Console,
) -> None:
    desk.receive(MAIL)
    with desk.runtime.sessions() as s:
        attachment = s.scalars(select(MailAttachment)).one()
    assert attachment.filename == "printer X-Injected: 1 été.log"
    download = console.get(f"/attachments/{attachment.id}")
    assert download.status_code == 200 and download.data.startswith(b"paper jam at tray 2")
    disposition = download.headers["Content-Disposition"]
    assert "\r" not in disposition and "\n" not in disposition and "X-Injected" not in download.headers
    assert (
        disposition.startswith("attachment;")
        and "filename*=UTF-8''printer%20X-Injected%3A%201%20%C3%A9t%C3%A9.log" in disposition
    )
    download.close()


def test_a_stored_file_name_with_a_line_break_still_downloads_from_the_console(
    desk: Desk,  # noqa: F811
    console: Console,
) -> None:
    desk.receive(MAIL)
    with transaction(desk.runtime.sessions) as s:
        attachment = s.scalars(select(MailAttachment)).one()
        attachment.filename = "printer\r\nX-Injected: 1\n.log"  # stored before names were cleaned at intake
        attachment_id = attachment.id
    download = console.get(f"/attachments/{attachment_id}")
    assert download.status_code == 200 and download.data.startswith(b"paper jam at tray 2")
    assert download.headers["Content-Disposition"] == 'attachment; filename="printer X-Injected: 1 .log"'
    assert "X-Injected" not in download.headers
    download.close()
