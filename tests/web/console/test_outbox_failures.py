"""Outgoing messages that cannot go out: one-line headers, and a bounded number of attempts that ends visibly."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from rq import SimpleWorker
from sqlalchemy import select

from ivr.simulate import new_sid
from runtime import Runtime
from settings import ROOT
from tests.conftest import FixedClock
from tests.inbox import fixtures
from tests.inbox.conftest import Desk, desk  # noqa: F401 - the fixture
from tests.web.conftest import Console
from ticketing import lifecycle, voicemail
from ticketing.db import transaction
from ticketing.models import AuditEntry, OutboxMessage, Ticket, TicketMessage
from workers.sweeper import sweep_once

BROKEN_SUMMARY = "Printer down\r\nBcc: everyone@example.com\x00\u2028again"


def test_a_summary_typed_with_line_breaks_is_stored_as_one_line_and_replies_on_it_go_out(
    desk: Desk,  # noqa: F811
    console: Console,
) -> None:
    made = console.post(
        "/tickets/new",
        {"summary": BROKEN_SUMMARY, "priority": "P3", "source": "phone", "caller_number": "+18055550142"},
    )
    assert made.status_code == 303, made.get_data(as_text=True)
    number = int(made.headers["Location"].rstrip("/").rsplit("/", 1)[-1])
    with desk.runtime.sessions() as s:
        assert lifecycle.get_ticket(s, number).summary == "Printer down Bcc: everyone@example.com again"
    assert console.post(f"/tickets/{number}/reply", {"text": "On our way."}).status_code == 303
    desk.run_jobs()
    (sent,) = [m for m in desk.sent() if "On our way." in m.get_body(("plain",)).get_content()]
    assert sent["Subject"] == f"[#{number}] Re: Printer down Bcc: everyone@example.com again"
    assert sent["Bcc"] is None


def test_a_reply_on_a_ticket_whose_stored_summary_has_a_line_break_is_sent_with_a_one_line_subject(
    desk: Desk,  # noqa: F811
    console: Console,
) -> None:
    desk.receive(fixtures.with_attachment(2000))
    (ticket,) = desk.tickets()
    with transaction(desk.runtime.sessions) as s:
        # Written before summaries were cleaned where they are set: the sender must still cope.
        s.get(Ticket, ticket.id).summary = BROKEN_SUMMARY.replace("\x00", "\x0b")  # type: ignore[union-attr]
    assert console.post(f"/tickets/{ticket.number}/reply", {"text": "Fixed it."}).status_code == 303
    desk.run_jobs()
    with desk.runtime.sessions() as s:
        reply = s.scalars(select(TicketMessage).where(TicketMessage.event == "reply")).one()
        assert (reply.state, reply.error) == ("sent", None)
    subject = desk.sent()[-1]["Subject"]
    assert subject == f"[#{ticket.number}] Re: Printer down Bcc: everyone@example.com again"


def _broken_reply_template(tmp_path: Path) -> Path:
    """The shipped notices file with a typo in the reply template (a variable that does not exist)."""
    text = (ROOT / "config" / "mail.toml").read_text()
    head, rest = text.split("[templates.reply]", 1)
    broken = tmp_path / "mail.toml"
    broken.write_text(head + "[templates.reply]" + rest.replace("{{ reply }}", "{{ replly }}", 1))
    return broken


def test_a_reply_that_fails_on_every_attempt_is_marked_failed_with_its_reason_and_never_retried_again(
    desk: Desk,  # noqa: F811
    console: Console,
    app: Flask,
    clock: FixedClock,
    redis_url: str,
    tmp_path: Path,
) -> None:
    runtime = desk.runtime
    desk.receive(fixtures.with_attachment(2000))  # the ticket and its confirmation, sent with the good templates
    (ticket,) = desk.tickets()
    runtime.settings = runtime.settings.with_overrides(
        mail_templates_file=_broken_reply_template(tmp_path), outbox_max_attempts=3, job_retry_intervals=(0,)
    )
    runtime.cache.pop("notices", None)
    assert console.post(f"/tickets/{ticket.number}/reply", {"text": "Fixed it."}).status_code == 303
    with runtime.sessions() as s:
        reply = s.scalars(select(TicketMessage).where(TicketMessage.event == "reply")).one()
    key = f"deliver:{reply.id}"

    # The worker and the sweeper, for real: each hand-over runs the job (and RQ's one retry), each fails.
    passes = 0
    while passes < 10:
        passes += 1
        sweep_once(runtime)
        SimpleWorker(runtime.queues(), connection=runtime.redis).work(burst=True)
        with runtime.sessions() as s:
            message = s.scalars(select(OutboxMessage).where(OutboxMessage.key == key)).one()
            if message.completed_at is not None:
                break
        clock.advance(minutes=runtime.settings.transcription_pending_minutes + 1)
    assert message.failed_at is not None and message.attempts == 3, (passes, message.attempts, message.last_error)
    assert "replly" in (message.last_error or "")

    with runtime.sessions() as s:
        row = s.get(TicketMessage, reply.id)
        assert row is not None and row.state == "failed"
        assert "not sent after 3 attempts" in (row.error or "") and "replly" in (row.error or "")
        failures = s.scalars(
            select(AuditEntry).where(AuditEntry.ticket_id == ticket.id, AuditEntry.action == "email failed")
        ).all()
        assert len(failures) == 1 and "replly" in (failures[0].reason or "")

    # Nothing tries it again unseen.
    clock.advance(minutes=runtime.settings.transcription_pending_minutes + 1)
    assert sweep_once(runtime)["requeued"] == 0 and runtime.queue().count == 0

    console.login()  # the clock moved past the console's idle timeout
    shown = console.get(f"/tickets/{ticket.number}")
    page = shown.get_data(as_text=True)
    assert shown.status_code == 200, page[:2000]
    talk = page.split('aria-label="Conversation with the client"')[1].split("</section>")[0]
    assert "msg-failed" in talk and "not sent after 3 attempts" in talk and "replly" in talk
    assert "email failed" in page

    metrics = app.test_client().get("/metrics").get_data(as_text=True)
    assert 'supportline_outbox_failed{kind="deliver"} 1.0' in metrics

    # The template fixed, a person sends it again: a fresh set of attempts, and it goes out.
    assert "Send again" in talk
    runtime.settings = runtime.settings.with_overrides(mail_templates_file=ROOT / "config" / "mail.toml")
    runtime.cache.pop("notices", None)
    assert console.post(f"/tickets/{ticket.number}/send-again", {"message": str(reply.id)}).status_code == 303
    sweep_once(runtime)
    SimpleWorker(runtime.queues(), connection=runtime.redis).work(burst=True)
    with runtime.sessions() as s:
        row = s.get(TicketMessage, reply.id)
        assert row is not None and (row.state, row.error) == ("sent", None)
        message = s.scalars(select(OutboxMessage).where(OutboxMessage.key == key)).one()
        assert message.failed_at is None and message.attempts == 1
    assert "Fixed it." in desk.sent()[-1].get_body(("plain",)).get_content()
    assert 'supportline_outbox_failed{kind="deliver"}' not in app.test_client().get("/metrics").get_data(as_text=True)
    again = console.post(f"/tickets/{ticket.number}/send-again", {"message": str(reply.id)})
    assert again.status_code == 400 and "Only a failed message can be sent again" in again.get_data(as_text=True)


def test_a_transcription_whose_job_is_lost_on_every_attempt_ends_failed_and_retryable_not_pending_for_ever(
    console: Console, runtime: Runtime, clock: FixedClock, redis_url: str
) -> None:
    runtime.settings = runtime.settings.with_overrides(outbox_max_attempts=2)
    with transaction(runtime.sessions) as s:
        t = voicemail.attach_recording(
            s, policy=runtime.policy, now=runtime.now(), call_sid=new_sid("CA"), caller="+18055550142",
            recording_sid=new_sid("RE"), recording_url="https://api.twilio.com/recording", duration=9, critical=False,
        )  # fmt: skip
        number, key = t.number, f"transcribe:{t.recording_sid}"
    for _ in range(4):
        sweep_once(runtime)
        runtime.redis.flushdb()  # Redis restarted (it keeps nothing on disk): the job is gone
        clock.advance(minutes=runtime.settings.transcription_pending_minutes + 1)
    with runtime.sessions() as s:
        message = s.scalars(select(OutboxMessage).where(OutboxMessage.key == key)).one()
        assert message.failed_at is not None and message.attempts == 2 and message.last_error == "the job was lost"
        t = lifecycle.get_ticket(s, number)
        assert t.transcription_state == "failed"
        assert t.transcription_error == "not transcribed after 2 attempts: the job was lost"
        assert "job failed" in [a.action for a in t.audit]
    console.login()  # the clock moved past the console's idle timeout
    page = console.get(f"/tickets/{number}").get_data(as_text=True)
    assert "not transcribed after 2 attempts" in page and "Retry transcription" in page
