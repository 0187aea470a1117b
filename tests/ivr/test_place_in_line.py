"""A place in line: callers no coordinator took press 1 to be called back, first come, first served; the
console's Call back now rings the coordinator, then the caller (real webhooks signed as Twilio signs them,
the REST calls checked against Twilio's OpenAPI contract, both databases)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from sqlalchemy import select

from ivr.simulate import CallPlan, CallResult, new_sid
from tests.conftest import FixedClock, pacific
from tests.ivr.conftest import DANA, Desk
from tests.web.conftest import PASSWORD, Console
from ticketing import accounts
from ticketing.db import transaction
from ticketing.models import AuditEntry, CallbackRequest, Ticket, User

COORDINATOR = "+18055550999"
ERIN, FINN = "+18055550161", "+18055550162"
OFFER = (
    "To keep your place in line and have the next coordinator call you back, press 1. "
    "For a critical issue, press 2. Or leave a message after the tone."
)


@pytest.fixture(autouse=True)
def coordinator_phone(desk: Desk) -> None:
    """One coordinator phone, rung by the menu's key 1 and by Call back now."""
    desk.runtime.settings = desk.runtime.settings.with_overrides(coordinator_numbers=(COORDINATOR,))


def busy_call(desk: Desk, keys: list[str], caller: str = DANA) -> CallResult:
    """A caller presses 1 for the coordinator, who is busy, then ``keys``; hangs up at the beep."""
    return desk.sim.call(caller, CallPlan(keys=["1", *keys], coordinator="busy", audio=None))


def ticket(desk: Desk, result: CallResult) -> Ticket:
    with desk.runtime.sessions() as s:
        t = s.scalars(select(Ticket).where(Ticket.call_sid == result.call_sid)).one()
        t.milestones  # noqa: B018 - loaded before the session ends
        s.expunge_all()
    return t


def request_of(desk: Desk, number: int) -> CallbackRequest:
    with desk.runtime.sessions() as s:
        found = s.scalar(select(CallbackRequest).join(Ticket).where(Ticket.number == number))
        assert found is not None
        s.expunge(found)
    return found


def audit_of(desk: Desk, number: int, action: str) -> list[AuditEntry]:
    with desk.runtime.sessions() as s:
        rows = list(
            s.scalars(
                select(AuditEntry)
                .join(Ticket)
                .where(Ticket.number == number, AuditEntry.action == action)
                .order_by(AuditEntry.id)
            )
        )
        s.expunge_all()
    return rows


def coordinator_console(desk: Desk) -> Console:
    with transaction(desk.runtime.sessions) as s:
        s.add(User(username="kim", display_name="Kim Lee", role=accounts.COORDINATOR, active=True, failed_logins=0,
                   password_hash=accounts.hash_password(PASSWORD), created_at=desk.runtime.now()))  # fmt: skip
    console = Console(desk.app.test_client())
    assert console.login("kim").status_code == 303
    return console


def twilio_params(desk: Desk, call_sid: str, **extra: str) -> dict[str, str]:
    return {"CallSid": call_sid, "AccountSid": desk.twilio.account_sid, "From": "+18055922500",
            "To": COORDINATOR, "Direction": "outbound-api", "CallStatus": "in-progress", **extra}  # fmt: skip


def call_back_now(desk: Desk, console: Console, number: int) -> str:
    """Click Call back now; returns the coordinator call's SID that Twilio gave."""
    response = console.post(f"/tickets/{number}/call-back")
    assert response.status_code == 303
    sid = request_of(desk, number).call_sid
    assert sid is not None
    return sid


def coordinator_answers(desk: Desk, sid: str, *, caller: str, answered_by: str = "human", status: str) -> list[str]:
    """The coordinator answers the call back and presses 1; the caller's leg ends with ``status``."""
    placed = desk.twilio.calls(to=COORDINATOR)[-1]
    params = twilio_params(desk, sid)
    gather = ET.fromstring(desk.sim.post(placed.param("Url") or "", params)).find("Gather")
    assert gather is not None
    heard = [say.text or "" for say in gather.iter("Say")]
    dial = ET.fromstring(desk.sim.post(gather.get("action", ""), {**params, "Digits": "1"})).find("Dial")
    assert dial is not None
    number = dial.find("Number")
    assert number is not None and number.text == caller and dial.get("callerId") == "+18055922500"
    leg = {**params, "CallSid": new_sid("CA"), "ParentCallSid": sid, "To": caller, "AnsweredBy": answered_by}
    if status in ("completed",):
        desk.sim.post(number.get("url", ""), leg)
    done = desk.sim.post(dial.get("action", ""), {**params, "DialCallStatus": status, "DialCallDuration": "30"})
    heard.extend(say.text or "" for say in ET.fromstring(done).iter("Say"))
    return heard


