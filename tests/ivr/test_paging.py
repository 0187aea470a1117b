"""P1 paging end to end: caller presses 2 → pages by SMS and call → escalation → acknowledgement."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from tests.conftest import FixedClock
from tests.ivr.conftest import BEN, CAT, DANA, DEV, PUBLIC, Desk
from ticketing import paging
from ticketing.db import transaction
from ticketing.models import Client, Contact, Ticket
from workers import paging as jobs

AFTER_HOURS = "2026-11-18 22:00"  # Wednesday night: the after-hours rotation (cat this week)
SUPPORT = "+18055922500"


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry pauses of a few milliseconds, so failing sends do not slow the tests."""
    monkeypatch.setattr(jobs, "RETRY_PAUSES", (0.01, 0.01, 0.01))


@pytest.fixture
def acme(desk: Desk) -> None:
    with transaction(desk.runtime.sessions) as s:
        client = Client(name="Acme Dental", main_number="+18055550100")
        s.add(Contact(client=client, name="Dana Whitfield", phone=DANA))


def paged_after_hours(desk: Desk, clock: FixedClock) -> int:
    clock.set(AFTER_HOURS)
    number = desk.ticket_of(desk.p1_call())
    desk.work()
    return number


def test_after_hours_p1_pages_the_on_call_engineer_by_sms_and_call_in_one_pass_of_the_worker(
    desk: Desk, clock: FixedClock, acme: None
) -> None:
    # How fast is measured by `make bench-paging` (press 2 -> first page), not asserted here.
    clock.set(AFTER_HOURS)
    number = desk.ticket_of(desk.p1_call())
    desk.work()

    assert sorted(desk.sent()) == [("cat", "call"), ("cat", "sms")]
    (sms,) = desk.twilio.messages(to=CAT)
    body = sms.param("Body") or ""
    assert f"#{number}" in body and "Acme Dental" in body and DANA in body and "Reply 1 to acknowledge" in body
    assert sms.param("From") == SUPPORT and sms.status == 201
    call = desk.call_to(CAT)
    assert call.status == 201
    assert call.param("From") == SUPPORT
    assert (call.param("Url") or "").startswith(f"{PUBLIC}/twilio/page/call?page=")
    assert (call.param("StatusCallback") or "").startswith(f"{PUBLIC}/twilio/page/call-status?page=")
    assert call.param("MachineDetection") == "Enable"
    heard = " ".join(desk.answer(call, []))
    assert " ".join(str(number)) in heard and "Acme Dental" in heard and "8 0 5, 5 5 5, 0 1 4 2" in heard
    assert "Press 1 to acknowledge. Press 2 to be connected to the caller now." in heard
    assert "this page is not acknowledged" in heard
    assert desk.scheduled() == [f"page-step-{number}-1"]
    escalation = desk.escalation(number)
    assert (escalation.policy, escalation.business_hours, escalation.state) == ("after-hours", False, "paging")


def test_business_hours_p1_pages_the_whole_emergency_response_team(desk: Desk) -> None:
    number = desk.ticket_of(desk.p1_call())  # Wednesday 10:00
    desk.work()

    assert sorted(desk.sent()) == [("ana", "call"), ("ana", "sms"), ("ben", "call"), ("ben", "sms")]
    assert desk.escalation(number).policy == "business-hours"
    assert "paging started" in desk.actions(number)


def test_without_an_ack_each_step_is_paged_after_its_wait_then_the_fallback_with_an_alert(
    desk: Desk, clock: FixedClock
) -> None:
    number = paged_after_hours(desk, clock)
    assert desk.status_callback(desk.twilio.messages(to=CAT)[0], "delivered") == 204  # cat's phone got it
    clock.advance(minutes=4, seconds=59)
    desk.work()
    assert len(desk.sent()) == 2

    expected = ["cat", "ben", "cat", "ben", "fay"]
    for step in range(1, len(expected)):
        clock.advance(minutes=5)
        desk.work()
        assert [p for p, _c in desk.sent()][2 * step :] in ([expected[step]] * 2,), step
    assert desk.escalation(number).state == "paging"  # the fallback's wait runs before "exhausted"

    clock.advance(minutes=5)
    desk.work()
    actions = desk.actions(number)
    assert actions.count("paged") == 5 and actions[-1] == "escalation exhausted"
    assert "nobody reached" not in actions  # a page was delivered
    assert desk.escalation(number).state == "exhausted"
    clock.advance(minutes=30)
    desk.work()
    assert desk.sweep() == 0
    assert len(desk.sent()) == 10


