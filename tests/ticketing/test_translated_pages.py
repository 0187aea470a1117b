"""Pages about a Spanish voicemail carry its English translation, marked as a translation."""

from __future__ import annotations

from types import SimpleNamespace

from ivr.paging import page_prompt
from ticketing.paging import content_of, follow_up_sms, page_email_text, page_sms

SPANISH = "Hola, soy María de Clínica Sonrisa. Nuestro servidor está caído. Llámeme al 805 555 0188."
ENGLISH = "Hello, I'm María from Clínica Sonrisa. Our server is down. Call me at 805 555 0188."


def _ticket(**fields: object) -> SimpleNamespace:
    base = {
        "number": 400127,
        "client": SimpleNamespace(name="Clínica Sonrisa"),
        "caller_number": "+18055550188",
        "transcript": SPANISH,
        "transcript_language": "es",
        "transcript_translation": ENGLISH,
        "transcript_low_confidence": False,
        "transcript_missing": None,
    }
    return SimpleNamespace(**(base | fields))


def test_the_page_content_of_a_spanish_message_is_its_marked_translation() -> None:
    content = content_of(_ticket())  # type: ignore[arg-type]
    assert content.translated_from == "Spanish" and content.translation == ENGLISH and content.original == SPANISH
    # Pages that quote only ``transcript`` (the page call) say it is a translation too.
    assert content.transcript == f"Translated from Spanish: {ENGLISH}"


def test_the_page_sms_quotes_the_translation_marked_as_one() -> None:
    body = page_sms(content_of(_ticket()), "ITECH Solutions")  # type: ignore[arg-type]
    assert f'Translated from Spanish: "{ENGLISH}"' in body and "Message:" not in body and len(body) <= 320
    assert "servidor" not in body


def test_the_follow_up_sms_quotes_the_translation_marked_as_one() -> None:
    body = follow_up_sms(content_of(_ticket()), acknowledged=False)  # type: ignore[arg-type]
    assert body.startswith(f'Ticket #400127 transcript. Translated from Spanish: "{ENGLISH}"')
    assert body.endswith("Reply 1 to acknowledge.") and len(body) <= 300


def test_the_email_page_gives_the_translation_then_the_original() -> None:
    text = page_email_text(
        content_of(_ticket(transcript_low_confidence=True)),  # type: ignore[arg-type]
        company="ITECH Solutions",
        ack_url="https://support.example.com/ack?token=x",
        ticket_url="https://support.example.com/tickets/400127",
        support_number="+18055550100",
    )
    assert "Message, translated from Spanish by machine (low confidence: listen to the audio):\n" + ENGLISH in text
    assert "Original (Spanish):\n" + SPANISH in text
    assert text.index(ENGLISH) < text.index(SPANISH)


def test_the_page_call_reads_the_translation_and_says_it_is_one() -> None:
    twiml = str(page_prompt(content_of(_ticket()), company="ITECH", key_action="/k", again=None))  # type: ignore[arg-type]
    assert "Translated from Spanish: Hello, I'm María" in twiml and "servidor" not in twiml


def test_an_english_message_and_a_spanish_one_without_translation_are_paged_as_before() -> None:
    english = content_of(_ticket(transcript=ENGLISH, transcript_language="en", transcript_translation=None))  # type: ignore[arg-type]
    assert english.translated_from is None and english.transcript == ENGLISH
    assert 'Message: "Hello' in page_sms(english, "ITECH")
    untranslated = content_of(_ticket(transcript_translation=None))  # type: ignore[arg-type]
    assert untranslated.translated_from is None and untranslated.transcript == SPANISH


def test_a_translation_marked_unreliable_makes_the_page_say_low_confidence() -> None:
    passes = [{"pass": "first", "low_confidence": False}, {"pass": "translation", "low_confidence": True}]
    body = follow_up_sms(content_of(_ticket(transcript_passes=passes)), acknowledged=True)  # type: ignore[arg-type]
    assert body.startswith("Ticket #400127 transcript (low confidence). Translated from Spanish:")
    sure = follow_up_sms(content_of(_ticket()), acknowledged=True)  # type: ignore[arg-type]
    assert "low confidence" not in sure


def test_the_page_names_the_callers_language() -> None:
    body = page_sms(content_of(_ticket(language="es", transcript=None)), "ITECH Solutions")  # type: ignore[arg-type]
    assert "caller +18055550188 (Spanish-speaking). Reply 1 to acknowledge." in body
    english = page_sms(content_of(_ticket(language="en", transcript=None)), "ITECH Solutions")  # type: ignore[arg-type]
    assert "speaking" not in english