def test_callers_nobody_took_keep_their_place_first_come_first_served(desk: Desk, clock: FixedClock) -> None:
    first = busy_call(desk, ["1"], caller=ERIN)
    assert OFFER in first.heard and "You are number 1 in line." in first.heard
    clock.advance(minutes=2)
    second = busy_call(desk, ["1"], caller=DANA)
    assert "You are number 2 in line. The next coordinator will call you back." in second.heard
    assert "After the tone, you may leave a short message, or simply hang up." in second.heard
    t = ticket(desk, second)
    # A voicemail ticket's status and clocks: the line changes neither.
    assert (t.status, t.priority, t.source) == ("new", "P3", "voicemail")
    assert t.milestone("first_response").due_at == clock() + timedelta(minutes=12)
    assert request_of(desk, t.number or 0).state == "waiting"
    desk.work()
    (sms,) = desk.twilio.messages(to=DANA)
    body = sms.param("Body") or ""
    assert f"Ticket #{t.number}" in body and body.endswith("You are number 2 in line for a call back.")


def test_the_short_message_is_capped_at_a_minute_and_pound_ends_it(desk: Desk) -> None:
    result = busy_call(desk, [])
    params = {"CallSid": result.call_sid, "AccountSid": desk.twilio.account_sid, "From": DANA, "Digits": "1"}
    record = ET.fromstring(desk.sim.post("/twilio/voice/place-in-line", params)).find("Record")
    assert record is not None and record.get("maxLength") == "60" and record.get("finishOnKey") == "#"
    # Delivered twice (Twilio retries): still one request, the same place.
    again = desk.sim.post("/twilio/voice/place-in-line", params)
    assert "You are number 1 in line." in again
    assert len(audit_of(desk, ticket(desk, result).number or 0, "callback requested")) == 1


def test_without_a_key_the_caller_leaves_an_ordinary_message_and_2_is_critical(desk: Desk) -> None:
    plain = busy_call(desk, [""])
    assert request_of_or_none(desk, plain) is None and ticket(desk, plain).priority == "P3"
    critical = busy_call(desk, ["2"], caller=ERIN)
    assert ticket(desk, critical).priority == "P1" and request_of_or_none(desk, critical) is None


def request_of_or_none(desk: Desk, result: CallResult) -> CallbackRequest | None:
    with desk.runtime.sessions() as s:
        return s.scalar(select(CallbackRequest).join(Ticket).where(Ticket.call_sid == result.call_sid))


def test_after_hours_the_place_in_line_is_not_offered(desk: Desk, clock: FixedClock) -> None:
    clock.set("2026-11-18 17:00")
    sid = new_sid("CA")
    params = {"CallSid": sid, "AccountSid": desk.twilio.account_sid, "From": DANA, "DialCallStatus": "no-answer"}
    answer = desk.sim.post("/twilio/voice/dial-status", params)
    assert "place in line" not in answer and "Please leave a detailed message" in answer
    pressed = desk.sim.post("/twilio/voice/place-in-line", {**params, "Digits": "1"})
    assert "in line" not in pressed and request_of_or_none(desk, CallResult(call_sid=sid)) is None


def test_a_callback_left_at_16_59_is_due_at_the_next_opening(desk: Desk, clock: FixedClock) -> None:
    clock.set("2026-11-18 16:59")
    t = ticket(desk, busy_call(desk, ["1"]))
    # P3's first response is 12 business minutes: one today, eleven after Thursday's 08:00 opening.
    assert t.milestone("first_response").due_at == pacific("2026-11-19 08:11")


def test_a_spanish_caller_hears_the_offer_and_the_place_in_spanish(desk: Desk) -> None:
    result = desk.sim.call(DANA, CallPlan(keys=["9", "1", "1"], coordinator="busy", audio=None))
    said = [text for lang, text in result.said if lang == "es-US" or lang.startswith("es")]
    assert any("Para mantener su lugar en la fila" in text for text in said), result.said
    assert any(text.startswith("Usted es el número 1 en la fila.") for text in said), result.said
    assert ticket(desk, result).language == "es"


def test_call_back_now_rings_the_coordinator_then_the_caller_and_meets_the_first_response(desk: Desk) -> None:
    number = ticket(desk, busy_call(desk, ["1"])).number or 0
    console = coordinator_console(desk)
    page = console.get("/queue").get_data(as_text=True)
    assert "Callbacks" in page and f'action="/tickets/{number}/call-back"' in page
    # The queue's live refresh (the fragment it fetches every 10 s) brings the line with it.
    rows = console.get("/queue/rows").get_data(as_text=True)
    assert "Callbacks" in rows and f'action="/tickets/{number}/call-back"' in rows
    sid = call_back_now(desk, console, number)
    # A double click (or a replayed form) starts no second call.
    assert console.post(f"/tickets/{number}/call-back").status_code == 303
    assert len(desk.twilio.calls(to=COORDINATOR)) == 1
    placed = desk.twilio.calls(to=COORDINATOR)[0]
    assert placed.param("From") == "+18055922500" and "/twilio/voice/call-back/status" in (
        placed.param("StatusCallback") or ""
    )
    heard = coordinator_answers(desk, sid, caller=DANA, status="completed")
    assert heard[0].startswith(f"Call back for ticket {' '.join(str(number))}, caller 8 0 5, 5 5 5, 0 1 4 2.")
    with desk.runtime.sessions() as s:
        t = s.scalars(select(Ticket).where(Ticket.number == number)).one()
        assert t.milestone("first_response").met_at is not None and t.status == "acknowledged"
    (met,) = audit_of(desk, number, "first response met")
    assert (met.actor, met.detail.get("via")) == ("Kim Lee", "call back")
    (ended,) = audit_of(desk, number, "call back ended")
    assert ended.detail["outcome"] == "connected"
    assert request_of(desk, number).state == "connected"
    # Twilio's status callback after the call, and a replayed dial action: nothing more happens.
    desk.sim.post(placed.param("StatusCallback") or "", twilio_params(desk, sid, CallStatus="completed"))
    desk.sim.post(
        "/twilio/voice/call-back/dialed?callback=" + str(request_of(desk, number).id),
        twilio_params(desk, sid, DialCallStatus="completed"),
    )
    assert len(audit_of(desk, number, "call back ended")) == 1
    assert "Callbacks" not in console.get("/queue").get_data(as_text=True)


