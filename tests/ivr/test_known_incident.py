"""A known incident on the phone: callers of the affected clients hear the message after the greeting, press 1
leaves a short message on a P3 joined to the parent ticket, other keys are the menu, press 2 still pages."""

from __future__ import annotations

import io
import wave
import xml.etree.ElementTree as ET

import pytest
from sqlalchemy import select

from ivr.simulate import CallPlan, CallResult, new_sid
from tests.conftest import FixedClock
from tests.ivr.conftest import DANA, PUBLIC, Desk
from ticketing import outages
from ticketing.models import AuditEntry, Client, Contact, IncidentCall, OutboxMessage, Ticket

AFTER_HOURS = "2026-11-18 20:00"
ERIN = "+18055550160"  # a contact of another client
STRANGER = "+18055550199"  # nobody the directory knows
AWARE = "We are aware that email is down for Acme since 7 pm."
PRESS_1 = "Press 1 if you are calling about this. For anything else, stay on the line."


def _silence() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 8000 * 2)
    return out.getvalue()


class Media:
    def add_recording(self, recording_sid: str, wav_bytes: bytes) -> None:
        pass

    def recording_url(self, recording_sid: str) -> str:
        return f"https://api.twilio.com/2010-04-01/Accounts/AC{'0' * 32}/Recordings/{recording_sid}"


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    from workers import paging as jobs

    monkeypatch.setattr(jobs, "RETRY_PAUSES", (0.0, 0.0, 0.0, 0.0))


def directory(desk: Desk) -> dict[str, int]:
    """Acme (Dana calls from it) and Globex (Erin)."""
    with desk.runtime.sessions.begin() as s:
        acme, globex = Client(name="Acme Dental"), Client(name="Globex")
        s.add_all([acme, globex])
        s.flush()
        s.add(Contact(client_id=acme.id, name="Dana", phone=DANA, email="dana@acme.example", active=True))
        s.add(Contact(client_id=globex.id, name="Erin", phone=ERIN, email="erin@globex.example", active=True))
        s.flush()
        return {"acme": acme.id, "globex": globex.id}


def declare(desk: Desk, clients: list[int], *, message_es: str | None = None) -> tuple[int, int]:
    """A known incident declared now: its id and its parent ticket's number."""
    with desk.runtime.sessions.begin() as s:
        incident = outages.declare_known_incident(
            s,
            message="email is down for Acme since 7 pm",
            message_es=message_es,
            actor="Cora Coordinator",
            now=desk.runtime.now(),
            policy=desk.runtime.policy,
            client_ids=clients,
        )
        return incident.id, int(incident.parent.number or 0)


def dial(desk: Desk, clock: FixedClock, caller: str, keys: list[str]) -> CallResult:
    clock.set(AFTER_HOURS)
    desk.sim.media = Media()
    return desk.sim.call(caller, CallPlan(keys=keys, audio=_silence()))


def ticket(desk: Desk, result: CallResult) -> Ticket:
    with desk.runtime.sessions() as s:
        t = s.scalars(select(Ticket).where(Ticket.call_sid == result.call_sid)).one()
        s.expunge(t)
    return t


def test_a_caller_of_an_affected_client_hears_it_and_press_1_joins_the_parent(desk: Desk, clock: FixedClock) -> None:
    clock.set(AFTER_HOURS)
    ids = directory(desk)
    incident, parent = declare(desk, [ids["acme"]])
    result = dial(desk, clock, DANA, ["1"])
    heard = result.heard
    assert heard.index("Calls are recorded") < heard.index(AWARE) < heard.index(PRESS_1)
    assert "leave a short message with your name and company" in heard
    assert "Your ticket number is" in heard
    child = ticket(desk, result)
    assert (child.priority, child.recording_sid is not None) == ("P3", True)
    with desk.runtime.sessions() as s:
        (link,) = s.scalars(select(IncidentCall)).all()
        assert (link.incident_id, link.ticket_id) == (incident, child.id)
        transcribe = s.scalars(select(OutboxMessage.kind).where(OutboxMessage.key.like("transcribe:%"))).all()
        assert transcribe == ["transcribe"]  # transcribed like any voicemail
    # A second caller: counted on the parent.
    dial(desk, clock, DANA, ["1"])
    with desk.runtime.sessions() as s:
        assert outages.callers(s, incident) == 2
        counts = s.scalars(
            select(AuditEntry.detail)
            .join(Ticket)
            .where(Ticket.number == parent, AuditEntry.action == "caller joined known incident")
            .order_by(AuditEntry.id)
        ).all()
    assert [c["callers"] for c in counts] == [1, 2]


def test_a_caller_of_another_client_or_nobody_known_does_not_hear_it(desk: Desk, clock: FixedClock) -> None:
    clock.set(AFTER_HOURS)
    ids = directory(desk)
    declare(desk, [ids["acme"]])
    for caller in (ERIN, STRANGER):
        result = desk.sim.call(caller, CallPlan(keys=[""], audio=None))
        assert "We are aware" not in result.heard
        assert "Our office is now closed." in result.heard


