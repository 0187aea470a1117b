"""Fault injection against the real stack: every call still yields exactly one ticket, every page goes out once.

Each test breaks one part (Redis, the database, Twilio's REST API, the recording
disk, the worker) at a chosen point of a simulated call and checks, after
the repair: no ticket lost, none duplicated, no page lost or sent twice, and the
caller heard sensible TwiML at every step (no 5xx, a <Say> in every answer).
The worker is killed last: the RQ scheduler lock it leaves behind outlives the test.
"""

from __future__ import annotations

import re
import subprocess
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import requests
from rq.registry import StartedJobRegistry

from ivr.simulate import CallPlan, new_sid
from testing.stack import (
    ONCALL_NUMBERS,
    ROOT,
    TIME_SCALE,
    VENV_BIN,
    Caller,
    Stack,
    assert_caller_served,
    call_params,
    heard,
    spoken_ticket,
    wait_until,
)
from testing.twilio_server import RecordedRequest, TwilioTestServer
from tests.faults.conftest import CALLER_RATE_LIMIT, fill_recordings_disk, new_number, unmount_recordings
from ticketing.models import Page

PAGE_ID = re.compile(r"[?&]page=(\d+)")
SENT = (200, 201)


# --- helpers ------------------------------------------------------------------------------------------------


def settle(stack: Stack, *keys: str, timeout: float = 30) -> None:
    """Wait until every outbox message named is completed, then a moment more for any stray duplicate job."""
    wait_until(
        lambda: all((m := stack.outbox(k)) is not None and m.completed_at is not None for k in keys),
        timeout,
        f"outbox messages {keys} to complete",
        every=0.2,
    )
    time.sleep(1.0)


def page_requests(twilio: TwilioTestServer) -> dict[int, list[RecordedRequest]]:
    """Twilio requests (SMS and calls) by the page id in their callback URLs."""
    found: dict[int, list[RecordedRequest]] = defaultdict(list)
    for req in twilio.requests:
        if req.method == "POST" and req.path.endswith(("/Messages.json", "/Calls.json")):
            m = PAGE_ID.search(req.param("Url") or req.param("StatusCallback") or "")
            if m:
                found[int(m.group(1))].append(req)
    return found


def wait_paged(stack: Stack, ticket: int, positions: int, timeout: float = 40) -> None:
    """Wait until the first ``positions`` escalation positions are paged and every page is sent or failed."""

    def done() -> bool:
        pages = [p for p in stack.pages(ticket) if p.channel != "follow-up"]
        return len({p.position for p in pages}) >= positions and all(p.state != "claimed" for p in pages)

    wait_until(done, timeout, f"{positions} escalation position(s) of ticket {ticket} to be paged", every=0.2)


def assert_each_page_sent_once(
    stack: Stack, twilio: TwilioTestServer, ticket: int, *, later_steps_may_be_cancelled: bool = False
) -> list[tuple[int, str, str]]:
    """Every page of the ticket is recorded once, sent, and reached Twilio exactly once (fault-injected tries aside).

    ``later_steps_may_be_cancelled``: where the first step's retries outlast its short wait, the next step
    may start and its pages be cancelled by the acknowledgement before they go out; that is right too.
    """
    # A send in flight when the acknowledgement came records its outcome when it returns: wait for that.
    wait_until(
        lambda: all(p.state != "claimed" for p in stack.pages(ticket))
        and not [j for j in stack.jobs_in_progress() if j.startswith("page-")],
        20,
        f"the pages of ticket {ticket} in flight to be recorded",
        every=0.2,
    )
    pages = stack.pages(ticket)
    assert pages, f"ticket {ticket} was never paged"
    keys = [(p.position, p.person, _kind(p)) for p in pages]
    in_cycles = [(_cycle(p), *key) for p, key in zip(pages, keys, strict=True)]
    assert len(in_cycles) == len(set(in_cycles)), f"a page was recorded twice: {in_cycles}"
    requests_by_page = page_requests(twilio)
    for page in pages:
        later = page.position > 0 or _cycle(page) > 0
        if later_steps_may_be_cancelled and later and page.state == "cancelled":
            assert not [r for r in requests_by_page[page.id] if r.status in SENT], "a cancelled page reached Twilio"
            continue
        assert page.state == "sent" and page.twilio_sid, f"page {keys[pages.index(page)]} is {page.state}: {page.error}"
        clean = [r for r in requests_by_page[page.id] if r.fault is None and r.status in SENT]
        assert len(clean) == 1, f"page {page.person}/{page.channel} reached Twilio {len(clean)} times"
        assert clean[0].param("To") == ONCALL_NUMBERS[page.person]
    return keys


