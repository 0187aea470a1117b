"""A Spanish-speaking caller: key 9 switches the call to Spanish; the P1, the page and the text still happen."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from ivr.simulate import CallPlan
from tests.conftest import FixedClock
from tests.ivr.conftest import CAT, DANA, Desk
from ticketing.models import CallEvent, Ticket

AFTER_HOURS = "2026-11-18 20:00"  # Wednesday 8 pm: the after-hours rotation (cat this week)
OFFER = "Para español, oprima 9."


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    from workers import paging as jobs

    monkeypatch.setattr(jobs, "RETRY_PAUSES", (0.0, 0.0, 0.0, 0.0))


def ticket_of(desk: Desk, call_sid: str) -> Ticket:
    with desk.runtime.sessions() as s:
        ticket = s.scalars(select(Ticket).where(Ticket.call_sid == call_sid)).one()
        s.expunge(ticket)
    return ticket


@pytest.mark.parametrize("when", ["2026-11-18 10:00", AFTER_HOURS])
def test_the_greeting_offers_spanish_in_spanish_right_after_the_recording_notice(
    desk: Desk, clock: FixedClock, when: str
) -> None:
    clock.set(when)
    result = desk.sim.call(DANA, CallPlan(keys=[""], audio=None))
    texts = [text for _language, text in result.said]
    notice = next(i for i, text in enumerate(texts) if "Calls are recorded" in text)
    assert result.said[notice + 1] == ("es-US", OFFER)
    assert result.said[notice][0] == "en-US"


def test_press_9_then_2_after_hours_is_a_spanish_call_a_p1_and_a_page(desk: Desk, clock: FixedClock) -> None:
    clock.set(AFTER_HOURS)
    result = desk.sim.call(DANA, CallPlan(keys=["9", "2"], audio=None))
    switched = next(i for i, (_lang, text) in enumerate(result.said) if text.startswith("Gracias por llamar"))
    after = result.said[switched:]
    # Everything after the switch is said in Spanish with the Spanish voice, but the way back to English.
    assert [text for lang, text in after if lang != "es-US"] == ["For English, press 9."]
    heard = " ".join(text for _lang, text in after)
    assert "Nuestra oficina está cerrada en este momento." in heard
    assert "ticket crítico P 1" in heard and "equipo de soporte fuera de horario" in heard
    ticket = ticket_of(desk, result.call_sid)
    assert (ticket.priority, ticket.language) == ("P1", "es")
    with desk.runtime.sessions() as s:
        events = s.scalars(select(CallEvent.event).where(CallEvent.call_sid == result.call_sid)).all()
    assert events.count("incoming") == 1  # switching language is not a second call (rate limit)
    assert "language" in events

    desk.work()
    assert ("cat", "sms") in desk.sent() and ("cat", "call") in desk.sent()
    (page,) = desk.twilio.messages(to=CAT)
    assert f"#{ticket.number}" in (page.param("Body") or "")
    assert f"caller {DANA} (Spanish-speaking). Reply 1 to acknowledge." in (page.param("Body") or "")
    heard = " ".join(desk.answer(desk.call_to(CAT), ["1"]))
    assert "The caller speaks Spanish." in heard


def test_the_coordinator_hears_spanish_speaking_caller_first_in_english(desk: Desk, clock: FixedClock) -> None:
    clock.set("2026-11-18 10:00")
    desk.runtime.settings = desk.runtime.settings.with_overrides(coordinator_numbers=("+18055550999",))
    result = desk.sim.call(DANA, CallPlan(keys=["9", "1"], coordinator="accept"))
    assert any(text == "Por favor, espere mientras lo comunicamos con un coordinador de servicio."
               for _lang, text in result.said)  # fmt: skip
    coordinator = [
        line.removeprefix("coordinator hears: ") for line in result.lines if line.startswith("coordinator hears")
    ]
    assert coordinator[0] == "Spanish-speaking caller."
    assert coordinator[1].startswith("Support call from 8 0 5, 5 5 5, 0 1 4 2. Press 1 to accept.")


def test_a_spanish_caller_who_hangs_up_at_the_beep_gets_the_confirmation_text_in_spanish(
    desk: Desk, clock: FixedClock
) -> None:
    clock.set("2026-11-18 10:00")
    result = desk.sim.call(DANA, CallPlan(keys=["9", "1"], coordinator="busy", audio=None))
    status = {"CallSid": result.call_sid, "AccountSid": desk.twilio.account_sid, "From": DANA, "To": desk.sim.to}
    desk.sim.post("/twilio/voice/status", {**status, "CallStatus": "completed"})
    desk.work()
    ticket = ticket_of(desk, result.call_sid)
    (sms,) = desk.twilio.messages(to=DANA)
    body = sms.param("Body") or ""
    assert body.startswith("ITECH Solutions: ticket nuevo creado. Ticket #")
    assert f"#{ticket.number}, prioridad P3 - Media" in body and "Primera respuesta en un máximo de" in body
    assert "(antes del mié 18 nov," in body


def test_press_9_twice_returns_to_english(desk: Desk, clock: FixedClock) -> None:
    clock.set(AFTER_HOURS)
    result = desk.sim.call(DANA, CallPlan(keys=["9", "9", "2"], audio=None))
    ticket = ticket_of(desk, result.call_sid)
    assert ticket.language == "en"
    assert result.said[-1][0] == "en-US" and result.said[-1][1].startswith("Your message will be submitted as a P 1")


def test_with_the_language_offer_off_key_9_is_just_a_wrong_key(desk: Desk, clock: FixedClock) -> None:
    desk.runtime.settings = desk.runtime.settings.with_overrides(call_language=None)
    clock.set(AFTER_HOURS)
    result = desk.sim.call(DANA, CallPlan(keys=["9", "2"], audio=None))
    assert OFFER not in [text for _lang, text in result.said]
    assert "Sorry, that is not one of the options." in result.heard
    assert all(lang == "en-US" for lang, _text in result.said)


def test_a_text_from_a_spanish_caller_is_answered_in_spanish(desk: Desk, clock: FixedClock) -> None:
    clock.set(AFTER_HOURS)
    assert desk.text(DANA, "my printer is down").startswith("ITECH Solutions support: thank you, we opened ticket #")
    desk.sim.call(DANA, CallPlan(keys=["9", "2"], audio=None))
    reply = desk.text(DANA, "ok")  # no Spanish in it: the language the caller chose on their latest call
    assert reply.startswith("Soporte de ITECH Solutions: su mensaje está en el ticket #")


SPANISH_MESSAGE = (
    "Hola, habla Lucía Gómez, de Panadería Sol. El punto de venta no funciona y no podemos cobrar a los "
    "clientes. Por favor, llámeme. Es urgente, gracias."
)


@pytest.fixture(scope="module")
def spanish_wav(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real Spanish voicemail: espeak-ng's Latin American voice, 8 kHz telephone band."""
    import shutil
    import subprocess

    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} (make test installs it)")
    d = tmp_path_factory.mktemp("es-call")
    subprocess.run(["espeak-ng", "-v", "es-419", "-s", "145", "-w", str(d / "raw.wav"), SPANISH_MESSAGE], check=True)
    subprocess.run(
        ["sox", str(d / "raw.wav"), "-r", "8000", "-c", "1", "-b", "16", str(d / "vm.wav"), "sinc", "300-3400"],
        check=True,
    )
    return (d / "vm.wav").read_bytes()


