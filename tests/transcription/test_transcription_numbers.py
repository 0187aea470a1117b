"""Numbers written as digits in the caller's grouping, however they were said (pure code)."""

from __future__ import annotations

import pytest

from transcription.hints import find_callback_number
from transcription.numbers import digits_as_said, group_digits

# (what Whisper wrote with digit tokens suppressed, what the ticket shows)
PHRASINGS = [
    ("Please call me at eight oh five, five five five, oh one eight eight. Thanks.",
     "Please call me at 805 555 0188. Thanks."),
    ("My number is area code eight oh five, five five five, zero one four two.",
     "My number is area code 805 555 0142."),
    ("eight zero five, double five five, zero one two one", "805 555 0121"),
    ("Call me at eight zero five, triple five, nine three one zero.", "Call me at 805 555 9310."),
    ("call me back on five five five, oh one eighty-eight please", "call me back on 555 0188 please"),
    ("To call this number, five, five, five, O, one, eighty, eight.", "To call this number, 555 0188."),
    ("Call me back at eight oh five, five, five, five, four, four, six, eight.", "Call me back at 805 555 4468."),
    ("Callback number eight zero five five five five four four six eight.", "Callback number 805 555 4468."),
    ("the office is eight oh five, five five five, zero one hundred.", "the office is 805 555 0100."),
    ("This is about ticket four zero zero one two seven.", "This is about ticket 400127."),
    ("ticket number four hundred thousand one hundred and thirty", "ticket number 400130"),
    ("Ask for Ken at extension two one three.", "Ask for Ken at extension 213."),
    ("it's extension two one", "it's extension 21"),
    ("The invoice says two hundred and fifty dollars.", "The invoice says 250 dollars."),
]  # fmt: skip
# Words that are not numbers stay words.
UNCHANGED = [
    "One of our staff clicked the link.",
    "Oh, one more thing.",
    "I have three questions about two or three computers.",
    "Call 805-555-0142 please",
]


@pytest.mark.parametrize(("heard", "shown"), PHRASINGS)
def test_spoken_numbers_are_written_as_digits_in_the_callers_grouping(heard: str, shown: str) -> None:
    assert digits_as_said(heard) == shown


@pytest.mark.parametrize("text", UNCHANGED)
def test_words_that_are_not_numbers_are_left_alone(text: str) -> None:
    assert digits_as_said(text) == text


def test_a_run_without_the_callers_pauses_takes_the_north_american_shape() -> None:
    assert group_digits(["8055550188"]) == "805 555 0188"
    assert group_digits(["18055550188"]) == "1 805 555 0188"
    assert group_digits(["5550188"]) == "555 0188"
    assert group_digits(["805", "5550", "188"]) == "805 5550 188"  # the caller's own grouping wins
    assert group_digits(["400127"]) == "400127"


@pytest.mark.parametrize(
    ("heard", "number"),
    [
        ("Please call me back at eight oh five, five five five, oh one eight eight.", "+18055550188"),
        ("reach me on eight zero five, double five five, zero one two one, thanks", "+18055550121"),
        ("area code eight oh five, five five five, zero one four two", "+18055550142"),
        ("call me on five five five, oh one eighty-eight", "5550188"),
    ],
)
def test_the_callback_hint_finds_the_number_in_the_written_transcript(heard: str, number: str) -> None:
    assert find_callback_number(digits_as_said(heard)) == number