def _cycle(page: Page) -> int:
    """The repeat cycle a page belongs to: its key is "<ticket>:c<cycle>:<round>:..." after the first cycle.

    On a slow machine the whole policy can run out before the acknowledgement arrives, and paging starts
    again from the first step: the same position paged in a new cycle is a new page, not a duplicate.
    """
    part = page.key.split(":")[1]
    return int(part[1:]) if part.startswith("c") and part[1:].isdigit() else 0


def _kind(page: Page) -> str:
    """A page's channel; a follow-up other than the transcript's ("<ticket>:<kind>:<person>") also names its kind:
    the numbers to check, or another call, go to a person paged once each besides the transcript."""
    kind = page.key.split(":")[1] if page.channel == "follow-up" and page.key.count(":") >= 2 else "transcript"
    return page.channel if kind == "transcript" else f"{page.channel} ({kind})"


def deliver(caller: Caller, twilio: TwilioTestServer, page_id: int, status: str = "delivered") -> None:
    """Twilio's status callback for a page SMS: the phone got it."""
    callback = next(
        r.param("StatusCallback") or ""
        for r in twilio.requests
        if r.path.endswith("/Messages.json") and f"page={page_id}" in (r.param("StatusCallback") or "")
    )
    caller.post(callback, {"MessageSid": new_sid("SM"), "AccountSid": twilio.account_sid, "MessageStatus": status},
                callback=True)  # fmt: skip


def acknowledge(caller: Caller, twilio: TwilioTestServer, ticket: int) -> None:
    """The first responder replies 'ACK <ticket>' to the page SMS: the escalation stops."""
    caller.post(
        "/twilio/sms",
        {
            "MessageSid": new_sid("SM"),
            "AccountSid": twilio.account_sid,
            "From": ONCALL_NUMBERS["first"],
            "To": "+18055922500",
            "Body": f"ACK {ticket}",
        },
    )
    assert "Acknowledged ticket" in caller.exchanges[-1].body or "already acknowledged" in caller.exchanges[-1].body


def sms_to(twilio: TwilioTestServer, number: str) -> list[RecordedRequest]:
    """SMS requests to ``number`` that Twilio accepted."""
    return [m for m in twilio.messages(to=number) if m.status in SENT]


def ticket_numbers(stack: Stack, number: str) -> list[int]:
    """Ticket numbers of every ticket from this caller."""
    return [t.number for t in stack.tickets_of_caller(number) if t.number is not None]


def readyz(stack: Stack) -> tuple[int, dict[str, object]]:
    """The readiness probe's answer."""
    r = requests.get(stack.url + "/readyz", timeout=5)
    return r.status_code, r.json()


# --- duplicate and out-of-order callbacks ---------------------------------------------------------------------


def test_every_webhook_of_a_call_delivered_again_makes_one_ticket_one_transcript_one_sms(
    stack: Stack, caller: Caller, audio: dict[str, bytes], twilio_api: TwilioTestServer
) -> None:
    number = new_number()
    result = caller.call(number, CallPlan(keys=["1"], audio=audio["short"], duplicate_callbacks=True))
    first = caller.exchanges_of(result.call_sid)
    assert_caller_served(first)
    ticket = stack.wait_transcribed(result.call_sid)
    assert ticket.transcription_state == "done" and "office" in (ticket.transcript or "").lower()

    # Twilio retries every request of the call once more, after the transcript is on the ticket.
    again = caller.replay(first)
    assert_caller_served(again)
    assert spoken_ticket(first) == ticket.number == spoken_ticket(again)
    settle(stack, f"transcribe:{result.recording_sid}", f"confirm:{ticket.number}")

    assert ticket_numbers(stack, number) == [ticket.number]
    audit = stack.audit(ticket.number)
    assert (audit.count("recording attached"), audit.count("transcribed"), audit.count("confirmation sent")) == (
        1,
        1,
        1,
    )
    assert len(sms_to(twilio_api, number)) == 1