@pytest.mark.slow
def test_press_9_then_2_and_a_spanish_message_after_hours_end_to_end(
    desk: Desk, clock: FixedClock, spanish_wav: bytes
) -> None:
    """Spanish prompts, the number read back in Spanish, a P1 page, the Spanish text, transcript and translation."""
    from ivr.simulate import TwilioSimulator

    clock.set(AFTER_HOURS)
    settings = desk.runtime.settings
    media = desk.twilio  # it serves the recordings: credentials go only to TWILIO_API_BASE_URL's origin
    sim = TwilioSimulator(
        desk.sim.public,
        server_base_url=desk.sim.server,
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token,
        media=media,
    )
    result = sim.call(DANA, CallPlan(keys=["9", "2"], audio=spanish_wav))
    ticket = ticket_of(desk, result.call_sid)
    heard = " ".join(text for lang, text in result.said if lang == "es-US")
    assert f"Su número de ticket es {' '.join(str(ticket.number))}." in heard
    assert "Este es un ticket crítico P 1. Estamos avisando ahora a nuestro ingeniero de guardia." in heard
    assert "También recibirá un mensaje de texto con su número de ticket." in heard
    assert result.ticket_number == ticket.number and (ticket.priority, ticket.language) == ("P1", "es")
    desk.work()  # the page, the transcription (multilingual model), the confirmation, the follow-up

    ticket = ticket_of(desk, result.call_sid)
    assert ticket.transcription_state == "done", ticket.transcription_error
    assert ticket.transcript_language == "es"
    assert ticket.transcript and ticket.transcript_translation and ticket.transcript != ticket.transcript_translation
    # Whisper samples, and the base model mishears espeak's Spanish: some of the message's words, not all.
    assert {"punto", "venta", "urgente", "clientes", "gracias"} & set(re.findall(r"\w+", ticket.transcript.lower()))
    assert {"the", "we", "is", "thank"} & set(re.findall(r"\w+", ticket.transcript_translation.lower()))
    (sms,) = desk.twilio.messages(to=DANA)
    assert (sms.param("Body") or "").startswith(f"ITECH Solutions: ticket nuevo creado. Ticket #{ticket.number}")
    texts = [m.param("Body") or "" for m in desk.twilio.messages(to=CAT)]
    assert any(f"#{ticket.number}" in t and "Translated from Spanish" in t for t in texts), texts


def test_a_spanish_caller_keys_another_callback_number_after_the_message_and_hears_it_in_spanish(
    desk: Desk, clock: FixedClock
) -> None:
    from tests.ivr.test_callback_number import Media, _silence

    clock.set(AFTER_HOURS)
    desk.sim.media = Media()
    result = desk.sim.call(DANA, CallPlan(keys=["9", "", "", "8055550188#"], audio=_silence()))
    spanish = [text for lang, text in result.said if lang == "es-US"]
    heard = " ".join(spanish)
    assert heard.index("Su número de ticket es") < heard.index("Le devolveremos la llamada al 8 0 5, 5 5 5, 0 1 4 2")
    assert "8 0 5, 5 5 5, 0 1 8 8" in heard.split("Le devolveremos la llamada al 8 0 5, 5 5 5, 0 1 4 2", 1)[1]
    ticket = ticket_of(desk, result.call_sid)
    assert (ticket.language, ticket.callback_number, ticket.callback_origin) == ("es", "+18055550188", "keyed")
    assert ticket.caller_number == DANA


def test_a_spanish_caller_who_keys_a_number_that_is_no_phone_number_keeps_the_caller_id(
    desk: Desk, clock: FixedClock
) -> None:
    from tests.ivr.test_callback_number import Media, _silence

    clock.set(AFTER_HOURS)
    desk.sim.media = Media()
    result = desk.sim.call(DANA, CallPlan(keys=["9", "", "", "12#", "34#"], audio=_silence()))
    ticket = ticket_of(desk, result.call_sid)
    assert ticket.callback_number in (None, DANA) and ticket.callback_origin in (None, "confirmed")
    assert ticket.language == "es"