def test_with_no_client_named_every_caller_hears_it_even_a_withheld_one(desk: Desk, clock: FixedClock) -> None:
    clock.set(AFTER_HOURS)
    directory(desk)
    declare(desk, [])
    for caller in (ERIN, STRANGER, "anonymous"):
        result = desk.sim.call(caller, CallPlan(keys=[""], audio=None))
        assert AWARE in result.heard
        # Silence: the rest of the menu follows without the greeting again.
        rest = result.heard[result.heard.index(PRESS_1) :]
        assert "Here are your other options." in rest and "press 2" in rest
        assert rest.count("Thank you for calling") == 0


def test_press_2_at_the_incident_prompt_is_still_a_critical_page(desk: Desk, clock: FixedClock) -> None:
    clock.set(AFTER_HOURS)
    ids = directory(desk)
    declare(desk, [ids["acme"]])
    result = desk.sim.call(DANA, CallPlan(keys=["2"], audio=None))
    assert AWARE in result.heard and "P 1 critical ticket" in result.heard
    t = ticket(desk, result)
    assert t.priority == "P1"
    with desk.runtime.sessions() as s:
        assert s.scalars(select(IncidentCall)).all() == []
        assert s.scalar(select(OutboxMessage.kind).where(OutboxMessage.key == f"page:{t.number}")) == "page"


def test_press_3_at_the_incident_prompt_is_the_ticket_status_line(desk: Desk, clock: FixedClock) -> None:
    clock.set(AFTER_HOURS)
    declare(desk, [])
    result = desk.sim.call(DANA, CallPlan(keys=["3", ""], audio=None))
    assert "ticket number" in result.heard.split(PRESS_1, 1)[1]


@pytest.mark.parametrize(
    ("message_es", "said"),
    [
        (None, "Sabemos que email is down for Acme since 7 pm."),
        ("el correo de Acme no funciona desde las 7 pm", "Sabemos que el correo de Acme no funciona desde las 7 pm."),
    ],
)
def test_a_spanish_caller_hears_the_fixed_words_in_spanish(
    desk: Desk, clock: FixedClock, message_es: str | None, said: str
) -> None:
    clock.set(AFTER_HOURS)
    ids = directory(desk)
    declare(desk, [ids["acme"]], message_es=message_es)
    result = dial(desk, clock, DANA, ["9", "1"])
    spanish = [text for lang, text in result.said if lang == "es-US"]
    assert said in spanish
    assert "Oprima 1 si llama por esto. Para cualquier otra cosa, permanezca en la línea." in spanish
    child = ticket(desk, result)
    assert (child.language, child.priority) == ("es", "P3")
    with desk.runtime.sessions() as s:
        assert s.scalar(select(IncidentCall.ticket_id)) == child.id


def test_an_ended_incident_is_no_longer_heard(desk: Desk, clock: FixedClock) -> None:
    clock.set(AFTER_HOURS)
    incident, _parent = declare(desk, [])
    with desk.runtime.sessions.begin() as s:
        outages.end_known_incident(
            s, incident, actor="Cora", now=desk.runtime.now(), policy=desk.runtime.policy, notify=False
        )
    result = desk.sim.call(DANA, CallPlan(keys=[""], audio=None))
    assert "We are aware" not in result.heard


def test_a_forged_press_1_is_refused(desk: Desk) -> None:
    response = desk.sim.http.post(
        desk.sim.server + "/twilio/voice/known-incident?incident=1",
        data={"CallSid": "CA" + "0" * 32, "Digits": "1", "From": DANA},
        headers={"X-Twilio-Signature": "forged"},
        timeout=10,
    )
    assert response.status_code == 403
    assert PUBLIC.startswith("https://")


@pytest.mark.parametrize("which", ["ended", "unknown"])
def test_press_1_for_an_incident_ended_meanwhile_or_unknown_plays_the_menu_and_opens_nothing(
    desk: Desk, clock: FixedClock, which: str
) -> None:
    clock.set(AFTER_HOURS)
    incident, _parent = declare(desk, [])
    if which == "ended":
        with desk.runtime.sessions.begin() as s:
            outages.end_known_incident(s, incident, actor="Cora", now=desk.runtime.now(), policy=desk.runtime.policy)
    target = incident if which == "ended" else incident + 1000
    sid = new_sid("CA")
    params = {"CallSid": sid, "AccountSid": desk.twilio.account_sid, "From": DANA, "To": "+18055922500"}
    doc = desk.sim.post(f"/twilio/voice/known-incident?incident={target}", {**params, "Digits": "1"})
    (redirect,) = ET.fromstring(doc).iter("Redirect")
    assert (redirect.text or "").startswith(f"{PUBLIC}/twilio/voice?") and "past=1" in (redirect.text or "")
    with desk.runtime.sessions() as s:
        assert s.scalars(select(Ticket).where(Ticket.call_sid == sid)).all() == []
