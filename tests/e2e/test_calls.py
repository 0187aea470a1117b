"""Simulated calls through the whole support line, signed exactly as Twilio signs them."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from sqlalchemy import event, func, select

from ivr.simulate import CallPlan, MediaServer, TwilioSimulator
from settings import Settings
from testing.twilio_server import free_port
from tests.conftest import FixedClock
from tests.e2e.conftest import PUBLIC, Service
from ticketing import lifecycle
from ticketing.db import transaction
from ticketing.models import CallEvent, Client, Contact, OutboxMessage, Ticket

DANA = "+18055550142"


def tickets(live: Service) -> list[Ticket]:
    with live.runtime.sessions() as s:
        return list(s.scalars(select(Ticket).order_by(Ticket.id)).all())


def outbox_keys(live: Service) -> list[str]:
    with live.runtime.sessions() as s:
        return sorted(s.scalars(select(OutboxMessage.key)).all())


@pytest.fixture
def acme(live: Service) -> None:
    with transaction(live.runtime.sessions) as s:
        client = Client(name="Acme Dental", main_number="+18055550100")
        s.add_all(
            [
                Contact(client=client, name="Dana Whitfield", phone=DANA),
                Contact(client=client, name="Luis", phone="+18055550143"),
            ]
        )
        s.add(Client(name="Pismo Title", main_number="+18055550200"))


def test_a_coordinator_who_presses_1_takes_the_call_and_no_ticket_is_made(sim: TwilioSimulator, live: Service) -> None:
    result = sim.call(DANA, CallPlan(keys=["1"], coordinator="accept"))
    assert "Calls are recorded" in result.heard
    assert "Please hold while we connect you" in result.heard
    assert any("Support call from 8 0 5, 5 5 5, 0 1 4 2. Press 1 to accept." in line for line in result.lines)
    assert tickets(live) == []
    with live.runtime.sessions() as s:
        events = s.scalars(
            select(CallEvent.event).where(CallEvent.call_sid == result.call_sid).order_by(CallEvent.id)
        ).all()
    assert events == ["incoming", "menu", "coordinator accepted", "coordinator ring"]


@pytest.mark.parametrize("coordinator", ["busy", "no-answer", "failed", "voicemail"])
def test_an_unanswered_or_voicemail_screened_ring_goes_to_a_p3_voicemail(
    sim: TwilioSimulator, live: Service, voicemail_wav: bytes, coordinator: str, acme: None
) -> None:
    result = sim.call(DANA, CallPlan(keys=[], coordinator=coordinator, audio=voicemail_wav))
    assert "Our service coordinator is on another call" in result.heard
    (ticket,) = tickets(live)
    assert (ticket.priority, ticket.source, ticket.caller_number) == ("P3", "voicemail", DANA)
    assert ticket.client_id is not None and ticket.call_sid == result.call_sid
    assert ticket.recording_sid == result.recording_sid and ticket.recording_duration is not None
    assert ticket.transcription_state == "pending"
    spoken = " ".join(str(ticket.number))
    assert f"Your ticket number is {spoken}." in result.heard
    assert result.ticket_number == ticket.number
    assert outbox_keys(live) == [f"confirm:{ticket.number}", f"transcribe:{result.recording_sid}"]


def test_press_2_at_the_menu_makes_a_p1_and_requests_a_page(
    sim: TwilioSimulator, live: Service, voicemail_wav: bytes
) -> None:
    result = sim.call(DANA, CallPlan(keys=["2"], audio=voicemail_wav))
    (ticket,) = tickets(live)
    assert ticket.priority == "P1" and ticket.critical_requested
    assert "P 1 critical ticket" in result.heard and "emergency response team" in result.heard
    assert f"page:{ticket.number}" in outbox_keys(live)


def test_press_2_during_the_voicemail_prompt_makes_a_p1(
    sim: TwilioSimulator, live: Service, voicemail_wav: bytes
) -> None:
    result = sim.call(DANA, CallPlan(keys=["", "2"], coordinator="busy", audio=voicemail_wav))
    (ticket,) = tickets(live)
    assert ticket.priority == "P1"
    assert [a.action for a in _audit(live, ticket)][:3] == ["created", "priority changed", "paging requested"]
    assert "P 1 critical ticket" in result.heard


def test_press_2_while_recording_is_not_lost(sim: TwilioSimulator, live: Service, voicemail_wav: bytes) -> None:
    sim.call(DANA, CallPlan(keys=["", ""], coordinator="busy", audio=voicemail_wav, end_recording_with="2"))
    (ticket,) = tickets(live)
    assert ticket.priority == "P1"
    assert f"page:{ticket.number}" in outbox_keys(live)


def test_after_hours_a_message_is_a_p3_for_the_next_business_day(
    sim: TwilioSimulator, live: Service, clock: FixedClock, voicemail_wav: bytes
) -> None:
    clock.set("2026-11-18 19:30")
    result = sim.call(DANA, CallPlan(keys=[], audio=voicemail_wav))
    assert "Our office is now closed." in result.heard
    assert "coordinator" not in " ".join(result.lines[:3]).lower() or "Please hold" not in result.heard
    (ticket,) = tickets(live)
    assert (ticket.priority, ticket.after_hours) == ("P3", True)
    with live.runtime.sessions() as s:
        t = lifecycle.get_ticket(s, ticket.number)  # type: ignore[arg-type]
        assert (
            t.milestone("first_response").due_at.astimezone(live.runtime.policy.timezone).strftime("%m-%d %H:%M")
            == "11-19 08:12"
        )


def test_after_hours_press_2_pages_the_after_hours_team(
    sim: TwilioSimulator, live: Service, clock: FixedClock, voicemail_wav: bytes
) -> None:
    clock.set("2026-11-21 23:00")
    result = sim.call(DANA, CallPlan(keys=["2"], audio=voicemail_wav))
    (ticket,) = tickets(live)
    assert ticket.priority == "P1" and ticket.after_hours
    assert "after-hours on-call engineer is being notified" in result.heard
    assert f"page:{ticket.number}" in outbox_keys(live)


def test_on_a_holiday_the_after_hours_menu_names_the_holiday(
    sim: TwilioSimulator, live: Service, clock: FixedClock, voicemail_wav: bytes
) -> None:
    clock.set("2026-11-26 10:00")
    result = sim.call(DANA, CallPlan(keys=["1"], audio=voicemail_wav))
    assert "Our office is closed today for Thanksgiving Day." in result.heard
    assert "Please hold" not in result.heard
    (ticket,) = tickets(live)
    assert ticket.after_hours and ticket.priority == "P3"


def test_hanging_up_before_the_beep_still_leaves_a_call_back_ticket(sim: TwilioSimulator, live: Service) -> None:
    result = sim.call(DANA, CallPlan(keys=[], coordinator="no-answer", audio=None))
    (ticket,) = tickets(live)
    assert ticket.recording_sid is None and ticket.transcription_state == "none"
    assert ticket.summary.startswith("Missed call from")
    # The call-status callback (Twilio console: "call status changes") confirms it to the caller.
    sim.post(
        "/twilio/voice/status",
        {
            "CallSid": result.call_sid,
            "AccountSid": sim.account_sid,
            "From": DANA,
            "To": sim.to,
            "CallStatus": "completed",
        },
    )
    sim.post(
        "/twilio/voice/status",
        {
            "CallSid": result.call_sid,
            "AccountSid": sim.account_sid,
            "From": DANA,
            "To": sim.to,
            "CallStatus": "completed",
        },
    )
    assert outbox_keys(live) == [f"confirm:{ticket.number}"]
    assert [a.action for a in _audit(live, ticket)] == ["created", "no message"]


def test_press_2_then_hang_up_still_gives_a_p1_and_a_page(sim: TwilioSimulator, live: Service) -> None:
    sim.call(DANA, CallPlan(keys=["2"], audio=None))
    (ticket,) = tickets(live)
    assert ticket.priority == "P1" and ticket.recording_sid is None
    assert outbox_keys(live) == [f"page:{ticket.number}"]


def test_duplicate_callbacks_make_one_ticket_one_transcription_and_one_page(
    sim: TwilioSimulator, live: Service, voicemail_wav: bytes
) -> None:
    result = sim.call(DANA, CallPlan(keys=["2"], audio=voicemail_wav, duplicate_callbacks=True))
    assert tickets(live).__len__() == 1
    (ticket,) = tickets(live)
    assert outbox_keys(live) == sorted(
        [f"confirm:{ticket.number}", f"page:{ticket.number}", f"transcribe:{result.recording_sid}"]
    )
    assert [a.action for a in _audit(live, ticket)].count("recording attached") == 1


def test_a_recording_callback_that_arrives_before_the_action_still_makes_one_ticket(
    sim: TwilioSimulator, live: Service
) -> None:
    params = {
        "CallSid": "CA" + "a" * 32,
        "AccountSid": sim.account_sid,
        "From": DANA,
        "To": sim.to,
        "RecordingSid": "RE" + "b" * 32,
        "RecordingUrl": "https://api.twilio.com/x/RE" + "b" * 32,
        "RecordingStatus": "completed",
        "RecordingDuration": "12",
    }
    sim.post("/twilio/voice/recording-status", params)
    sim.post("/twilio/voice/recorded", {**params, "Digits": "#"})
    sim.post("/twilio/voice/recording-status", params)
    assert len(tickets(live)) == 1


@pytest.mark.parametrize("ticket_first", [True, False], ids=["ticket-open", "no-ticket-yet"])
def test_two_recording_callbacks_at_the_same_instant_attach_the_recording_once(
    sim: TwilioSimulator, live: Service, ticket_first: bool
) -> None:
    rounds = 12
    # Widen the race as far as it goes: each callback's first look-up of the call's ticket waits until the
    # other callback has looked too, so both read "no recording yet" before either writes; then one goes on
    # at once and the other after it has committed (the interleaving that wrote two audit rows).
    lookups: dict[str, threading.Barrier] = {}
    seen = threading.local()

    def both_look_first(_conn, _cursor, statement, parameters, _context, _many) -> None:  # type: ignore[no-untyped-def]
        if "FROM tickets" in statement and "call_sid" in statement and not getattr(seen, "done", False):
            seen.done = True
            values = parameters.values() if isinstance(parameters, dict) else parameters
            barrier = next((lookups[v] for v in values if v in lookups), None)
            if barrier is not None:
                try:
                    seen.slow = barrier.wait(timeout=2) == 0
                except threading.BrokenBarrierError:
                    pass

    def one_waits_for_the_other(*_args) -> None:  # type: ignore[no-untyped-def]
        if getattr(seen, "slow", False):
            seen.slow = False
            time.sleep(0.3)  # this one goes on with what it read only once the other has committed

    event.listen(live.runtime.engine, "before_cursor_execute", both_look_first)
    event.listen(live.runtime.engine, "after_cursor_execute", one_waits_for_the_other)

    def signed_post(path: str, params: dict[str, str], barrier: threading.Barrier) -> int:
        signature = sim.validator.compute_signature(PUBLIC + path, params)
        barrier.wait()
        return requests.post(
            live.url + path, data=params, headers={"X-Twilio-Signature": signature}, timeout=30
        ).status_code

    for i in range(rounds):
        call = f"CA{i + 500:032x}"
        params = {
            "CallSid": call,
            "AccountSid": sim.account_sid,
            "From": DANA,
            "To": sim.to,
            "RecordingSid": f"RE{i + 500:032x}",
            "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{sim.account_sid}/Recordings/RE{i + 500:032x}",
            "RecordingStatus": "completed",
            "RecordingDuration": "12",
        }
        if ticket_first:
            sim.post("/twilio/voice/voicemail/key", {**params, "Digits": "1"})  # the prompt opens the ticket
        barrier = threading.Barrier(2)
        lookups[call] = threading.Barrier(2)
        with ThreadPoolExecutor(2) as pool:
            recorded = pool.submit(signed_post, "/twilio/voice/recorded", {**params, "Digits": "#"}, barrier)
            status = pool.submit(signed_post, "/twilio/voice/recording-status", params, barrier)
            codes = [recorded.result(), status.result()]
        assert codes == [200, 204]
    event.remove(live.runtime.engine, "before_cursor_execute", both_look_first)
    event.remove(live.runtime.engine, "after_cursor_execute", one_waits_for_the_other)
    assert len(tickets(live)) == rounds
    for ticket in tickets(live):
        actions = [a.action for a in _audit(live, ticket)]
        assert actions.count("recording attached") == 1, actions
        assert "extra recording" not in actions
    assert sum(k.startswith("transcribe:") for k in outbox_keys(live)) == rounds


@pytest.mark.parametrize(
    "recording_url", ["http://127.0.0.1:1/2010-04-01/Recordings/RE", "https://media.evil.example/Recordings/RE"]
)
def test_a_recording_url_off_twilios_media_hosts_is_never_fetched_and_the_ticket_says_why(
    sim: TwilioSimulator, live: Service, recording_url: str
) -> None:
    live.runtime.settings = live.runtime.settings.with_overrides(twilio_api_base_url="https://api.twilio.com")
    params = {
        "CallSid": "CA" + "9" * 32,
        "AccountSid": sim.account_sid,
        "From": DANA,
        "To": sim.to,
        "RecordingSid": "RE" + "9" * 32,
        "RecordingUrl": recording_url + "9" * 32,
        "RecordingDuration": "12",
        "Digits": "#",
    }
    body = sim.post("/twilio/voice/recorded", params)
    assert "your ticket number is" in body  # the caller's message is taken all the same
    live.work()
    (ticket,) = tickets(live)
    assert ticket.transcription_state == "failed"
    assert "RecordingRefusedError" in (ticket.transcription_error or "")
    assert "not one of Twilio's media hosts (https://api.twilio.com:443)" in (ticket.transcription_error or "")


class Snoop(ThreadingHTTPServer):
    """A real HTTP server on a free port that answers 200 and keeps every connection and Authorization header."""

    daemon_threads = True

    def __init__(self) -> None:
        self.connections = 0
        self.authorizations: list[str] = []
        snoop = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                snoop.authorizations.append(self.headers.get("Authorization", ""))
                self.send_response(200)
                self.send_header("Content-Type", "audio/x-wav")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    def verify_request(self, request: Any, client_address: Any) -> bool:
        self.connections += 1  # TLS or not: any connection at all is a try to fetch from here
        return True


@pytest.mark.parametrize("other", ["port", "scheme"])
def test_a_recording_url_on_another_port_or_scheme_of_the_media_host_gets_no_credentials(
    sim: TwilioSimulator, live: Service, media: MediaServer, voicemail_wav: bytes, other: str
) -> None:
    # The media server is TWILIO_API_BASE_URL here; the snoop listens on another port of the same host.
    live.runtime.settings = live.runtime.settings.with_overrides(twilio_api_base_url=media.base_url)
    snoop = Snoop()
    threading.Thread(target=snoop.serve_forever, daemon=True).start()
    scheme = "http" if other == "port" else "https"
    try:
        refused_sid, ordinary_sid = "RE" + "7" * 32, "RE" + "6" * 32
        media.add_recording(ordinary_sid, voicemail_wav)
        for call, recording_sid, recording_url in (
            ("CA" + "7" * 32, refused_sid, f"{scheme}://127.0.0.1:{snoop.server_port}/2010-04-01/Recordings/"),
            ("CA" + "6" * 32, ordinary_sid, media.recording_url("")),
        ):
            params = {
                "CallSid": call,
                "AccountSid": sim.account_sid,
                "From": DANA,
                "To": sim.to,
                "RecordingSid": recording_sid,
                "RecordingUrl": recording_url + recording_sid,
                "RecordingDuration": "12",
                "Digits": "#",
            }
            assert "your ticket number is" in sim.post("/twilio/voice/recorded", params)
        live.work()
    finally:
        snoop.shutdown()
        snoop.server_close()
    assert (snoop.connections, snoop.authorizations) == (0, [])
    refused, ordinary = tickets(live)
    assert refused.transcription_state == "failed"
    assert "RecordingRefusedError" in (refused.transcription_error or "")
    assert f"{scheme}://127.0.0.1:{snoop.server_port} is not one of Twilio's media hosts" in (
        refused.transcription_error or ""
    )
    assert ordinary_sid in media.fetched and ordinary.audio_path


def test_status_line_reads_out_own_tickets_only(sim: TwilioSimulator, live: Service, acme: None) -> None:
    runtime = live.runtime
    with transaction(runtime.sessions) as s:
        own = lifecycle.open_ticket(
            s,
            policy=runtime.policy,
            now=runtime.now(),
            priority="P2",
            source="phone",
            actor="c",
            caller_number="+18055550143",
        )
        other = lifecycle.open_ticket(
            s,
            policy=runtime.policy,
            now=runtime.now(),
            priority="P2",
            source="phone",
            actor="c",
            caller_number="+18055550200",
        )
        own_n, other_n = own.number, other.number
    mine = sim.call(DANA, CallPlan(keys=["3", f"{own_n}#"]))
    assert f"Ticket {' '.join(str(own_n))} is new, priority P 2, high." in mine.heard
    assert "a first response by Wednesday at 10:12 AM" in mine.heard
    theirs = sim.call(DANA, CallPlan(keys=["3", f"{other_n}#", "999999#", "12#"]))
    assert "We could not find that ticket. Please enter your ticket number again" in theirs.heard
    assert "Goodbye" in theirs.heard and str(other_n) not in theirs.heard.replace(" ", "")
    assert "is new" not in theirs.heard


def test_three_status_line_misses_end_the_call_even_when_a_found_ticket_comes_between(
    sim: TwilioSimulator, live: Service, acme: None
) -> None:
    runtime = live.runtime
    with transaction(runtime.sessions) as s:
        own = lifecycle.open_ticket(
            s, policy=runtime.policy, now=runtime.now(), priority="P2", source="phone", actor="c", caller_number=DANA
        ).number
    # A miss, the caller's own ticket, a wrong key at the menu, the status line again: two more misses end it.
    call = sim.call(DANA, CallPlan(keys=["3", "999999#", f"{own}#", "9", "3", "999998#", "999997#", "999996#"]))
    assert f"Ticket {' '.join(str(own))} is new" in call.heard
    assert call.heard.count("We could not find that ticket. Please enter") == 2
    assert call.heard.rstrip().endswith("Goodbye.")
    assert "caller presses: 999996#" not in call.lines
    with runtime.sessions() as s:
        lookups = s.scalars(
            select(CallEvent.detail).where(CallEvent.call_sid == call.call_sid, CallEvent.event == "status lookup")
        ).all()
    assert [d["found"] for d in lookups] == [False, True, False, False]


def test_a_bad_signature_is_refused_with_403_and_changes_nothing(live: Service, settings: Settings) -> None:
    params = {
        "CallSid": "CA" + "c" * 32,
        "From": DANA,
        "To": "+18055922500",
        "RecordingSid": "RE" + "d" * 32,
        "RecordingUrl": "https://api.twilio.com/x",
        "Digits": "2",
    }
    for path in [
        "/twilio/voice",
        "/twilio/voice/recorded",
        "/twilio/voice/menu",
        "/twilio/sms",
        "/twilio/voice/fallback",
    ]:
        bad = requests.post(
            live.url + path, data=params, headers={"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}, timeout=5
        )
        none = requests.post(live.url + path, data=params, timeout=5)
        assert (bad.status_code, none.status_code) == (403, 403)
    # Signed for the wrong URL (what a TLS-terminating proxy would make of it): refused too.
    from testing.twilio_server import sign

    wrong = requests.post(
        live.url + "/twilio/voice",
        data=params,
        headers={"X-Twilio-Signature": sign(live.url + "/twilio/voice", params, settings.twilio_auth_token)},
        timeout=5,
    )
    assert wrong.status_code == 403
    assert tickets(live) == []
    with live.runtime.sessions() as s:
        assert s.scalar(select(func.count(CallEvent.id))) == 0


def test_malformed_parameters_get_a_safe_answer_not_an_application_error(sim: TwilioSimulator, live: Service) -> None:
    body = sim.post("/twilio/voice/recorded", {"From": DANA, "RecordingUrl": "not a url"})
    assert "<Record" in body and "having trouble" in body
    body = sim.post("/twilio/voice", {"From": DANA})
    assert "<Record" in body
    assert tickets(live) == []


NINES = "9" * 30


def test_numbers_too_big_for_any_column_get_safe_twiml_not_an_error(sim: TwilioSimulator, live: Service) -> None:
    params = {
        "CallSid": "CA" + "8" * 32,
        "AccountSid": sim.account_sid,
        "From": DANA,
        "To": sim.to,
        "RecordingSid": "RE" + "8" * 32,
        "RecordingUrl": "https://api.twilio.com/2010-04-01/Recordings/RE" + "8" * 32,
        "RecordingStatus": "completed",
        "RecordingDuration": NINES,
        "Digits": "#",
    }
    body = sim.post("/twilio/voice/recorded", params)
    assert "your ticket number is" in body  # the message is kept; the nonsense duration is dropped
    (ticket,) = tickets(live)
    assert ticket.recording_duration is None
    sim.post("/twilio/voice/recording-status", params)
    for path in (f"/twilio/voice/menu?attempt={NINES}", f"/twilio/voice/ticket-status?attempt={NINES}"):
        assert "<Say" in sim.post(path, {**params, "Digits": NINES})
    # A page id of thirty nines in a page call's URL: TwiML with a <Say>, never a 500.
    for path in (f"/twilio/page/call?page={NINES}", f"/twilio/page/call?page={NINES}&repeat={NINES}"):
        answer = sim.post(path, {**params, "AnsweredBy": "human"})
        assert "<Say" in answer, answer


def test_the_fallback_url_apologises_and_takes_a_message(sim: TwilioSimulator, live: Service) -> None:
    body = sim.post(
        "/twilio/voice/fallback", {"CallSid": "CA" + "e" * 32, "From": DANA, "ErrorCode": "11200", "ErrorUrl": PUBLIC}
    )
    assert "having trouble" in body and "<Record" in body


def test_a_flood_of_calls_from_one_number_is_answered_politely_without_new_tickets(
    sim: TwilioSimulator, live: Service, clock: FixedClock
) -> None:
    live.runtime.settings = live.runtime.settings.with_overrides(caller_rate_limit=3)
    for _ in range(3):
        sim.call(DANA, CallPlan(keys=["1"], coordinator="busy", audio=None))
        clock.advance(seconds=30)
    flood = sim.call(DANA, CallPlan(keys=["1"], coordinator="busy", audio=None))
    assert "many calls from your number" in flood.heard
    assert len(tickets(live)) == 3
    clock.advance(minutes=11)
    assert "many calls" not in sim.call(DANA, CallPlan(keys=["1"], audio=None)).heard


def test_a_simultaneous_burst_from_one_number_is_held_to_the_rate_limit_exactly(
    sim: TwilioSimulator, live: Service
) -> None:
    live.runtime.settings = live.runtime.settings.with_overrides(caller_rate_limit=3)
    calls = 8
    barrier = threading.Barrier(calls)

    def call(i: int) -> str:
        params = {
            "CallSid": f"CA{i:032x}",
            "AccountSid": sim.account_sid,
            "From": DANA,
            "To": sim.to,
            "CallStatus": "ringing",
        }
        signature = sim.validator.compute_signature(PUBLIC + "/twilio/voice", params)
        barrier.wait()
        response = requests.post(
            live.url + "/twilio/voice", data=params, headers={"X-Twilio-Signature": signature}, timeout=30
        )
        assert response.status_code == 200
        return response.text

    with ThreadPoolExecutor(calls) as pool:
        answers = list(pool.map(call, range(calls)))
    assert sum("many calls from your number" in a for a in answers) == calls - 3
    assert sum("<Gather" in a for a in answers) == 3


WITHHELD_IDS = ["anonymous", "", "+266696687", "+7378742833", "Restricted", "not a number", "+1805"]


def test_withheld_and_invalid_caller_ids_share_one_rate_limit_bucket_and_every_call_still_leaves_a_ticket(
    sim: TwilioSimulator, live: Service, clock: FixedClock
) -> None:
    live.runtime.settings = live.runtime.settings.with_overrides(caller_rate_limit=3)
    heard = []
    for caller_id in WITHHELD_IDS:
        heard.append(sim.call(caller_id, CallPlan(keys=["1"], coordinator="busy", audio=None)).heard)
        clock.advance(seconds=20)
    limited = [h for h in heard if "many calls from withheld numbers" in h]
    assert len(limited) == len(WITHHELD_IDS) - 3
    for h in limited:
        assert "Thank you for calling" not in h and "Please leave a detailed message" in h
    # Nothing a withheld caller says is dropped: one ticket per call, the limited ones too.
    assert len(tickets(live)) == len(WITHHELD_IDS)
    # A caller with a real number is counted on its own.
    assert "many calls" not in sim.call(DANA, CallPlan(keys=["1"], coordinator="busy", audio=None)).heard
    clock.advance(minutes=11)
    assert "many calls" not in sim.call("anonymous", CallPlan(keys=["1"], audio=None)).heard


def test_a_simultaneous_burst_from_withheld_numbers_is_held_to_the_rate_limit_exactly(
    sim: TwilioSimulator, live: Service
) -> None:
    live.runtime.settings = live.runtime.settings.with_overrides(caller_rate_limit=3)
    calls = 8
    barrier = threading.Barrier(calls)

    def call(i: int) -> str:
        params = {
            "CallSid": f"CA{i + 100:032x}",
            "AccountSid": sim.account_sid,
            "From": WITHHELD_IDS[i % len(WITHHELD_IDS)],
            "To": sim.to,
            "CallStatus": "ringing",
        }
        signature = sim.validator.compute_signature(PUBLIC + "/twilio/voice", params)
        barrier.wait()
        response = requests.post(
            live.url + "/twilio/voice", data=params, headers={"X-Twilio-Signature": signature}, timeout=30
        )
        assert response.status_code == 200
        return response.text

    with ThreadPoolExecutor(calls) as pool:
        answers = list(pool.map(call, range(calls)))
    assert sum("many calls from withheld numbers" in a for a in answers) == calls - 3
    assert sum("Thank you for calling" in a for a in answers) == 3
    assert len(tickets(live)) == calls - 3  # the limited calls are at the voicemail prompt: their tickets exist


def test_the_web_process_hands_the_jobs_it_claimed_to_redis_right_after_answering(
    sim: TwilioSimulator, live: Service, voicemail_wav: bytes
) -> None:
    live.runtime.settings = live.runtime.settings.with_overrides(dispatch_after_response=True)
    result = sim.call(DANA, CallPlan(keys=["2"], audio=voicemail_wav))
    (ticket,) = tickets(live)
    expected = sorted([f"confirm-{ticket.number}", f"page-{ticket.number}", f"transcribe-{result.recording_sid}"])
    deadline = time.monotonic() + 5
    while queued(live) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert queued(live) == expected
    with live.runtime.sessions() as s:
        messages = s.scalars(select(OutboxMessage)).all()
    # claimed in the webhook's own transaction: one attempt each, nothing left for a claiming pass
    assert sorted(m.key for m in messages) == sorted(k.replace("-", ":", 1) for k in expected)
    assert all(m.dispatched_at is not None and m.attempts == 1 for m in messages)
    from workers.dispatch import dispatch_pending

    assert dispatch_pending(live.runtime) == 0
    assert queued(live) == expected


def test_a_webhook_that_fails_after_committing_still_hands_its_claimed_jobs_to_redis(
    sim: TwilioSimulator, live: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ivr import voicemail

    def broken_log(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("logging the call step failed")

    live.runtime.settings = live.runtime.settings.with_overrides(dispatch_after_response=True)
    monkeypatch.setattr(voicemail, "_log", broken_log)  # runs after the recording's transaction committed
    recording = "RE" + "c" * 32
    params = {
        "CallSid": "CA" + "c" * 32,
        "AccountSid": sim.account_sid,
        "From": DANA,
        "To": sim.to,
        "RecordingSid": recording,
        "RecordingUrl": "https://api.twilio.com/x/" + recording,
        "RecordingStatus": "completed",
        "RecordingDuration": "12",
    }
    assert sim.post("/twilio/voice/recording-status", params, callback=True) == ""  # a 500: Twilio retries it
    (ticket,) = tickets(live)
    expected = sorted([f"confirm-{ticket.number}", f"transcribe-{recording}"])
    deadline = time.monotonic() + 5
    while queued(live) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert queued(live) == expected


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server to stop and start one")
@pytest.mark.parametrize("handed_over_by", ["the sweeper", "the next webhook"])
def test_with_redis_down_the_caller_gets_the_full_flow_and_the_job_is_enqueued_once_redis_is_back(
    sim: TwilioSimulator, live: Service, voicemail_wav: bytes, handed_over_by: str
) -> None:
    port = free_port()
    live.runtime.settings = live.runtime.settings.with_overrides(
        redis_url=f"redis://127.0.0.1:{port}/0", dispatch_after_response=True
    )
    live.runtime._redis = None
    live.runtime.redis_timeout = 0.5
    result = sim.call(DANA, CallPlan(keys=["2"], audio=voicemail_wav))
    (ticket,) = tickets(live)
    assert result.ticket_number == ticket.number and ticket.priority == "P1"
    time.sleep(0.5)  # the after-response dispatch tried and failed
    with live.runtime.sessions() as s:
        assert s.scalar(select(func.count(OutboxMessage.id)).where(OutboxMessage.dispatched_at.is_(None))) == 3
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(50):
            try:
                live.runtime._redis = None
                live.runtime.redis.ping()
                break
            except Exception:  # noqa: BLE001
                time.sleep(0.1)
        from workers.sweeper import sweep_once

        expected = sorted([f"confirm-{ticket.number}", f"page-{ticket.number}", f"transcribe-{result.recording_sid}"])
        if handed_over_by == "the sweeper":
            assert sweep_once(live.runtime)["dispatched"] == 3
        else:  # any webhook of this process, here a new call coming in, takes the backlog Redis refused
            sim.post("/twilio/voice", {"CallSid": "CA" + "d" * 32, "AccountSid": sim.account_sid, "From": DANA,
                                       "To": sim.to, "CallStatus": "ringing"})  # fmt: skip
            deadline = time.monotonic() + 5
            while queued(live) != expected and time.monotonic() < deadline:
                time.sleep(0.05)
        assert queued(live) == expected
        assert sweep_once(live.runtime)["dispatched"] == 0
        assert len(queued(live)) == 3
    finally:
        live.runtime.close()
        server.terminate()
        server.wait(5)


def queued(live: Service) -> list[str]:
    """Job ids waiting in every queue (pages go on the paging queue, the rest on the main one)."""
    return sorted(j for q in live.runtime.queues() for j in q.get_job_ids())


def _audit(live: Service, ticket: Ticket) -> list:  # type: ignore[type-arg]
    with live.runtime.sessions() as s:
        return list(lifecycle.get_ticket(s, ticket.number).audit)  # type: ignore[arg-type]
