"""Tickets from Spanish-speaking callers: the queue, the ticket page and the API show the language and filter by it."""

from __future__ import annotations

import re
from collections.abc import Callable

from flask import Flask

from runtime import Runtime
from tests.web.conftest import Console
from ticketing import audit, lifecycle
from ticketing.db import transaction

SPANISH = "Hola, habla Lucía de Panadería Sol. El punto de venta no funciona y no podemos cobrar."
ENGLISH = "Hello, this is Lucia from Sol Bakery. The point of sale is down and we cannot take payments."


def _rows(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'data-number="(\d+)"', html)]


def spanish_voicemail(runtime: Runtime, open_ticket: Callable[..., int], *, spoke: str = "es") -> int:
    number = open_ticket("2026-11-18 09:30", priority="P3", source="voicemail", caller_number="+18055550142")
    with transaction(runtime.sessions) as s:
        t = lifecycle.get_ticket(s, number)
        t.language = "es"
        t.transcription_state = "done"
        t.transcript_language = spoke
        t.transcript = SPANISH if spoke == "es" else ENGLISH
        t.transcript_translation = ENGLISH if spoke == "es" else None
    return number


def test_the_queue_marks_and_filters_spanish_tickets(
    console: Console, runtime: Runtime, open_ticket: Callable[..., int]
) -> None:
    english = open_ticket("2026-11-18 09:00", priority="P3")
    spanish = spanish_voicemail(runtime, open_ticket)
    html = console.get("/queue").get_data(as_text=True)
    assert _rows(html) == [english, spanish]
    row = html[html.index(f'data-number="{spanish}"') :]
    row = row[: row.index("</tr>")]
    assert '<span class="lang"' in row and ">Spanish</span>" in row
    assert "The point of sale is down" in row  # the first line the coordinator reads is the translation
    assert '<option value="es"' in html and ">Spanish</option>" in html
    assert _rows(console.get("/queue?language=es").get_data(as_text=True)) == [spanish]
    assert _rows(console.get("/queue?language=en").get_data(as_text=True)) == [english]
    assert _rows(console.get("/queue?language=es&status=all").get_data(as_text=True)) == [spanish]
    bad = console.get("/queue?language=klingon").get_data(as_text=True)
    assert "unknown language" in bad and len(_rows(bad)) == 2


def test_the_ticket_page_shows_the_translation_with_the_original_one_click_away(
    console: Console, runtime: Runtime, open_ticket: Callable[..., int]
) -> None:
    number = spanish_voicemail(runtime, open_ticket)
    html = console.get(f"/tickets/{number}").get_data(as_text=True)
    assert "English translation</b> of a Spanish message" in html
    translation = html.index('id="translation"')
    original = html.index("<summary>Original (Spanish)</summary>")
    assert translation < original and ENGLISH in html[translation:original]
    assert SPANISH in html[original:]  # inside the <details>, one click away
    assert "<dt>Language</dt><dd>Spanish</dd>" in html


def test_a_caller_who_pressed_9_but_spoke_english_shows_both(
    console: Console, runtime: Runtime, open_ticket: Callable[..., int]
) -> None:
    number = spanish_voicemail(runtime, open_ticket, spoke="en")
    html = console.get(f"/tickets/{number}").get_data(as_text=True)
    assert 'id="translation"' not in html and ENGLISH in html
    assert "<dt>Language</dt><dd>Spanish (spoke English)</dd>" in html
    assert _rows(console.get("/queue?language=en").get_data(as_text=True)) == [number]  # heard in English
    assert _rows(console.get("/queue?language=es").get_data(as_text=True)) == [number]  # chose Spanish


def test_the_api_shows_the_language_and_translation_and_filters_by_language(
    app: Flask, runtime: Runtime, api_token: str, open_ticket: Callable[..., int]
) -> None:
    english = open_ticket("2026-11-18 09:00", priority="P3")
    spanish = spanish_voicemail(runtime, open_ticket)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {api_token}"}
    body = client.get(f"/api/tickets/{spanish}", headers=headers).get_json()
    assert body["language"] == "es"
    assert (body["transcript"]["language"], body["transcript"]["text"], body["transcript"]["translation"]) == (
        "es",
        SPANISH,
        ENGLISH,
    )
    listed = client.get("/api/tickets?language=es", headers=headers).get_json()["tickets"]
    assert [t["number"] for t in listed] == [spanish]
    listed = client.get("/api/tickets?language=en", headers=headers).get_json()["tickets"]
    assert [t["number"] for t in listed] == [english]
    bad = client.get("/api/tickets?language=xx", headers=headers)
    assert bad.status_code == 400 and "language must be one of en, es" in bad.get_json()["error"]


def test_an_unreliable_translation_says_so_on_the_ticket_page(
    console: Console, runtime: Runtime, open_ticket: Callable[..., int]
) -> None:
    number = spanish_voicemail(runtime, open_ticket)
    with transaction(runtime.sessions) as s:
        t = lifecycle.get_ticket(s, number)
        t.transcript_passes = [
            {"pass": "first", "text": SPANISH, "low_confidence": False},
            {"pass": "translation", "text": "We cannot charge. I love you …", "low_confidence": True},
        ]
    html = console.get(f"/tickets/{number}").get_data(as_text=True)
    assert "<b>Unreliable translation</b>" in html
    assert html.index("Unreliable translation") < html.index('id="translation"')


def test_a_caller_language_that_could_not_be_honoured_is_shown(
    console: Console, runtime: Runtime, open_ticket: Callable[..., int]
) -> None:
    number = spanish_voicemail(runtime, open_ticket, spoke="en")
    note = "The caller chose Spanish on the call, but no multilingual model is available (off): transcribed with the English model"
    with transaction(runtime.sessions) as s:
        lifecycle.get_ticket(s, number).transcript_passes = [{"pass": "first", "text": ENGLISH, "note": note}]
    html = console.get(f"/tickets/{number}").get_data(as_text=True)
    assert "<b>Not in the caller's language</b>" in html and note in html


def test_a_spanish_transcript_waiting_for_its_translation_says_so_and_shows_the_spanish(
    console: Console, runtime: Runtime, open_ticket: Callable[..., int]
) -> None:
    number = spanish_voicemail(runtime, open_ticket)
    with transaction(runtime.sessions) as s:
        lifecycle.get_ticket(s, number).transcript_translation = None
    html = console.get(f"/tickets/{number}").get_data(as_text=True)
    assert "<b>English translation pending</b>" in html and "Translation failed" not in html
    assert SPANISH in html and 'id="translation"' not in html


def test_a_failed_translation_is_shown_on_the_ticket_page_and_in_the_api_with_the_transcript(
    console: Console, app: Flask, api_token: str, runtime: Runtime, open_ticket: Callable[..., int]
) -> None:
    number = spanish_voicemail(runtime, open_ticket)
    with transaction(runtime.sessions) as s:
        t = lifecycle.get_ticket(s, number)
        t.transcript_translation = None
        detail = {"error": "RuntimeError: out of memory\r\n<script>", "language": "es"}
        audit.audit(s, t, actor="transcription worker", action="translation failed", now=runtime.now(), detail=detail)
    html = console.get(f"/tickets/{number}").get_data(as_text=True)
    assert "<b>Translation failed</b>" in html and "out of memory" in html and "<script>" not in html
    assert SPANISH in html
    body = app.test_client().get(f"/api/tickets/{number}", headers={"Authorization": f"Bearer {api_token}"}).get_json()
    assert body["transcript"]["translation_state"] == "failed" and body["transcript"]["text"] == SPANISH
    assert body["transcript"]["translation_error"].startswith("RuntimeError: out of memory")