def test_an_ack_by_keypress_stops_escalation_and_counts_as_first_response(desk: Desk, clock: FixedClock) -> None:
    number = paged_after_hours(desk, clock)
    heard = " ".join(desk.answer(desk.call_to(CAT), ["1"]))

    assert "Acknowledged." in heard
    clock.advance(minutes=30)
    desk.work()
    desk.sweep()
    assert len(desk.sent()) == 2
    escalation = desk.escalation(number)
    assert (escalation.state, escalation.acknowledged_by, escalation.acknowledged_via) == (
        "acknowledged",
        "Cat Nguyen",
        "call",
    )
    with desk.runtime.sessions() as s:
        ticket = s.scalars(select(Ticket).where(Ticket.number == number)).one()
        assert ticket.status == "acknowledged" and ticket.assignee == "Cat Nguyen"
        assert ticket.milestone("first_response").met_in_time is True
    # The same key press delivered again (Twilio retries) changes nothing.
    again = " ".join(desk.answer(desk.call_to(CAT), ["1"]))
    assert "already acknowledged by Cat Nguyen" in again
    assert desk.actions(number).count("acknowledged") == 1


def test_an_ack_by_sms_from_the_paged_number_stops_escalation(desk: Desk, clock: FixedClock) -> None:
    number = paged_after_hours(desk, clock)
    assert "no page to acknowledge" in desk.text(DEV, "1")  # on call, but not paged for this ticket
    assert "no page to acknowledge" in desk.text(DANA, "ack")

    reply = desk.text(CAT, f"ack {number}")  # '1', 'ACK' etc.: see test_page_texts

    assert f"Acknowledged ticket #{number}" in reply
    clock.advance(minutes=30)
    desk.work()
    desk.sweep()
    assert len(desk.sent()) == 2
    assert desk.escalation(number).acknowledged_via == "sms"
    assert "already acknowledged by Cat Nguyen" in desk.text(CAT, "1")


def test_an_ack_from_the_cli_stops_escalation(desk: Desk, clock: FixedClock) -> None:
    number = paged_after_hours(desk, clock)
    runner = desk.app.test_cli_runner()

    result = runner.invoke(args=["oncall", "ack", str(number), "--by", "dev"])

    assert result.exit_code == 0, result.output
    assert f"ticket {number} acknowledged by Dev Shah" in result.output
    clock.advance(minutes=30)
    desk.work()
    desk.sweep()
    assert len(desk.sent()) == 2
    again = runner.invoke(args=["oncall", "ack", str(number), "--by", "cat"])
    assert "already acknowledged by Dev Shah via cli" in again.output
    pages = runner.invoke(args=["oncall", "pages", str(number)])
    assert "acknowledged by Dev Shah via cli" in pages.output and "r1s1" in pages.output


def test_duplicate_webhooks_and_jobs_do_not_double_page(desk: Desk, clock: FixedClock) -> None:
    clock.set(AFTER_HOURS)
    call = desk.p1_call()
    base = {"CallSid": call.call_sid, "AccountSid": desk.twilio.account_sid, "From": DANA, "To": SUPPORT}
    desk.sim.post("/twilio/voice/menu", {**base, "Digits": "2"})  # Twilio retried the menu webhook
    number = desk.ticket_of(call)
    desk.work()
    jobs.start_paging(desk.runtime, number)  # the page job ran twice
    jobs.run_step(desk.runtime, number, 0)
    desk.sweep()
    desk.work()

    assert sorted(desk.sent()) == [("cat", "call"), ("cat", "sms")]
    sms = desk.twilio.messages(to=CAT)[0]
    assert desk.status_callback(sms, "delivered") == 204
    assert desk.status_callback(sms, "delivered") == 204
    clock.advance(minutes=5)
    desk.work()
    desk.work()
    desk.sweep()
    assert sorted(desk.sent()[2:]) == [("ben", "call"), ("ben", "sms")]