def test_callbacks_out_of_order_and_twice_make_one_p1_paged_once(
    stack: Stack, caller: Caller, audio: dict[str, bytes], twilio_api: TwilioTestServer, media: object
) -> None:
    number, sid = new_number(), new_sid("CA")
    base = call_params(sid, number, twilio_api.account_sid)
    ex = [caller.signed("/twilio/voice", {**base, "CallStatus": "ringing"})]
    menu = ET.fromstring(ex[0].body).find("Gather")
    assert menu is not None
    ex.append(caller.signed(menu.get("action", ""), {**base, "Digits": "2"}))
    record = ET.fromstring(ex[-1].body).find("Record")
    assert record is not None
    recording_sid = new_sid("RE")
    media.add_recording(recording_sid, audio["short"])  # type: ignore[attr-defined]
    recording = {
        "RecordingSid": recording_sid,
        "RecordingUrl": media.recording_url(recording_sid),  # type: ignore[attr-defined]
        "RecordingDuration": "8",
    }
    status = {
        **base,
        **recording,
        "RecordingStatus": "completed",
        "RecordingChannels": "1",
        "RecordingSource": "RecordVerb",
    }
    ended = {**base, "CallStatus": "completed", "CallDuration": "31"}
    # Twilio promises no order between the recording's status callback, the call's status
    # callback and the <Record> action (requested after the caller hung up), and may repeat each.
    ex.append(caller.signed(record.get("recordingStatusCallback", ""), status))
    ex.append(caller.signed("/twilio/voice/status", ended))
    ex.append(caller.signed(record.get("action", ""), {**base, **recording, "Digits": "hangup"}))
    ex.append(caller.signed(record.get("recordingStatusCallback", ""), status))
    ex.append(caller.signed("/twilio/voice/status", ended))
    assert_caller_served(ex)

    ticket = stack.wait_transcribed(sid)
    assert (ticket.priority, ticket.recording_sid) == ("P1", recording_sid)
    assert not ticket.summary.startswith("Missed call") and "no message" not in stack.audit(ticket.number)
    wait_paged(stack, ticket.number, 1)
    settle(stack, f"page:{ticket.number}", f"transcript-ready:{ticket.number}", f"confirm:{ticket.number}")
    acknowledge(caller, twilio_api, ticket.number)

    assert ticket_numbers(stack, number) == [ticket.number]
    # The settling above may outlast the first step's wait: the next step's pages then went out, or
    # were cancelled by the acknowledgement before they did.
    pages = assert_each_page_sent_once(stack, twilio_api, ticket.number, later_steps_may_be_cancelled=True)
    assert (0, "first", "sms") in pages and (0, "first", "call") in pages
    assert (-1, "first", "follow-up") in pages  # the transcript, once
    assert len(sms_to(twilio_api, number)) == 1
    audit = stack.audit(ticket.number)
    assert audit.count("paging requested") == 1 and audit.count("paging started") == 1


# --- a flood of calls from one number ------------------------------------------------------------------------


def test_a_flood_from_one_number_is_refused_politely_beyond_the_limit_and_others_get_through(
    stack: Stack, caller: Caller, audio: dict[str, bytes], twilio_api: TwilioTestServer
) -> None:
    flooder, bystander = new_number(), new_number()
    calls = [flooder] * 10 + [bystander]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda n: caller.call(n, CallPlan(keys=["1"], audio=audio["short"])), calls))
    for r in results:
        assert_caller_served(caller.exchanges_of(r.call_sid))
    flood = results[:10]
    refused = [r for r in flood if "received many calls from your number" in heard(caller.exchanges_of(r.call_sid))]
    taken = [r for r in flood if r not in refused]
    # Sync gunicorn workers check and count in one transaction each: two calls racing past the
    # last free slot can both get in, so the limit holds to within (web workers - 1).
    assert CALLER_RATE_LIMIT <= len(taken) <= CALLER_RATE_LIMIT + 1, [len(taken), len(refused)]
    for r in refused:
        assert stack.ticket_of_call(r.call_sid) is None
    tickets = stack.tickets_of_calls([r.call_sid for r in taken])
    assert sorted(t.number for t in tickets) == sorted(spoken_ticket(caller.exchanges_of(r.call_sid)) for r in taken)
    assert ticket_numbers(stack, flooder) == [t.number for t in tickets]
    (other,) = stack.tickets_of_caller(bystander)
    assert spoken_ticket(caller.exchanges_of(results[-1].call_sid)) == other.number

    for r in [*taken, results[-1]]:
        stack.wait_transcribed(r.call_sid)
    settle(stack, *(f"confirm:{t.number}" for t in [*tickets, other]))
    assert len(sms_to(twilio_api, flooder)) == len(taken)  # one confirmation per ticket, none for refused calls
    # Still refused afterwards (the window is 10 minutes).
    late = caller.call(flooder, CallPlan(keys=["1"], audio=audio["short"]))
    assert "received many calls" in heard(caller.exchanges_of(late.call_sid))


