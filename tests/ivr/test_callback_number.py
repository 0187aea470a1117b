"""The number to call back: confirmed by hanging up or keyed after the message (before it for a withheld caller
ID), checked with phonenumbers, read back once; what the page, the API and the console dial first."""

from __future__ import annotations

import io
import wave

import pytest
from sqlalchemy import func, select

from ivr.simulate import CallPlan, CallResult, new_sid
from tests.conftest import FixedClock
from tests.ivr.conftest import CAT, DANA, PUBLIC, Desk
from ticketing.models import AuditEntry, CallEvent, OutboxMessage, Ticket

AFTER_HOURS = "2026-11-18 20:00"  # Wednesday 8 pm: the after-hours rotation (cat this week)
CONFIRM = (
    "We will call you back at 8 0 5, 5 5 5, 0 1 4 2. To give a different number, enter it now followed by pound, "
    "or hang up."
)
WITHHELD = (
    "We cannot see the number you are calling from. To be called back, enter your phone number now, with its "
    "area code, followed by pound."
)
NOT_A_NUMBER = "Sorry, that is not a phone number we can call."


def _silence() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 8000 * 3)
    return out.getvalue()


class Media:
    """Recordings the worker never fetches here: only their URLs reach the webhooks."""

    def add_recording(self, recording_sid: str, wav_bytes: bytes) -> None:
        pass

    def recording_url(self, recording_sid: str) -> str:
        return f"https://api.twilio.com/2010-04-01/Accounts/AC{'0' * 32}/Recordings/{recording_sid}"


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    from workers import paging as jobs

    monkeypatch.setattr(jobs, "RETRY_PAUSES", (0.0, 0.0, 0.0, 0.0))


def call(desk: Desk, clock: FixedClock, keys: list[str], caller: str = DANA, when: str = AFTER_HOURS) -> CallResult:
    """A call that leaves a message, pressing ``keys`` at each prompt in turn."""
    clock.set(when)
    desk.sim.media = Media()
    return desk.sim.call(caller, CallPlan(keys=keys, audio=_silence()))


def ticket(desk: Desk, result: CallResult) -> Ticket:
    with desk.runtime.sessions() as s:
        t = s.scalars(select(Ticket).where(Ticket.call_sid == result.call_sid)).one()
        s.expunge(t)
    return t


def audit_actions(desk: Desk, t: Ticket) -> list[str]:
    with desk.runtime.sessions() as s:
        return list(s.scalars(select(AuditEntry.action).where(AuditEntry.ticket_id == t.id).order_by(AuditEntry.id)))


def api_json(desk: Desk, number: int) -> dict:
    from web.api import ticket_json
    from web.console import present

    with desk.runtime.sessions() as s:
        t = s.scalars(select(Ticket).where(Ticket.number == number)).one()
        (view,) = present.ticket_views(s, [t], desk.runtime.policy, desk.runtime.now())
        return ticket_json(view)


def test_a_p1_caller_keys_another_number_after_the_message_and_hears_it_read_back_once(
    desk: Desk, clock: FixedClock
) -> None:
    result = call(desk, clock, ["2", "8055550188#"])
    heard = result.heard
    # The ticket number first, then the number to call back: the caller keys another.
    assert heard.index("Your ticket number is") < heard.index(CONFIRM)
    assert "Thank you. We will call you back at 8 0 5, 5 5 5, 0 1 8 8. Goodbye." in heard
    assert heard.count("0 1 8 8") == 1  # read back once
    t = ticket(desk, result)
    assert (t.priority, t.caller_number, t.callback_number, t.callback_origin) == ("P1", DANA, "+18055550188", "keyed")
    actions = audit_actions(desk, t)
    # Paging was requested at press 2, before the prompt: nothing waited for the number.
    assert actions.index("paging requested") < actions.index("callback number")

    desk.work()
    (page,) = desk.twilio.messages(to=CAT)
    assert "caller +18055550188 (keyed by the caller). Reply 1 to acknowledge." in (page.param("Body") or "")
    spoken = " ".join(desk.answer(desk.call_to(CAT), ["1"]))
    assert "Caller: 8 0 5, 5 5 5, 0 1 8 8, keyed by the caller." in spoken
    body = api_json(desk, t.number or 0)
    assert (body["callback_number"], body["callback_origin"], body["caller_number"]) == ("+18055550188", "keyed", DANA)


def test_hanging_up_at_the_prompt_keeps_the_caller_id(desk: Desk, clock: FixedClock) -> None:
    result = call(desk, clock, ["2"])
    assert CONFIRM in result.heard and result.heard.endswith("Goodbye.")
    t = ticket(desk, result)
    assert (t.callback_number, t.callback_origin) == (None, None)
    assert "callback number" not in audit_actions(desk, t)
    body = api_json(desk, t.number or 0)
    assert (body["callback_number"], body["callback_origin"]) == (DANA, "caller_id")
    desk.work()
    (page,) = desk.twilio.messages(to=CAT)
    assert f"caller {DANA}. Reply 1 to acknowledge." in (page.param("Body") or "")