def test_two_call_backs_that_miss_the_caller_make_it_an_ordinary_voicemail_ticket(desk: Desk) -> None:
    number = ticket(desk, busy_call(desk, ["1"])).number or 0
    console = coordinator_console(desk)
    heard = coordinator_answers(desk, call_back_now(desk, console, number), caller=DANA, status="no-answer")
    assert "The caller did not answer. Goodbye." in heard
    kept = request_of(desk, number)
    assert (kept.state, kept.attempts) == ("waiting", 1)
    coordinator_answers(desk, call_back_now(desk, console, number), caller=DANA, answered_by="machine_start",
                        status="completed")  # fmt: skip
    given_up = request_of(desk, number)
    assert (given_up.state, given_up.attempts) == ("voicemail", 2)
    outcomes = [a.detail["outcome"] for a in audit_of(desk, number, "call back ended")]
    assert outcomes == ["no answer", "voicemail"]
    (note,) = audit_of(desk, number, "note")
    assert note.detail["text"].startswith("Call back tried 2 times without reaching the caller")
    with desk.runtime.sessions() as s:
        t = s.scalars(select(Ticket).where(Ticket.number == number)).one()
        assert t.status == "new" and t.milestone("first_response").met_at is None
    assert console.post(f"/tickets/{number}/call-back").status_code == 303
    assert len(desk.twilio.calls(to=COORDINATOR)) == 2  # out of the line: no third call


def test_a_coordinator_who_does_not_answer_leaves_the_caller_their_place(desk: Desk) -> None:
    number = ticket(desk, busy_call(desk, ["1"])).number or 0
    console = coordinator_console(desk)
    sid = call_back_now(desk, console, number)
    placed = desk.twilio.calls(to=COORDINATOR)[-1]
    assert desk.status_callback(placed, "no-answer", CallSid=sid) == 204
    kept = request_of(desk, number)
    assert (kept.state, kept.attempts, kept.call_sid) == ("waiting", 0, None)
    assert audit_of(desk, number, "call back ended")[0].detail["outcome"] == "coordinator did not answer"


def test_twilio_refusing_the_call_keeps_the_place_and_says_so(desk: Desk) -> None:
    number = ticket(desk, busy_call(desk, ["1"])).number or 0
    console = coordinator_console(desk)
    desk.twilio.fail_next("/Calls.json", status=400, code=21211)
    response = console.post(f"/tickets/{number}/call-back", follow_redirects=True)
    assert "could not be placed" in response.get_data(as_text=True)
    kept = request_of(desk, number)
    assert (kept.state, kept.attempts, kept.call_sid) == ("waiting", 0, None)


def test_strangers_and_unsigned_requests_change_nothing(desk: Desk) -> None:
    number = ticket(desk, busy_call(desk, ["1"])).number or 0
    console = coordinator_console(desk)
    sid = call_back_now(desk, console, number)
    request_id = request_of(desk, number).id
    # Unsigned: 403 and nothing recorded.
    url = f"/twilio/voice/call-back/dialed?callback={request_id}"
    forged = desk.sim.http.post(desk.sim.server + url, data=twilio_params(desk, sid, DialCallStatus="completed"))
    assert forged.status_code == 403
    # Signed, but another call's SID: the call back is not theirs.
    stranger = new_sid("CA")
    answer = desk.sim.post(f"/twilio/voice/call-back/answer?callback={request_id}", twilio_params(desk, stranger))
    assert "no longer waiting" in answer
    desk.sim.post(url, twilio_params(desk, stranger, DialCallStatus="completed"))
    # A malformed request id (CR/LF, empty, letters) is a bad request.
    for bad in ("", "1%0D%0A2", "abc"):
        with pytest.raises(RuntimeError, match="answered 400"):
            desk.sim.post(f"/twilio/voice/call-back/status?callback={bad}", twilio_params(desk, sid))
    assert request_of(desk, number).state == "calling" and audit_of(desk, number, "call back ended") == []
    # The role that cannot triage, and an unknown ticket.
    assert console.post("/tickets/999999/call-back", follow_redirects=True).status_code == 200