# --- Twilio's REST API failing -------------------------------------------------------------------------------


def test_twilio_500s_on_the_confirmation_sms_are_retried_until_one_goes_out(
    stack: Stack, caller: Caller, audio: dict[str, bytes], twilio_api: TwilioTestServer
) -> None:
    number = new_number()
    twilio_api.fail_next("/Messages.json", status=500, count=2)
    result = caller.call(number, CallPlan(keys=["1"], audio=audio["short"]))
    assert_caller_served(caller.exchanges_of(result.call_sid))
    ticket = stack.wait_transcribed(result.call_sid)
    settle(stack, f"confirm:{ticket.number}")
    tries = twilio_api.messages(to=number)
    assert [r.status for r in tries] == [500, 500, 201]  # two 500s, retried by RQ one second apart
    assert stack.audit(ticket.number).count("confirmation sent") == 1


def test_a_page_survives_twilio_500s_and_timeouts_and_is_not_sent_twice(
    stack: Stack, caller: Caller, audio: dict[str, bytes], twilio_api: TwilioTestServer
) -> None:
    # The page job sends SMS and call at once: the SMS request hangs past the 5 s client
    # timeout, the call gets a 500; each is tried again.
    twilio_api.timeout_next("/Messages.json", seconds=6.5)
    twilio_api.fail_next("/Calls.json", status=500)
    number = new_number()
    result = caller.call(number, CallPlan(keys=["2"], audio=audio["short"]))
    assert_caller_served(caller.exchanges_of(result.call_sid))
    assert "P 1 critical" in heard(caller.exchanges_of(result.call_sid))
    ticket = stack.wait_transcribed(result.call_sid)
    wait_paged(stack, ticket.number, 1)
    settle(stack, f"page:{ticket.number}", f"transcript-ready:{ticket.number}")
    acknowledge(caller, twilio_api, ticket.number)

    # The first step's wait in this stack is 6 s, shorter than its SMS's 6.5 s timeout and retry.
    assert_each_page_sent_once(stack, twilio_api, ticket.number, later_steps_may_be_cancelled=True)
    by_channel = {p.channel: p for p in stack.pages(ticket.number) if p.position == 0 and _cycle(p) == 0}
    assert by_channel["sms"].tries == 2 and by_channel["call"].tries == 2
    # The SMS that timed out on our side still reached "Twilio": a timeout can duplicate an
    # SMS (Twilio's API has no idempotency key); the page is never lost, and recorded once.
    held = [r for r in page_requests(twilio_api)[by_channel["sms"].id] if r.fault == "timeout"]
    assert len(held) == 1


def test_when_twilio_says_the_first_steps_number_is_invalid_the_next_step_is_paged_at_once(
    stack: Stack, caller: Caller, twilio_api: TwilioTestServer
) -> None:
    # Error codes about the number (not a mobile, not a valid number): the person cannot be
    # reached, so the escalation moves on. A provider failure never does (test_paging_faults).
    twilio_api.fail_next("/Messages.json", status=400, code=21614)
    twilio_api.fail_next("/Calls.json", status=400, code=21217)
    number = new_number()
    result = caller.call(number, CallPlan(keys=["2"], audio=None))  # hangs up at the beep: still a P1
    exchanges = caller.exchanges_of(result.call_sid)
    assert_caller_served(exchanges)
    (ticket,) = stack.tickets_of_caller(number)
    assert ticket.priority == "P1"
    wait_paged(stack, ticket.number, 2, timeout=20)
    pages = stack.pages(ticket.number)
    first = [p for p in pages if p.position == 0]
    assert {p.state for p in first} == {"failed"} and all(p.tries == 1 for p in first)
    assert "escalated early" in stack.audit(ticket.number)
    second = [p for p in pages if p.position == 1]
    # Measured between the two steps' claims, not from the call (which a loaded machine slows):
    # the first step's timer is 6 s (wait_minutes 0.1).
    gap = min(p.claimed_at for p in second) - max(p.claimed_at for p in first)
    assert gap.total_seconds() < 4.0, f"the second step waited {gap} although the first was unreachable"
    assert {(p.person, p.channel, p.state) for p in second} == {("second", "sms", "sent"), ("second", "call", "sent")}
    requests_by_page = page_requests(twilio_api)
    for p in second:
        assert len([r for r in requests_by_page[p.id] if r.status in SENT]) == 1
    caller.post(
        "/twilio/sms",
        {
            "MessageSid": new_sid("SM"),
            "AccountSid": twilio_api.account_sid,
            "From": ONCALL_NUMBERS["second"],
            "To": "+18055922500",
            "Body": f"ACK {ticket.number}",
        },
    )


