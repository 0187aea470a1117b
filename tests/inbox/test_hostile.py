"""Hostile mail through the signed webhook and an RQ worker on the real Redis: each is quarantined or cut down
within bounded memory and time, and the ordinary mail behind it is still ticketed."""

from __future__ import annotations

import resource
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from rq import SimpleWorker
from sqlalchemy import func, select

import runtime as rt
from inbox.limits import MailLimits, check_headers
from inbox.parse import parse
from runtime.heartbeat import alive_key
from testing import hostile_mail as hostile
from tests.inbox import fixtures
from tests.inbox.conftest import Desk
from tests.inbox.test_webhooks import KEY, mailgun_form
from ticketing.db import transaction
from ticketing.models import InboundMail, MailAttachment, Ticket
from web.app import create_app
from workers.dispatch import dispatch_pending


@pytest.fixture
def webhook(desk: Desk) -> Iterator[FlaskClient]:
    """The app with the Mailgun webhook's signing key, as its own tests sign it."""
    desk.runtime.settings = desk.runtime.settings.with_overrides(mailgun_signing_key=KEY)
    app = create_app(runtime=desk.runtime)
    with app.test_client() as client:
        yield client


def post(desk: Desk, client: FlaskClient, raw: bytes) -> int:
    """Deliver one message through the signed Mailgun webhook; returns its stored row."""
    response = client.post("/mail/inbound/mailgun", data=mailgun_form(desk, raw))
    assert response.status_code == 200, response.get_data(as_text=True)
    return int(response.json["stored"])


def work(desk: Desk) -> None:
    """Hand the outbox to Redis and let a real RQ worker run every queued job, in order (burst)."""
    rt.install(desk.runtime)
    for _ in range(3):  # the intake's jobs queue notices of their own
        dispatch_pending(desk.runtime)
        SimpleWorker(desk.runtime.queues(), connection=desk.runtime.redis).work(burst=True)


def row(desk: Desk, row_id: int) -> InboundMail:
    return desk.inbound(row_id)