def test_a_worker_killed_between_steps_delays_but_neither_loses_nor_duplicates_the_next_page(
    desk: Desk, clock: FixedClock
) -> None:
    number = paged_after_hours(desk, clock)
    desk.runtime.redis.flushdb()  # the worker, its scheduler and Redis restarted: the timer is gone
    clock.advance(minutes=5)
    desk.work()
    assert len(desk.sent()) == 2  # nothing fired

    assert desk.sweep() == 1  # the sweeper re-derives the due step from the database
    assert sorted(desk.sent()[2:]) == [("ben", "call"), ("ben", "sms")]
    assert desk.sweep() == 0
    desk.work()
    assert len(desk.sent()) == 4

    # Next step: the sweeper and the restored timer both fire; the step is paged once.
    clock.advance(minutes=5)
    desk.sweep()
    desk.work()
    assert sorted(desk.sent()[4:]) == [("cat", "call"), ("cat", "sms")]
    assert desk.actions(number).count("paged") == 3


def test_a_page_job_lost_before_it_ran_is_started_by_the_sweeper(desk: Desk, clock: FixedClock) -> None:
    from workers.dispatch import dispatch_pending

    clock.set(AFTER_HOURS)
    number = desk.ticket_of(desk.p1_call())
    dispatch_pending(desk.runtime)
    desk.runtime.redis.flushdb()  # the queued page job vanished

    assert desk.sweep() == 0  # a just-requested page is left to its job for a few seconds
    clock.advance(seconds=20)
    assert desk.sweep() == 1
    assert sorted(desk.sent()) == [("cat", "call"), ("cat", "sms")]
    assert desk.sweep() == 0
    assert desk.escalation(number).next_position == 1


def test_a_failing_sms_is_retried_and_the_call_still_goes_out(desk: Desk, clock: FixedClock) -> None:
    desk.twilio.fail_next("/Messages.json", status=500, count=1)
    number = paged_after_hours(desk, clock)

    pages = {p.channel: p for p in desk.pages(number)}
    assert (pages["sms"].state, pages["sms"].tries) == ("sent", 2)
    assert (pages["call"].state, pages["call"].tries) == ("sent", 1)
    assert [r.status for r in desk.twilio.messages(to=CAT)] == [500, 201]


def test_a_person_whose_number_fails_is_skipped_to_the_next_step_at_once(desk: Desk, clock: FixedClock) -> None:
    desk.twilio.fail_next("/Messages.json", status=400, count=1, code=21614)  # not a mobile number
    desk.twilio.fail_next("/Calls.json", status=400, count=1, code=21217)  # number does not appear valid
    number = paged_after_hours(desk, clock)

    assert [r.status for r in desk.twilio.calls(to=CAT)] == [400]  # the number's fault: no retry
    assert [r.status for r in desk.twilio.messages(to=CAT)] == [400]
    assert sorted(desk.sent()[2:]) == [("ben", "call"), ("ben", "sms")]  # no five-minute wait
    actions = desk.actions(number)
    assert actions.count("page failed") == 2 and "escalated early" in actions
    assert desk.scheduled() == [f"page-step-{number}-2"]


def test_a_number_reported_undeliverable_escalates_before_the_wait(desk: Desk, clock: FixedClock) -> None:
    number = paged_after_hours(desk, clock)
    assert desk.status_callback(desk.twilio.messages(to=CAT)[0], "undelivered", ErrorCode="30006") == 204
    assert desk.sweep() == 0  # the call may still reach cat
    assert desk.status_callback(desk.call_to(CAT), "failed") == 204

    desk.work()  # the callback queued the next step at once

    assert sorted(desk.sent()[2:]) == [("ben", "call"), ("ben", "sms")]
    assert desk.escalation(number).next_position == 2


def test_a_machine_answering_or_a_call_without_a_key_press_is_not_an_ack(desk: Desk, clock: FixedClock) -> None:
    number = paged_after_hours(desk, clock)

    heard = " ".join(desk.answer(desk.call_to(CAT), ["1"], answered_by="machine_start"))
    assert "Reply 1 to the text message" in heard and "Acknowledged" not in heard
    assert desk.status_callback(desk.call_to(CAT), "completed", AnsweredBy="machine_start") == 204
    clock.advance(minutes=5)
    desk.work()
    heard = " ".join(desk.answer(desk.call_to(BEN), []))  # a person answers, presses nothing
    assert "not acknowledged" in heard
    assert desk.status_callback(desk.call_to(BEN), "completed", AnsweredBy="human") == 204

    clock.advance(minutes=5)
    desk.work()
    assert sorted(desk.sent()[4:]) == [("cat", "call"), ("cat", "sms")]
    assert desk.escalation(number).acknowledged_at is None
    assert "page call reached voicemail" in desk.actions(number)