# --- Redis going away ----------------------------------------------------------------------------------------


def test_redis_stopped_mid_call_loses_nothing_and_the_sweeper_catches_up(
    stack: Stack, caller: Caller, audio: dict[str, bytes], twilio_api: TwilioTestServer
) -> None:
    worker = stack.worker
    number = new_number()
    stopped: list[str] = []

    def stop_redis_after_the_greeting(path: str) -> None:
        if path.startswith("/twilio/voice/menu") and not stopped:
            stack.redis.stop()
            stopped.append(path)

    caller.before_post.append(stop_redis_after_the_greeting)
    result = caller.call(number, CallPlan(keys=["1"], audio=audio["short"]))
    caller.before_post.clear()
    exchanges = caller.exchanges_of(result.call_sid)
    assert stopped and not stack.redis.ping()
    assert_caller_served(exchanges)
    assert max(e.seconds for e in exchanges) < 3, "a webhook waited on Redis"
    ticket = stack.ticket_of_call(result.call_sid)
    assert ticket is not None and spoken_ticket(exchanges) == ticket.number
    assert ticket.transcription_state == "pending"
    status, body = readyz(stack)
    assert status == 503 and "redis" in body["failing"]  # type: ignore[operator]
    time.sleep(2)  # Redis stays down a while: the worker and sweeper must ride it out

    stack.redis.start()  # empty: everything that was queued is gone
    ticket = stack.wait_transcribed(result.call_sid, timeout=45)
    assert ticket.transcription_state == "done"
    settle(stack, f"transcribe:{result.recording_sid}", f"confirm:{ticket.number}")
    assert ticket_numbers(stack, number) == [ticket.number]
    assert len(sms_to(twilio_api, number)) == 1
    assert stack.audit(ticket.number).count("transcribed") == 1
    assert worker is not None and worker.alive(), "the worker exited when Redis went away"


def test_redis_stopped_between_escalation_steps_pages_every_step_once(
    stack: Stack, caller: Caller, audio: dict[str, bytes], twilio_api: TwilioTestServer
) -> None:
    number = new_number()
    result = caller.call(number, CallPlan(keys=["2"], audio=audio["short"]))
    assert_caller_served(caller.exchanges_of(result.call_sid))
    ticket = stack.wait_transcribed(result.call_sid)
    wait_paged(stack, ticket.number, 1)
    # The first responder's phone reports the SMS delivered at once: someone was reached, so after the
    # fallback's wait the escalation is exhausted (with nobody reached it would start round 1 again, which
    # a slow machine reaches before this test looks).
    first_sms = next(p for p in stack.pages(ticket.number) if p.position == 0 and p.channel == "sms")
    deliver(caller, twilio_api, first_sms.id)
    settle(stack, f"transcript-ready:{ticket.number}")

    # Step 2's timer lives in Redis (an RQ scheduled job): lose it.
    stack.redis.stop()
    wait_paged(stack, ticket.number, 2, timeout=30)  # the sweeper pages it from the database
    stack.redis.start()
    wait_paged(stack, ticket.number, 3, timeout=30)  # and the fallback after it
    wait_until(
        lambda: (e := stack.escalation(ticket.number)) is not None and e.state == "exhausted",
        30,
        "the escalation to be exhausted",
        every=0.2,
    )
    time.sleep(1.0)

    keys = assert_each_page_sent_once(stack, twilio_api, ticket.number)
    assert sorted(k for k in keys if not k[2].startswith("follow-up")) == [
        (0, "first", "call"),
        (0, "first", "sms"),
        (1, "second", "call"),
        (1, "second", "sms"),
        (2, "boss", "call"),
        (2, "boss", "sms"),
    ]
    assert ticket_numbers(stack, number) == [ticket.number]


