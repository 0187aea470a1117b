"""Hostile mail against the real stack: a message built to exhaust the worker's memory, and a worker killed
while it parses a message. The worker stays alive (or the message is set aside after one death), and the
ordinary mail queued behind is ticketed.

The worker's address space is capped for the duration of each test (its size then plus 768 MiB), so a
parser that has lost its bounds fails here with a MemoryError instead of taking the machine's memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import resource
import time
import uuid
from collections.abc import Iterator

import requests
from sqlalchemy import select

from testing import hostile_mail as hostile
from testing.stack import Stack, wait_until
from tests.faults.conftest import MAILGUN_KEY
from tests.inbox import fixtures
from ticketing.models import InboundMail

CAP_MIB = 768


def deliver(stack: Stack, raw: bytes) -> int:
    """POST one raw message to the stack's Mailgun webhook, signed as Mailgun signs it; returns its stored row."""
    timestamp, token = str(int(time.time())), uuid.uuid4().hex
    signature = hmac.new(MAILGUN_KEY.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    form = {
        "timestamp": timestamp,
        "token": token,
        "signature": signature,
        "recipient": "help@itech.example",
        "body-mime": raw.decode("latin-1"),
    }
    response = requests.post(stack.url + "/mail/inbound/mailgun", data=form, timeout=30)
    assert response.status_code == 200, response.text[:300]
    return int(response.json()["stored"])


def inbound(stack: Stack, row_id: int) -> InboundMail:
    """The stored message's row as it is now."""
    with stack.session() as s:
        row = s.scalars(select(InboundMail).where(InboundMail.id == row_id)).one()
        s.expunge(row)
        return row


def ordinary() -> bytes:
    """An everyday message with a Message-ID of its own (the stack's database lives for the whole suite)."""
    return fixtures.multipart_alternative(mid=f"<ordinary-{uuid.uuid4().hex}@acme-dental.example>")


def peak_rss_kib(pid: int) -> int:
    """A process's peak resident memory (VmHWM)."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


@contextlib.contextmanager
def address_space_capped(pid: int, extra_mib: int = CAP_MIB) -> Iterator[None]:
    """Hold a running process to its current virtual size plus ``extra_mib`` (RLIMIT_AS), then let it go."""
    with open(f"/proc/{pid}/statm") as f:
        size = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    before = resource.prlimit(pid, resource.RLIMIT_AS)
    resource.prlimit(pid, resource.RLIMIT_AS, (size + extra_mib * 1024 * 1024, before[1]))
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            resource.prlimit(pid, resource.RLIMIT_AS, before)


def test_a_mail_like_the_one_that_killed_the_worker_is_quarantined_unparsed_and_the_mail_behind_it_is_ticketed(
    stack: Stack,
) -> None:
    worker = stack.worker
    assert worker is not None
    # The incident: a 1.66 MiB Subject of RFC 2047 encoded words drove the worker to about 20 GB.
    raw = hostile.encoded_word_subject(118_000)
    assert len(raw) > 1_600_000
    peak_before = peak_rss_kib(worker.pid)
    with address_space_capped(worker.pid):
        bad = deliver(stack, raw)
        good = deliver(stack, ordinary())
        wait_until(lambda: inbound(stack, good).state == "ticketed", 120, "the ordinary mail behind it to be ticketed")
    quarantined = inbound(stack, bad)
    assert quarantined.state == "quarantined"
    assert "MAIL_HEADER_MAX_BYTES" in (quarantined.outcome or ""), quarantined.outcome
    assert worker.alive()
    grown_mib = (peak_rss_kib(worker.pid) - peak_before) / 1024
    assert grown_mib < 64, f"the worker's peak memory grew by {grown_mib:.0f} MiB"
    message = stack.outbox(f"mail-in:{bad}")
    assert message is not None and message.attempts == 1 and message.completed_at is not None


def test_a_worker_killed_while_parsing_a_mail_is_replaced_and_that_mail_is_quarantined_not_parsed_again(
    stack: Stack,
) -> None:
    worker = stack.worker
    assert worker is not None
    # An HTML newsletter just under MAIL_HTML_MAX_BYTES: laid out by inscriptis, it keeps the parser busy
    # for about a second, long enough to be killed in the middle.
    with address_space_capped(worker.pid):
        victim = deliver(stack, hostile.big_html(900 * 1024))
        wait_until(lambda: inbound(stack, victim).attempt_by, 60, "the worker to start parsing", every=0.02)
        worker.kill9()  # as the kernel's OOM killer does
    assert inbound(stack, victim).state == "stored"  # killed mid-parse: nothing was recorded
    behind = deliver(stack, ordinary())
    stack.start_worker(scheduler=False)  # the dead worker's scheduler lock outlives it by a minute

    wait_until(lambda: inbound(stack, behind).state == "ticketed", 120, "the ordinary mail behind it to be ticketed")
    quarantined = wait_until(
        lambda: (row := inbound(stack, victim)).state != "stored" and row, 120, "the killed mail's second attempt"
    )
    assert quarantined.state == "quarantined", quarantined.outcome
    assert "a worker died while processing this message" in (quarantined.outcome or "")
    assert quarantined.ticket_id is None
    message = stack.outbox(f"mail-in:{victim}")
    assert message is not None and message.attempts == 2 and message.completed_at is not None