def test_keying_the_caller_id_confirms_it_and_an_extension_follows_a_star(desk: Desk, clock: FixedClock) -> None:
    confirmed = ticket(desk, call(desk, clock, ["", "", "18055550142#"]))
    assert (confirmed.callback_number, confirmed.callback_origin) == (DANA, "confirmed")

    result = call(desk, clock, ["", "", "8055550188*12#"])
    assert "Thank you. We will call you back at 8 0 5, 5 5 5, 0 1 8 8, extension 1 2." in result.heard
    extension = ticket(desk, result)
    assert (extension.callback_number, extension.callback_origin) == ("+18055550188;ext=12", "keyed")


@pytest.mark.parametrize("second", ["999#", ""])
def test_digits_that_are_no_phone_number_are_refused_once_asked_again_once_then_the_caller_id_stays(
    desk: Desk, clock: FixedClock, second: str
) -> None:
    result = call(desk, clock, ["2", "12345#", second])
    heard = result.heard
    asked_again = heard.index("Please enter the number again, with its area code, followed by pound.")
    assert heard.index(NOT_A_NUMBER) < asked_again
    if second:
        assert heard[asked_again:].endswith(f"{NOT_A_NUMBER} We will call you back at 8 0 5, 5 5 5, 0 1 4 2. Goodbye.")
    else:
        assert heard.endswith("Goodbye.") and heard.count(NOT_A_NUMBER) == 1
    t = ticket(desk, result)
    assert (t.callback_number, t.callback_origin) == (None, None)
    with desk.runtime.sessions() as s:
        keyed = s.scalars(
            select(CallEvent).where(CallEvent.call_sid == result.call_sid, CallEvent.event == "callback number")
        ).all()
        assert [(e.detail["valid"], e.detail["attempt"]) for e in keyed] == [(False, 1), (False, 2)][: 1 + bool(second)]
        assert all("12345" not in str(e.detail) for e in keyed)  # the digits are masked in the call log


@pytest.mark.parametrize("caller", ["anonymous", "+266696687", ""])
def test_a_withheld_caller_is_asked_before_the_message_and_not_again_after_it(
    desk: Desk, clock: FixedClock, caller: str
) -> None:
    result = call(desk, clock, ["", "8055550188#", ""], caller=caller)
    heard = result.heard
    assert heard.index(WITHHELD) < heard.index("Thank you. We will call you back at 8 0 5, 5 5 5, 0 1 8 8.")
    assert heard.index("0 1 8 8") < heard.index("Please leave a detailed message")
    assert heard.count("0 1 8 8") == 1 and "To give a different number" not in heard
    assert result.ticket_number is not None
    t = ticket(desk, result)
    assert (t.caller_number, t.callback_number, t.callback_origin) == (None, "+18055550188", "keyed")


def test_a_withheld_p1_is_paged_before_the_number_is_asked(desk: Desk, clock: FixedClock) -> None:
    clock.set(AFTER_HOURS)
    desk.sim.media = Media()
    result = desk.sim.call("anonymous", CallPlan(keys=["2"], audio=None))  # hangs up while asked for the number
    assert WITHHELD in result.heard
    t = ticket(desk, result)
    assert t.priority == "P1" and "paging requested" in audit_actions(desk, t)
    with desk.runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.key == f"page:{t.number}"))


def test_a_withheld_caller_pressing_2_when_asked_for_a_number_gets_the_p1(desk: Desk, clock: FixedClock) -> None:
    result = call(desk, clock, ["", "2#"], caller="anonymous")
    t = ticket(desk, result)
    assert t.priority == "P1" and t.callback_number is None
    assert "Your message will be submitted as a P 1 critical ticket" in result.heard


def test_a_spanish_caller_hears_the_prompt_and_the_digits_in_spanish(desk: Desk, clock: FixedClock) -> None:
    result = call(desk, clock, ["9", "2", "8055550188#"])
    said = dict((text, lang) for lang, text in result.said)
    confirm = (
        "Le devolveremos la llamada al 8 0 5, 5 5 5, 0 1 4 2. Para darnos otro número, márquelo ahora seguido de "
        "la tecla de numeral, o cuelgue."
    )
    assert said[confirm] == "es-US"
    assert said["Gracias. Le devolveremos la llamada al 8 0 5, 5 5 5, 0 1 8 8. Adiós."] == "es-US"
    assert ticket(desk, result).callback_number == "+18055550188"


def test_a_callback_for_a_call_with_no_ticket_changes_nothing(desk: Desk) -> None:
    sid = new_sid("CA")
    params = {"CallSid": sid, "AccountSid": desk.sim.account_sid, "From": DANA, "Digits": "8055550188"}
    answer = desk.sim.post("/twilio/voice/callback-number", params)
    assert "<Hangup" in answer and "call you back" not in answer
    with desk.runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Ticket)) == 0
        assert s.scalar(select(func.count()).select_from(CallEvent)) == 0