def test_job_retries_fire_again_soon_after_redis_restarts(
    stack: Stack, caller: Caller, audio: dict[str, bytes], twilio_api: TwilioTestServer
) -> None:
    stack.redis.stop()
    time.sleep(2)  # a blip: longer than the scheduler's one-second poll
    stack.redis.start()
    number = new_number()
    twilio_api.fail_next("/Messages.json", status=500)
    result = caller.call(number, CallPlan(keys=["1"], audio=audio["short"]))
    assert_caller_served(caller.exchanges_of(result.call_sid))
    started = time.monotonic()
    # The one worker may be reading another transcript when the retry falls due (the refine queue's
    # job does not give way mid-run): the retry must go out within 15 s of the worker being free (a quiet
    # machine's figure, stretched by TEST_TIME_SCALE on a loaded one, as every wait of the stack is).
    free_for = 15 * TIME_SCALE
    deadline, busy_with = time.monotonic() + free_for, None
    while not any(m.status == 201 for m in twilio_api.messages(to=number)):
        others = [j for j in stack.jobs_in_progress() if j.startswith(("refine-", "transcribe-"))]
        if others:
            busy_with, deadline = others, max(deadline, time.monotonic() + free_for)
        assert time.monotonic() < deadline, (
            f"the confirmation SMS was not retried within {free_for:.0f} s of the worker being free "
            f"(JOB_RETRY_INTERVALS=1,1,1; the worker was last busy with {busy_with})"
        )
        assert time.monotonic() < started + 180, "the worker never came free to retry the confirmation SMS"
        time.sleep(0.2)


# --- the database restarting ---------------------------------------------------------------------------------


def test_database_unreachable_between_webhooks_still_takes_the_message(
    stack: Stack, caller: Caller, audio: dict[str, bytes], twilio_api: TwilioTestServer
) -> None:
    proxy = stack.db.proxy
    assert proxy is not None
    number = new_number()
    seen: list[str] = []

    def restart_database_around_the_menu(path: str) -> None:
        seen.append(path)
        if path.startswith("/twilio/voice/menu"):
            proxy.cut()
        elif path.startswith(("/twilio/voice/recording-status", "/twilio/voice/recorded")):
            proxy.restore()

    caller.before_post.append(restart_database_around_the_menu)
    result = caller.call(number, CallPlan(keys=["1"], audio=audio["short"]))
    caller.before_post.clear()
    exchanges = caller.exchanges_of(result.call_sid)
    assert_caller_served(exchanges)
    said = heard(exchanges)
    assert "our phone system is having trouble" in said  # the menu could not reach the database
    ticket = stack.ticket_of_call(result.call_sid)
    assert ticket is not None and spoken_ticket(exchanges) == ticket.number
    ticket = stack.wait_transcribed(result.call_sid)
    assert ticket.transcription_state == "done"
    settle(stack, f"confirm:{ticket.number}")
    assert ticket_numbers(stack, number) == [ticket.number]
    assert len(sms_to(twilio_api, number)) == 1


def test_database_unreachable_when_the_recording_arrives_asks_again_and_keeps_one_ticket(
    stack: Stack, caller: Caller, audio: dict[str, bytes], twilio_api: TwilioTestServer
) -> None:
    proxy = stack.db.proxy
    assert proxy is not None
    number = new_number()
    recordings: list[str] = []

    def cut_for_the_first_recording(path: str) -> None:
        if path.startswith("/twilio/voice/recording-status"):
            recordings.append(path)
            if len(recordings) == 1:
                proxy.cut()
                code, body = readyz(stack)
                assert code == 503 and "database" in body["failing"]  # type: ignore[operator]
            else:
                proxy.restore()

    caller.before_post.append(cut_for_the_first_recording)
    result = caller.call(number, CallPlan(keys=["1"], audio=audio["short"]))
    caller.before_post.clear()
    proxy.restore()
    exchanges = caller.exchanges_of(result.call_sid)
    assert_caller_served(exchanges)
    assert len(recordings) == 2, "the caller was not offered a second chance to leave the message"
    assert "our phone system is having trouble" in heard(exchanges)
    ticket = stack.wait_transcribed(result.call_sid)
    assert spoken_ticket(exchanges) == ticket.number and ticket.recording_sid == result.recording_sid
    settle(stack, f"confirm:{ticket.number}")
    assert ticket_numbers(stack, number) == [ticket.number]
    assert len(sms_to(twilio_api, number)) == 1