def test_press_2_acknowledges_and_connects_the_engineer_to_the_caller(desk: Desk, clock: FixedClock) -> None:
    number = paged_after_hours(desk, clock)

    heard = desk.answer(desk.call_to(CAT), ["2"])

    assert f"<dial {DANA} from {SUPPORT}>" in heard
    assert desk.escalation(number).acknowledged_by == "Cat Nguyen"
    actions = desk.actions(number)
    assert "acknowledged" in actions and actions[-1] == "caller connected"


def test_the_transcript_follows_up_to_everyone_paged_and_later_pages_carry_it(desk: Desk, clock: FixedClock) -> None:
    number = paged_after_hours(desk, clock)
    clock.advance(minutes=5)
    desk.work()  # ben paged too
    words = "Hi, this is Dana from Acme Dental. Our file server is down and nobody in the office can work. "
    with transaction(desk.runtime.sessions) as s:
        ticket = s.scalars(select(Ticket).where(Ticket.number == number)).one()
        ticket.transcript = words * 6 + "Please call me back at 805 555 0142."
        ticket.transcription_state = "done"

    assert jobs.send_transcript_follow_up(desk.runtime, number) == "sent to 2"
    assert jobs.send_transcript_follow_up(desk.runtime, number) == "sent to 0"

    follow_ups = [r for r in desk.twilio.messages() if "transcript" in (r.param("Body") or "")]
    assert sorted(r.param("To") for r in follow_ups) == [BEN, CAT]
    body = follow_ups[0].param("Body") or ""
    assert len(body) <= 300 and body.startswith(f'Ticket #{number} transcript: "Hi, this is Dana') and "…" in body
    clock.advance(minutes=5)
    desk.work()  # round 2: cat again, with the message
    latest = desk.twilio.messages(to=CAT)[-1].param("Body") or ""
    assert 'Message: "Hi, this is Dana' in latest and len(latest) <= 320


def test_after_an_ack_the_transcript_goes_only_to_the_acknowledger(desk: Desk, clock: FixedClock) -> None:
    number = paged_after_hours(desk, clock)
    clock.advance(minutes=5)
    desk.work()
    desk.text(BEN, "1")
    with transaction(desk.runtime.sessions) as s:
        s.scalars(select(Ticket).where(Ticket.number == number)).one().transcript = "Server down."

    assert jobs.send_transcript_follow_up(desk.runtime, number) == "sent to 1"
    (follow_up,) = [r for r in desk.twilio.messages() if "transcript" in (r.param("Body") or "")]
    assert follow_up.param("To") == BEN and "Reply 1" not in (follow_up.param("Body") or "")


def test_numbers_a_second_reading_puts_in_doubt_follow_up_to_everyone_paged(desk: Desk, clock: FixedClock) -> None:
    number = paged_after_hours(desk, clock)
    clock.advance(minutes=5)
    desk.work()  # ben paged too
    shown = "Server down at Acme Dental. Please call me back at 805 555 5018."
    with transaction(desk.runtime.sessions) as s:
        ticket = s.scalars(select(Ticket).where(Ticket.number == number)).one()
        ticket.transcript, ticket.transcription_state, ticket.transcript_pass = shown, "done", "first"
        ticket.transcript_passes = [{"pass": "first", "text": shown}]
        # The caller keyed the number the message gives: a transcript number that is not it would be named.
        ticket.callback_number, ticket.callback_origin = "+18055555018", "keyed"
    assert jobs.send_numbers_follow_up(desk.runtime, number) == "nothing to check"  # one reading, whole numbers

    with transaction(desk.runtime.sessions) as s:
        ticket = s.scalars(select(Ticket).where(Ticket.number == number)).one()
        other = {"pass": "numbers", "text": "Server down at Acme Dental. Please call me back at 805 555 0188."}
        ticket.transcript_passes = [*ticket.transcript_passes, other]
    assert jobs.send_numbers_follow_up(desk.runtime, number) == "sent to 2"
    assert jobs.send_numbers_follow_up(desk.runtime, number) == "sent to 0"  # once per person

    sent = [r for r in desk.twilio.messages() if "misheard" in (r.param("Body") or "")]
    assert sorted(r.param("To") for r in sent) == [BEN, CAT]
    body = sent[0].param("Body") or ""
    assert body.startswith(f"Ticket #{number}: the transcript's numbers may be misheard. Check 805 555 5018 ")
    assert "(another reading heard 805 555 0188) against the recording. Reply 1 to acknowledge." in body
    assert len(body) <= 320
    assert "numbers to check sent to on-call" in desk.actions(number)