def peak_rss_mib() -> float:
    """This test process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize(
    ("build", "cap"),
    [
        (lambda: hostile.encoded_word_subject(1500), "MAIL_HEADER_MAX_ENCODED_WORDS"),
        (lambda: hostile.long_field(40 * 1024), "MAIL_HEADER_FIELD_MAX_BYTES"),
        (lambda: hostile.many_fields(200 * 1024), "MAIL_HEADER_MAX_BYTES"),
        (lambda: hostile.encoded_words_across_fields(10, 300), "MAIL_MESSAGE_MAX_ENCODED_WORDS"),
        (lambda: hostile.nested(40), "MAIL_MAX_NESTING"),
    ],
    ids=["encoded-word subject", "long field", "big header block", "encoded words everywhere", "deep nesting"],
)
def test_a_hostile_message_is_quarantined_naming_the_cap_and_the_mail_behind_it_is_ticketed(
    desk: Desk,
    webhook: FlaskClient,
    redis_url: str,
    build: Callable[[], bytes],
    cap: str,
) -> None:
    bad = post(desk, webhook, build())
    good = post(desk, webhook, fixtures.multipart_alternative())
    work(desk)
    quarantined = row(desk, bad)
    assert quarantined.state == "quarantined"
    assert cap in (quarantined.outcome or ""), quarantined.outcome
    assert row(desk, good).state == "ticketed"
    assert [t.summary for t in desk.tickets()] == ["Printer in reception is offline"]


def test_a_parse_that_needs_more_than_its_memory_budget_is_quarantined_and_this_process_never_grows(
    desk: Desk,
    webhook: FlaskClient,
    redis_url: str,
) -> None:
    # Caps opened wide, so the Subject reaches the parser: 6,000 encoded words need about 250 MiB there.
    desk.runtime.settings = desk.runtime.settings.with_overrides(
        mail_header_max_bytes=4 * 1024 * 1024,
        mail_header_field_max_bytes=4 * 1024 * 1024,
        mail_header_max_encoded_words=10**6,
        mail_message_max_encoded_words=10**6,
        mail_parse_max_memory_mb=64,
    )
    before = peak_rss_mib()
    bad = post(desk, webhook, hostile.encoded_word_subject(6000))
    good = post(desk, webhook, fixtures.multipart_alternative())
    work(desk)
    quarantined = row(desk, bad)
    assert quarantined.state == "quarantined"
    assert "MAIL_PARSE_MAX_MEMORY_MB (64 MiB)" in (quarantined.outcome or ""), quarantined.outcome
    assert row(desk, good).state == "ticketed"
    assert peak_rss_mib() - before < 100  # the parse ran elsewhere: this worker's memory did not follow it


def test_a_parse_that_takes_longer_than_its_time_limit_is_quarantined_and_the_mail_behind_it_is_ticketed(
    desk: Desk,
    webhook: FlaskClient,
    redis_url: str,
) -> None:
    # 4 MiB of HTML laid out by inscriptis takes about 5 s here; the HTML cap is opened to let it through.
    desk.runtime.settings = desk.runtime.settings.with_overrides(
        mail_html_max_bytes=64 * 1024 * 1024, mail_parse_timeout_seconds=1
    )
    bad = post(desk, webhook, hostile.big_html(4 * 1024 * 1024))
    good = post(desk, webhook, fixtures.multipart_alternative())
    work(desk)
    quarantined = row(desk, bad)
    assert quarantined.state == "quarantined"
    assert "MAIL_PARSE_TIMEOUT_SECONDS (1 s)" in (quarantined.outcome or ""), quarantined.outcome
    assert row(desk, good).state == "ticketed"


def test_a_large_html_body_is_reduced_to_its_words_without_layout(desk: Desk) -> None:
    desk.runtime.settings = desk.runtime.settings.with_overrides(mail_html_max_bytes=64 * 1024)
    stored = desk.receive(hostile.big_html(256 * 1024))
    assert row(desk, stored).state == "ticketed"
    (ticket,) = desk.tickets()
    assert "The quarterly report is attached below." in ticket.description and "<p>" not in ticket.description


def test_a_message_of_a_thousand_attachments_stores_twenty_and_the_ticket_says_the_rest_were_not_stored(
    desk: Desk,
    webhook: FlaskClient,
    redis_url: str,
) -> None:
    stored = post(desk, webhook, hostile.many_attachments(1000))
    work(desk)
    assert row(desk, stored).state == "ticketed"
    (ticket,) = desk.tickets()
    assert "980 more attachments not stored: over MAIL_ATTACHMENT_MAX_COUNT (20 per message)" in ticket.description
    with desk.runtime.sessions() as s:
        rows = s.scalars(select(MailAttachment).order_by(MailAttachment.id)).all()
        assert len(rows) == 21
        assert [r.filename for r in rows[:20]] == [f"f{i}.bin" for i in range(20)]
        assert all(r.path for r in rows[:20])
        assert rows[20].path is None and "MAIL_ATTACHMENT_MAX_COUNT" in (rows[20].note or "")
    folder = Path(desk.runtime.settings.recordings_dir) / "mail" / str(stored)
    assert len(list(folder.iterdir())) == 20


@pytest.mark.parametrize("earlier", ["a dead worker", "a live worker"])
def test_a_message_an_earlier_attempt_never_finished_is_quarantined_only_when_that_worker_is_dead(
    desk: Desk,
    webhook: FlaskClient,
    redis_url: str,
    earlier: str,
) -> None:
    stored = post(desk, webhook, fixtures.multipart_alternative())
    # What a worker leaves behind when it is killed while parsing: the attempt recorded, never finished.
    with transaction(desk.runtime.sessions) as s:
        inbound = s.get(InboundMail, stored)
        assert inbound is not None
        inbound.attempt_by = "worker-7f3a"
        inbound.attempt_started_at = desk.runtime.now()
    if earlier == "a live worker":
        desk.runtime.redis.set(alive_key("worker-7f3a"), "{}", ex=60)
    work(desk)
    after = row(desk, stored)
    if earlier == "a dead worker":
        assert after.state == "quarantined"
        assert "a worker died while processing this message (worker worker-7f3a" in (after.outcome or "")
        with desk.runtime.sessions() as s:
            assert s.scalar(select(func.count(Ticket.id))) == 0
    else:
        assert after.state == "ticketed"


def big_but_ordinary() -> bytes:
    """Mail near the limits that real mailers send: a Cc of 300 non-ASCII names, a long Japanese Subject, a
    thread of 200 References, Received and DKIM headers of a Microsoft 365 path, and 19 attachments."""
    from email.message import EmailMessage

    msg = EmailMessage()
    for hop in range(12):
        msg["Received"] = (
            f"from mx{hop}.outlook.example ([10.0.0.{hop}]) by relay{hop}.example with ESMTPS id {hop:032x}"
        )
    msg["DKIM-Signature"] = "v=1; a=rsa-sha256; d=acme-dental.example; s=s1; h=from:to:subject; b=" + "A" * 344
    msg["From"] = "Jürgen Müller <jm@acme-dental.example>"
    msg["To"] = "help@itech.example"
    msg["Cc"] = ", ".join(f"Zoë Ñúñez {i} <zn{i}@acme-dental.example>" for i in range(300))
    msg["Subject"] = "受付のプリンターがオフラインです。至急ご確認ください。" * 6
    msg["Message-ID"] = "<big-ordinary@acme-dental.example>"
    msg["References"] = " ".join(f"<thread-{i}-{'x' * 30}@acme-dental.example>" for i in range(200))
    msg.set_content("Die Druckerwarteschlange hängt.\n" * 50)
    for i in range(19):
        msg.add_attachment(b"%PDF" + bytes(2000), maintype="application", subtype="pdf", filename=f"scan-{i}.pdf")
    return msg.as_bytes()


@pytest.mark.parametrize(
    "build",
    [
        fixtures.multipart_alternative,
        fixtures.html_only,
        fixtures.latin1_subject,
        fixtures.shift_jis_subject,
        lambda: fixtures.with_attachment(200_000),
        lambda: fixtures.outlook_out_of_office("[#400127]", "<a@itech.example>"),
        lambda: fixtures.mailer_daemon_bounce("<a@itech.example>"),
        fixtures.mailing_list,
        fixtures.no_message_id,
        lambda: (Path(__file__).parents[2] / "samples" / "printer-offline.eml").read_bytes(),
        big_but_ordinary,
    ],
)
def test_ordinary_mail_even_near_the_limits_passes_every_cap(build: Callable[[], bytes]) -> None:
    raw = build()
    limits = MailLimits()
    assert check_headers(raw, limits) is None
    mail = parse(raw, limits=limits)
    assert mail.attachments_not_read == 0
