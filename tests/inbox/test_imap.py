"""The IMAP poller against a real Dovecot (Debian's dovecot-imapd), started here with a throwaway mailbox."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from inbox import imap
from settings import parse_imap_url
from testing.dovecot import DOVECOT, Dovecot
from tests.conftest import unavailable
from tests.inbox import fixtures
from tests.inbox.conftest import Desk
from ticketing.db import transaction
from ticketing.models import InboundMail, MailboxCursor, Ticket
from workers import mail_poller


@pytest.fixture(scope="module")
def dovecot() -> Iterator[tuple[int, Path]]:
    """A private dovecot on a free port: user ``help``, password ``secret``, Maildir under a temporary folder."""
    if not Path(DOVECOT).exists():
        unavailable("dovecot (Debian package dovecot-imapd)")
    server = Dovecot().start()
    yield server.port, server.root
    server.stop()


@pytest.fixture
def mailbox(dovecot: tuple[int, Path], desk: Desk) -> Iterator[str]:
    """An empty INBOX on the dovecot; IMAP_URL points at it."""
    port, _root = dovecot
    from imapclient import IMAPClient

    with IMAPClient("127.0.0.1", port=port, ssl=False) as client:
        client.login("help", "secret")
        client.select_folder("INBOX")
        uids = client.search(["ALL"])
        if uids:
            client.delete_messages(uids)
            client.expunge()
    url = f"imap+insecure://help:secret@127.0.0.1:{port}/INBOX"
    desk.runtime.settings = desk.runtime.settings.with_overrides(imap_url=url, imap_idle_seconds=10)
    yield url


def deliver(url: str, *raws: bytes) -> None:
    from imapclient import IMAPClient

    target = parse_imap_url(url)
    with IMAPClient(target.host, port=target.port, ssl=False) as client:
        client.login(target.username, target.password)
        for raw in raws:
            client.append("INBOX", raw)


def poll(desk: Desk) -> int:
    client, target, selected = imap.connect(desk.runtime.settings)
    with client:
        return mail_poller.poll_once(desk.runtime, client, target, selected)


def test_the_poller_tickets_every_message_once_and_never_marks_them_read(desk: Desk, mailbox: str) -> None:
    deliver(mailbox, fixtures.multipart_alternative(), fixtures.html_only(), fixtures.multipart_alternative())
    assert poll(desk) == 2  # the same message delivered twice is stored once
    desk.run_jobs()
    assert len(desk.tickets()) == 2
    assert poll(desk) == 0  # nothing above the cursor
    from imapclient import IMAPClient

    target = parse_imap_url(mailbox)
    with IMAPClient(target.host, port=target.port, ssl=False) as client:
        client.login(target.username, target.password)
        client.select_folder("INBOX", readonly=True)
        flags = client.get_flags(client.search(["ALL"]))
    assert all(b"\\Seen" not in f for f in flags.values())


def test_a_new_uidvalidity_reads_the_folder_again_without_duplicates(desk: Desk, mailbox: str) -> None:
    deliver(mailbox, fixtures.multipart_alternative(), fixtures.latin1_subject())
    assert poll(desk) == 2
    with transaction(desk.runtime.sessions) as s:
        cursor = s.scalars(select(MailboxCursor)).one()
        cursor.uidvalidity += 1  # as after the server rebuilt the folder
    assert poll(desk) == 0
    desk.run_jobs()
    with desk.runtime.sessions() as s:
        assert s.scalar(select(func.count(InboundMail.id))) == 2
        assert s.scalar(select(func.count(Ticket.id))) == 2


def test_the_poller_process_picks_up_new_mail_by_idle(desk: Desk, mailbox: str) -> None:
    stop = threading.Event()
    worker = threading.Thread(target=mail_poller.run, args=(desk.runtime.settings, stop), daemon=True)
    worker.start()
    try:
        time.sleep(1.0)  # connected and idling
        deliver(mailbox, fixtures.reply_with_tag_only("[#400999]"))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with desk.runtime.sessions() as s:
                if s.scalar(select(func.count(InboundMail.id))):
                    break
            time.sleep(0.1)
        with desk.runtime.sessions() as s:
            assert s.scalar(select(func.count(InboundMail.id))) == 1
    finally:
        stop.set()
        worker.join(timeout=40)
