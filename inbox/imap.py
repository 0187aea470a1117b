"""The IMAP client of the poller (``workers/mail_poller.py``, Procfile process ``mail``): the helpdesk mailbox
into the intake pipeline.

- IMAPClient, the folder selected read-only and messages fetched with ``BODY.PEEK[]``: the \\Seen flag is
  never set or read, so a person reading the mailbox in a mail client changes nothing, and nothing is
  "read but never ticketed".
- Progress is the UIDVALIDITY and the highest UID stored, kept in the database in the same transaction as
  the stored messages; a new UIDVALIDITY re-reads the folder, and the (mailbox, Message-ID) key makes that
  harmless.
- IDLE where the server offers it (renewed every ``IMAP_IDLE_SECONDS``), else a poll every
  ``IMAP_POLL_SECONDS``; reconnects with backoff.
- Password login, or XOAUTH2 with an access token printed by ``IMAP_OAUTH2_TOKEN_COMMAND`` (Microsoft 365 and
  Google take no passwords).

``IMAP_URL``: ``imaps://user:password@imap.example.com:993/INBOX`` (TLS), ``imap://...:143`` (STARTTLS,
required) or ``imap+insecure://127.0.0.1:1143`` (plain, a local test server).
"""

from __future__ import annotations

import logging
import shlex
import ssl
import subprocess
from collections.abc import Callable

from settings import ImapTarget, Settings, parse_imap_url

log = logging.getLogger(__name__)
BATCH = 25  # messages fetched per round trip: memory stays flat however large the backlog


def connect(settings: Settings):  # type: ignore[no-untyped-def]
    """A logged-in IMAPClient with the folder selected read-only; returns (client, target, select response)."""
    from imapclient import IMAPClient

    target = parse_imap_url(settings.imap_url)
    client = IMAPClient(
        target.host,
        port=target.port,
        ssl=target.scheme == "imaps",
        ssl_context=ssl.create_default_context() if target.scheme == "imaps" else None,
        timeout=60,
    )
    if target.scheme == "imap":
        client.starttls(ssl.create_default_context())
    if settings.imap_oauth2_token_command:
        token = subprocess.run(
            shlex.split(settings.imap_oauth2_token_command), capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()
        client.oauth2_login(target.username, token)
    else:
        client.login(target.username, target.password)
    selected = client.select_folder(target.folder, readonly=True)
    return client, target, selected


def poll_once(  # type: ignore[no-untyped-def]
    runtime, client, target: ImapTarget, selected: dict, after_batch: Callable[[], object] | None = None
) -> int:
    """Store every message above the cursor (UID order, in batches); returns how many were new.

    ``after_batch`` runs after each stored batch (the poller hands the batch's parsing jobs to Redis there)."""
    from sqlalchemy import select

    from inbox.intake import store_raw
    from ticketing.db import transaction
    from ticketing.models import MailboxCursor

    settings = runtime.settings
    uidvalidity = int(selected[b"UIDVALIDITY"])
    with transaction(runtime.sessions) as s:
        cursor = s.scalars(select(MailboxCursor).where(MailboxCursor.mailbox == target.mailbox)).first()
        if cursor is None:
            cursor = MailboxCursor(
                mailbox=target.mailbox, uidvalidity=uidvalidity, last_uid=0, updated_at=runtime.now()
            )
            s.add(cursor)
        elif cursor.uidvalidity != uidvalidity:
            log.warning(
                "%s: UIDVALIDITY changed (%s -> %s), reading the folder again",
                target.mailbox,
                cursor.uidvalidity,
                uidvalidity,
            )
            cursor.uidvalidity, cursor.last_uid = uidvalidity, 0
        last = cursor.last_uid
    uids = sorted(u for u in client.search(["UID", f"{last + 1}:*"]) if u > last)
    new = 0
    for i in range(0, len(uids), BATCH):
        batch = uids[i : i + BATCH]
        fetched = client.fetch(batch, ["BODY.PEEK[]", "RFC822.SIZE"])
        with transaction(runtime.sessions) as s:
            for uid in batch:
                data = fetched.get(uid)
                if data is None:
                    continue  # expunged meanwhile
                raw = data.get(b"BODY[]") or b""
                stored = store_raw(
                    s,
                    mailbox=settings.inbox_address or target.mailbox,
                    raw=raw,
                    via="imap",
                    now=runtime.now(),
                    max_bytes=settings.mail_max_bytes,
                )
                new += stored.new
            cursor = s.scalars(select(MailboxCursor).where(MailboxCursor.mailbox == target.mailbox)).one()
            cursor.last_uid = max(batch)
            cursor.updated_at = runtime.now()
        del fetched
        if after_batch is not None:
            after_batch()
    return new
