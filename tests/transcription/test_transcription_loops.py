"""A decoder that loops ("I love you, I love you, ...") is cut to one round and marked, never shown as said."""

from __future__ import annotations

from dataclasses import replace

import pytest

from transcription.engine import Transcript
from transcription.pipeline import _without_loops, collapse_repeats


@pytest.mark.parametrize(
    ("looped", "kept"),
    [
        ("Hello, I love you, I love you, I love you, I love you.", "Hello, I love you …"),
        ("soporte técnico, sincro, sincro, sincro, sincro, sincro.", "soporte técnico, sincro …"),
        ("Tomás Gil, Tomás Gil, Tomás Gil, Tomás Gil. I'm not going", "Tomás Gil … I'm not going"),
        (
            "the one with the camera, the one with the camera, the one with the camera, we'll learn it",
            "the one with the camera … we'll learn it",
        ),
    ],
)
def test_a_loop_is_cut_to_one_round(looped: str, kept: str) -> None:
    assert collapse_repeats(looped) == (kept, True)


@pytest.mark.parametrize(
    "said",
    [
        "Call me at 805 555 5555, that is five five five five five.",
        "ocho cero cinco, cinco cinco cinco, cero uno ocho ocho",
        "No, no, no, the printer is still down.",  # three times is how people talk
        "Thank you. Thank you very much.",
        "",
    ],
)
def test_what_people_say_twice_or_thrice_and_numbers_are_left_alone(said: str) -> None:
    assert collapse_repeats(said) == (" ".join(said.split()), False)


def test_a_looped_reading_is_marked_low_confidence() -> None:
    reading = Transcript(
        text="We can't find the patients. I love you, I love you, I love you, I love you.",
        segments=(),
        language="en",
        confidence=0.7,
        low_confidence=False,
        no_speech=False,
        audio_seconds=9.0,
        engine="faster-whisper",
        model="base",
    )
    cut = _without_loops(reading)
    assert (cut.text, cut.low_confidence) == ("We can't find the patients. I love you …", True)
    clean = replace(reading, text="We can't find the patients.")
    assert _without_loops(clean) is clean