@pytest.mark.parametrize("signature", ["", "forged", "replayed"])
def test_unsigned_forged_or_replayed_callbacks_are_refused(desk: Desk, clock: FixedClock, signature: str) -> None:
    result = call(desk, clock, ["2"])
    url = f"{PUBLIC}/twilio/voice/callback-number"
    params = {"CallSid": result.call_sid, "AccountSid": desk.sim.account_sid, "From": DANA, "Digits": "8055550188"}
    headers = {"X-Twilio-Signature": signature}
    if signature == "replayed":  # a real signature, of other digits
        headers["X-Twilio-Signature"] = desk.sim.validator.compute_signature(url, {**params, "Digits": "8055550199"})
    response = desk.sim.http.post(desk.sim.server + "/twilio/voice/callback-number", data=params, headers=headers)
    assert response.status_code == 403
    t = ticket(desk, result)
    assert t.callback_number is None


@pytest.mark.parametrize("digits", ["8055550188\r\n", "805-555-0188", "+18055550188", "8" * 40, "**", "*12"])
def test_digits_twilio_never_sends_are_no_number(desk: Desk, clock: FixedClock, digits: str) -> None:
    result = call(desk, clock, ["2"])
    params = {"CallSid": result.call_sid, "AccountSid": desk.sim.account_sid, "From": DANA, "Digits": digits}
    answer = desk.sim.post("/twilio/voice/callback-number", params)
    assert NOT_A_NUMBER in answer
    assert ticket(desk, result).callback_number is None


def test_the_console_calls_back_the_keyed_number_and_names_a_different_one_heard_in_the_message(
    desk: Desk, clock: FixedClock
) -> None:
    from tests.web.conftest import PASSWORD, Console
    from ticketing import accounts
    from ticketing.db import transaction
    from ticketing.models import User

    result = call(desk, clock, ["", "", "8055550188*12#"])
    t = ticket(desk, result)
    heard = "It's Dana, please call me on my cell at 805 555 0199."
    with transaction(desk.runtime.sessions) as s:
        s.add(User(username="kim", display_name="Kim", role=accounts.COORDINATOR, active=True, failed_logins=0,
                   password_hash=accounts.hash_password(PASSWORD), created_at=desk.runtime.now()))  # fmt: skip
        row = s.get(Ticket, t.id)
        assert row is not None
        row.transcript, row.transcript_pass, row.transcription_state = heard, "first", "done"
        row.transcript_passes = [{"pass": "first", "text": heard}]
        row.hints = {"callback_number": "+18055550199"}
    console = Console(desk.app.test_client())
    assert console.login("kim").status_code == 303
    page = console.get(f"/tickets/{t.number}").get_data(as_text=True)
    assert 'href="tel:+18055550188;ext=12" id="call-back"' in page
    assert "check 805 555 0199 (not the callback number 805 555 0188) against the recording" in page
    body = api_json(desk, t.number or 0)
    assert body["callback_number"] == "+18055550188;ext=12"
    assert body["transcript"]["numbers_to_check"]["unsure"] == [
        {"number": "805 555 0199", "why": "not the callback number 805 555 0188", "said_at": None}
    ]
    assert body["transcript"]["numbers_to_check"]["callback_number_unsure"] is True  # the hint is the one in doubt


@pytest.mark.parametrize(
    ("digits", "number"),
    [
        ("8055550188", "+18055550188"),
        ("18055550188", "+18055550188"),
        ("8055550188*12", "+18055550188;ext=12"),
        ("011442079460000", "+442079460000"),
        ("805555018", None),  # nine digits
        ("0000000000", None),  # possible, not valid
        ("", None),
        ("8055550188*", None),
        ("8055550188\n", None),
        ("8055550188 ", None),
    ],
)
def test_keyed_digits_are_a_number_only_where_phonenumbers_says_so(digits: str, number: str | None) -> None:
    from ticketing.phone import keyed_number

    assert keyed_number(digits) == number


@pytest.mark.parametrize("then", ["message", ""])
def test_pound_alone_confirms_the_caller_id_and_from_a_withheld_caller_changes_nothing(
    desk: Desk, clock: FixedClock, then: str
) -> None:
    known = call(desk, clock, ["2"])
    url = "/twilio/voice/callback-number" + (f"?then={then}" if then else "")
    params = {"CallSid": known.call_sid, "AccountSid": desk.sim.account_sid, "From": DANA, "Digits": ""}
    assert "We will call you back at 8 0 5, 5 5 5, 0 1 4 2." in desk.sim.post(url, params)
    t = ticket(desk, known)
    assert (t.callback_number, t.callback_origin) == (DANA, "confirmed")

    withheld = call(desk, clock, ["2"], caller="anonymous")
    answer = desk.sim.post(url, {**params, "CallSid": withheld.call_sid, "From": "anonymous"})
    assert NOT_A_NUMBER not in answer and "call you back" not in answer
    assert ("<Record" in answer) == (then == "message")
    assert ticket(desk, withheld).callback_number is None