def test_resolving_the_ticket_stops_paging(desk: Desk, clock: FixedClock) -> None:
    from ticketing import lifecycle

    number = paged_after_hours(desk, clock)
    with transaction(desk.runtime.sessions) as s:
        ticket = lifecycle.get_ticket(s, number)
        lifecycle.set_status(s, ticket, "resolved", actor="coordinator", now=clock(), policy=desk.runtime.policy)
    clock.advance(minutes=5)
    desk.work()

    assert len(desk.sent()) == 2
    assert desk.escalation(number).state == "stopped"
    assert "paging stopped" in desk.actions(number)


def test_the_console_can_acknowledge_without_counting_it_as_first_response(desk: Desk, clock: FixedClock) -> None:
    number = paged_after_hours(desk, clock)
    with transaction(desk.runtime.sessions) as s:
        ack = paging.acknowledge(s, number, "Coordinator Kim", clock(), "console", counts_as_first_response=False)
    assert (ack.ticket, ack.already, ack.via) == (number, False, "console")
    with desk.runtime.sessions() as s:
        ticket = s.scalars(select(Ticket).where(Ticket.number == number)).one()
        assert ticket.status == "new" and ticket.milestone("first_response").met_at is None


def test_paging_webhooks_refuse_requests_twilio_did_not_sign(desk: Desk, clock: FixedClock) -> None:
    number = paged_after_hours(desk, clock)
    url = (desk.call_to(CAT).param("Url") or "").replace("/call?", "/key?")
    response = desk.sim.http.post(desk.sim.server + url[len(PUBLIC) :], data={"Digits": "1"}, timeout=10)

    assert response.status_code == 403
    assert desk.escalation(number).acknowledged_at is None


def test_nobody_is_paged_twice_for_one_step_when_two_sweepers_race(desk: Desk, clock: FixedClock) -> None:
    import threading

    number = paged_after_hours(desk, clock)
    desk.runtime.redis.flushdb()
    clock.advance(minutes=5)
    threads = [threading.Thread(target=desk.sweep) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(desk.sent()[2:]) == [("ben", "call"), ("ben", "sms")]
    assert desk.actions(number).count("paged") == 2


def test_on_a_holiday_morning_the_after_hours_rotation_is_paged(desk: Desk, clock: FixedClock) -> None:
    clock.set("2026-11-26 10:00")  # Thanksgiving: after hours although it is a Thursday morning
    number = desk.ticket_of(desk.p1_call())
    desk.work()

    assert sorted(desk.sent()) == [("dev", "call"), ("dev", "sms")]
    assert desk.escalation(number).policy == "after-hours"


def test_a_worker_killed_after_claiming_a_step_but_before_sending_is_recovered_by_the_sweeper(
    desk: Desk, clock: FixedClock
) -> None:
    from ticketing import lifecycle
    from workers.paging import oncall_of

    number = paged_after_hours(desk, clock)
    desk.runtime.redis.flushdb()
    clock.advance(minutes=5)
    with transaction(desk.runtime.sessions) as s:  # the step is claimed, then the process dies
        ticket = lifecycle.get_ticket(s, number)
        claim = paging.claim_step(
            s, ticket, paging.escalation_of(s, ticket), 1, oncall=oncall_of(desk.runtime), now=clock()
        )
        assert claim is not None
    assert desk.sweep() == 0  # the claim is young: its sender may still be at work
    assert len(desk.sent()) == 2

    clock.advance(seconds=61)
    assert desk.sweep() == 2  # both channels of ben's page, sent once
    assert sorted(desk.sent()[2:]) == [("ben", "call"), ("ben", "sms")]
    assert desk.sweep() == 0
    assert {p.state for p in desk.pages(number)} == {"sent"}


def test_a_twilio_timeout_is_retried_and_does_not_hold_up_the_call(
    desk: Desk, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "SEND_TIMEOUT_SECONDS", 0.3)
    desk.twilio.timeout_next("/Messages.json", seconds=1.0, count=1)
    started = time.monotonic()
    number = paged_after_hours(desk, clock)

    pages = {p.channel: p for p in desk.pages(number)}
    assert (pages["sms"].state, pages["sms"].tries) == ("sent", 2)
    assert pages["call"].state == "sent"
    assert time.monotonic() - started < 2.0
