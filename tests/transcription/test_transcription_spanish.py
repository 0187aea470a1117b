"""Spanish voicemails: the number reader, the triage hints, and the multilingual engine on espeak-ng audio."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from testing.spanish import build_spanish_clip
from transcription.hints import initial_prompt_for, translation_prompt_for, triage_hints
from transcription.numbers import digits_as_said


@pytest.mark.parametrize(
    ("heard", "shown"),
    [
        ("llámeme al ocho cero cinco, cinco cinco cinco, cero uno ocho ocho.", "llámeme al 805 555 0188."),
        ("mi número es ocho, cero, cinco, cinco, cinco, cinco, cero, uno, cuatro, dos", "mi número es 805 555 0142"),
        ("ocho cero cinco, doble cinco cinco, cero uno dos uno", "805 555 0121"),
        ("el ticket cuatro cero cero uno dos siete", "el ticket 400127"),
        ("extensión dos uno", "extensión 21"),
        ("cinco cinco cinco cero uno ochenta y ocho", "555 0188"),
        ("la factura dice doscientos cincuenta dólares", "la factura dice 250 dólares"),
        ("tengo una computadora y dos impresoras", "tengo una computadora y dos impresoras"),
    ],
)
def test_spanish_numbers_are_written_as_digits_in_the_callers_grouping(heard: str, shown: str) -> None:
    assert digits_as_said(heard, "es") == shown


def test_english_number_words_are_left_alone_in_spanish_and_other_languages_untouched() -> None:
    assert digits_as_said("eight oh five", "es") == "eight oh five"
    assert digits_as_said("huit zéro cinq", "fr") == "huit zéro cinq"


@pytest.mark.parametrize(
    ("text", "priority", "cue"),
    [
        ("El servidor está caído y nadie en la oficina puede trabajar.", "P1", "server down"),
        ("El servidor esta caido desde la mañana.", "P1", "server down"),
        ("No hay sistema en toda la oficina.", "P1", "office down"),
        ("Creemos que tenemos un virus.", "P1", "virus"),
        ("Es urgente, por favor.", "P2", "urgent"),
        ("Es una emergencia.", "P2", "urgent"),
        ("La caja no funciona y no podemos cobrar con tarjeta.", "P2", "payments down"),
        ("La impresora no funciona.", "P3", "not working"),
        ("La impresora no funciona. No es urgente, cuando puedan.", "P4", "not urgent"),
        ("Necesitamos configurar una computadora nueva.", "P4", "request"),
    ],
)
def test_spanish_urgency_cues_suggest_a_priority(text: str, priority: str, cue: str) -> None:
    hints = triage_hints(text, language="es")
    assert hints.priority == priority and cue in hints.cues


def test_spanish_hints_find_the_caller_organisation_callback_and_summary() -> None:
    hints = triage_hints(
        "Hola, soy María González de Clínica Dental Sonrisa. Nuestro servidor está caído. "
        "Por favor llámeme al ocho cero cinco, cinco cinco cinco, cero uno ocho ocho. Gracias.",
        language="es",
    )
    assert hints.caller.name == "María González" and hints.caller.organisation == "Clínica Dental Sonrisa"
    assert hints.callback_number == "+18055550188"
    assert hints.summary == "Clínica Dental Sonrisa: Nuestro servidor está caído"


def test_prompts_in_the_language_spoken_and_for_the_translation() -> None:
    assert initial_prompt_for("Farmacia Central", ["Paula Rojas"], language="es") == (
        "Mensaje de voz al soporte técnico de Farmacia Central. Llaman: Paula Rojas."
    )
    assert translation_prompt_for(["Paula Rojas"]) == "Voicemail to the IT helpdesk. Callers: Paula Rojas."
    assert translation_prompt_for([]) == ""


@pytest.fixture(scope="module")
def multilingual() -> Any:
    from transcription.faster import FasterWhisperEngine

    engine = FasterWhisperEngine("bundled:base")
    engine.load()
    return engine


def test_the_multilingual_engine_detects_transcribes_and_translates_spanish(multilingual: Any, audio_dir: Path) -> None:
    clip = build_spanish_clip(audio_dir, "es-javier-caja")
    assert multilingual.detect_language(clip, ("en", "es"))[0] == "es"
    spanish = multilingual.transcribe(clip, language="es")
    english = multilingual.transcribe(clip, task="translate", language="es")
    assert spanish.language == "es" and "gracias" not in english.text.lower()
    assert {"funciona", "tarjeta", "emergencia"} & set(spanish.text.lower().replace(",", " ").replace(".", " ").split())
    assert english.language == "en" and english.text


def test_the_english_only_model_ignores_a_language_and_detects_english(
    faster_engine: Any, corpus: dict[str, Any]
) -> None:
    clip = corpus["dana-server-down"].path
    assert faster_engine.detect_language(clip) == ("en", 1.0)
    assert faster_engine.transcribe(clip, language="es").language == "en"


def test_cinco_misheard_in_a_row_and_al_ocho_run_together_are_read_as_digits() -> None:
    assert digits_as_said("llamar a locho cero cinco, sinto, sinto, sinto, cero uno ocho ocho", "es") == (
        "llamar al 805 555 0188"
    )
    assert digits_as_said("un cinto negro", "es") == "un cinto negro"