# --- a full recording disk -----------------------------------------------------------------------------------


def test_a_full_recording_disk_fails_the_transcription_visibly_and_a_retry_after_freeing_it_works(
    stack: Stack, caller: Caller, audio: dict[str, bytes], twilio_api: TwilioTestServer
) -> None:
    how = fill_recordings_disk(stack.recordings_dir)
    try:
        number = new_number()
        result = caller.call(number, CallPlan(keys=["1"], audio=audio["short"]))
        exchanges = caller.exchanges_of(result.call_sid)
        assert_caller_served(exchanges)
        ticket = stack.wait_transcribed(result.call_sid, timeout=30)
        assert spoken_ticket(exchanges) == ticket.number
        assert ticket.transcription_state == "failed", how
        assert re.search(r"No space left|Not a directory|File exists", ticket.transcription_error or ""), (
            how,
            ticket.transcription_error,
        )
        assert ticket.transcription_attempts == 4  # the first try and JOB_RETRY_INTERVALS' three
        settle(stack, f"confirm:{ticket.number}")
        assert len(sms_to(twilio_api, number)) == 1  # the caller is told the ticket number all the same
    finally:
        unmount_recordings(stack.recordings_dir)

    retry = subprocess.run(
        [str(VENV_BIN / "flask"), "--app", "wsgi", "ticket", "retry-transcription", str(ticket.number)],
        env=stack.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert retry.returncode == 0, retry.stderr
    ticket = wait_until(
        lambda: (t := stack.ticket_of_call(result.call_sid)) is not None and t.transcription_state == "done" and t,
        30,
        "the retried transcription",
    )
    assert "office" in (ticket.transcript or "").lower()
    assert ticket_numbers(stack, number) == [ticket.number]
    assert stack.worker is not None and stack.worker.alive()


# --- the worker killed ---------------------------------------------------------------------------------------


def test_a_worker_killed_mid_transcription_is_replaced_and_its_job_dispatched_again_within_seconds_once(
    stack: Stack, caller: Caller, audio: dict[str, bytes], twilio_api: TwilioTestServer
) -> None:
    number = new_number()
    result = caller.call(number, CallPlan(keys=["1"], audio=audio["long"]))
    exchanges = caller.exchanges_of(result.call_sid)
    assert_caller_served(exchanges)
    ticket = stack.ticket_of_call(result.call_sid)
    assert ticket is not None and spoken_ticket(exchanges) == ticket.number
    key = f"transcribe:{result.recording_sid}"
    job_id = key.replace(":", "-")

    # Mid-transcription: the audio is stored (the download is done) and no transcript yet.
    wait_until(lambda: "audio stored" in stack.audit(ticket.number), 20, "the worker to start transcribing", every=0.05)
    killed = stack.worker
    assert killed is not None
    killed.kill9()
    killed_at = datetime.now(UTC)
    assert stack.ticket_of_call(result.call_sid).transcription_state == "pending"  # type: ignore[union-attr]
    stack.start_worker(scheduler=False)  # the dead worker's scheduler lock outlives it by a minute

    ticket = stack.wait_transcribed(result.call_sid, timeout=120)
    assert ticket.transcription_state == "done" and ticket.transcription_attempts == 2
    settle(stack, key, f"confirm:{ticket.number}")
    message = stack.outbox(key)
    assert message is not None and message.attempts == 2 and message.dispatched_at is not None
    # Dispatched again once the dead worker's heartbeat lapsed (3 beats of 1 s here) and the sweeper passed
    # (every 5 s): seconds after the kill, not TRANSCRIPTION_PENDING_MINUTES (1 here) after the first
    # dispatch nor RQ's job timeout (210 s). Read from the outbox row, so a slow machine cannot fake it.
    redispatched_after = (message.dispatched_at - killed_at).total_seconds()
    assert redispatched_after < 30, f"dispatched again {redispatched_after:.0f} s after the kill"
    # The dead worker's execution is out of RQ's started registry: RQ's clean-up will not run the job a third time.
    started = StartedJobRegistry("supportline", connection=stack.redis.client())
    assert job_id not in started.get_job_ids(cleanup=False)
    audit = stack.audit(ticket.number)
    assert (audit.count("audio stored"), audit.count("transcribed")) == (1, 1)
    assert ticket_numbers(stack, number) == [ticket.number]
    assert len(sms_to(twilio_api, number)) == 1
