"""Numbers written as digits in the caller's grouping, however they were said; the second reading on real Whisper."""

from __future__ import annotations

from pathlib import Path

import pytest

from testing.corpus import Clip, build_clip
from transcription.engine import Engine, Transcript
from transcription.hints import find_callback_number
from transcription.numbers import digits_as_said, group_digits
from transcription.pipeline import NUMBER_PROMPT, transcribe_voicemail

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
    # tiny.en's "time" / "fine" for a telephone "five", repaired only inside a number run
    ("call me back on time, time, time, oh one eighty-eight please", "call me back on 555 0188 please"),
    ("my cell is eight oh five, fine, fine, fine, two seven one nine", "my cell is 805 555 2719"),
    ("Call me at eight zero five, triple time, nine three one zero.", "Call me at 805 555 9310."),
    ("eight zero five, double fine five, zero one two one", "805 555 0121"),
    # tiny.en's "free" for a telephone "three" inside a run, "to" for "two" right after a cue word
    ("Please ask for Ken at extension to one free, he knows.", "Please ask for Ken at extension 213, he knows."),
    ("an extension to one-three", "an extension 213"),
    ("my cell is eight oh five, five five five, free one two one", "my cell is 805 555 3121"),
    # "go" for "oh" and "on" for "one" inside a run, with a digit next
    ("Call me back on eight one eight five five five go on two three. Thank you", "Call me back on 818 555 0123. Thank you"),
    ("call me back on five five five five, go, one eighty-eight, please", "call me back on 555 0188, please"),
    ("Call five five five, go. On the other hand, email me.", "Call 555, go. On the other hand, email me."),
    # Whisper's extra copy of a repeated digit, where the run is too long for a phone number
    ("My number is area code eight oh five five five five five oh one four two.", "My number is area code 805 555 0142."),
    ("call me back on five five five five, oh one eight eight, please", "call me back on 555 0188, please"),
    ("My cell is eight oh five five five five five five two seven one nine", "My cell is 805 555 2719"),
    # pauses that fall where a 3-3-4 number's groups end
    ("call me back at eight oh five five five five, oh one eight eight", "call me back at 805 555 0188"),
]  # fmt: skip
# Words that are not numbers stay words.
UNCHANGED = [
    "One of our staff clicked the link.",
    "Oh, one more thing.",
    "I have three questions about two or three computers.",
    "Call 805-555-0142 please",
    "Call me any time, time permitting.",
    "I had a fine time, five years ago.",
    "Fine, fine, two of them.",
    "We pay double time on weekends.",
    "It took triple time, two days.",
    "We got one free month.",
    "Please go on, two of them.",
    "press five to go on",
    "We are open nine to five.",
    "I need the number to one of them.",
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
    assert group_digits(["805555", "0188"]) == "805 555 0188"  # the pauses fall inside 3-3-4


def test_a_repeated_digit_loses_the_copies_a_phone_number_has_no_room_for() -> None:
    assert group_digits(["80555550142"]) == "805 555 0142"  # 11 digits, five fives
    assert group_digits(["805", "5555", "0188"]) == "805 555 0188"  # the copy goes from the caller's group
    assert group_digits(["5555", "0188"]) == "555 0188"
    assert group_digits(["805555552719"]) == "805 555 2719"  # two copies
    assert group_digits(["555", "5555"]) == "555 5555"  # a phone number's length: as said
    assert group_digits(["18005555555"]) == "1 800 555 5555"  # a country code and ten digits
    assert group_digits(["40012755"]) == "40012755"  # no digit four times in a row: as said


def test_currency_and_percent_signs_are_suppressed_with_the_digits(faster_engine: Engine) -> None:
    from transcription.numbers import digit_token_ids

    tokenizer = faster_engine.load().hf_tokenizer  # type: ignore[attr-defined]
    suppressed = {tokenizer.decode([i]) for i in digit_token_ids(tokenizer)}
    assert {" $", "$", "%", " 5", "5"} <= suppressed
    assert not {" dollars", " five", " percent"} & suppressed


def test_an_amount_after_a_dollar_sign_is_not_cut_off(
    faster_engine: Engine, refine_engine: Engine, audio_dir: Path
) -> None:
    # flite's "The invoice says two hundred and fifty dollars, but the quote was one hundred and
    # eighty": with "$" allowed and the digits suppressed, tiny.en wrote "The invoice says $" and stopped.
    clip = build_clip(audio_dir, "fnum-amount")
    transcript = transcribe_voicemail(faster_engine, clip.path, refine_with=refine_engine)
    assert "250 dollars" in transcript.text
    assert "180" in transcript.text


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


# --- the second reading of a voicemail that may hold a number (real Whisper) -------------------------


def test_a_number_the_first_reading_mangles_is_read_again_in_digit_words(
    faster_engine: Engine, refine_engine: Engine, audio_dir: Path
) -> None:
    # espeak's "eight zero five" over the phone band: with the digit-word prompt
    # tiny.en reads the number; without the second reading it does not.
    clip = build_clip(audio_dir, "num-area-code")
    first = transcribe_voicemail(faster_engine, clip.path, number_pass=False)
    both = transcribe_voicemail(faster_engine, clip.path, refine_with=refine_engine)
    assert "805 555 0142" not in first.text
    assert "805 555 0142" in both.text
    assert find_callback_number(both.text) == "+18055550142"


def test_no_second_reading_where_nothing_was_said(faster_engine: Engine, corpus: dict[str, Clip]) -> None:
    calls: list[str | None] = []

    class Counting:
        name, model = faster_engine.name, faster_engine.model

        def transcribe(self, audio_path: Path, initial_prompt: str | None = None) -> Transcript:
            calls.append(initial_prompt)
            return faster_engine.transcribe(audio_path, initial_prompt=initial_prompt)

    for name in ("silence", "white-noise", "pink-noise"):
        result = transcribe_voicemail(Counting(), corpus[name].path)
        assert result.text == ""
    assert NUMBER_PROMPT not in calls


def test_a_first_reading_that_left_the_speech_out_is_read_again(
    faster_engine: Engine, refine_engine: Engine, audio_dir: Path
) -> None:
    # Asterisk's "2 hundred 50 dollars": tiny.en's first reading returns nothing for speech the voice
    # activity detector found; the second reading (its prompt changes what the decoder hears) covers it.
    clip = build_clip(audio_dir, "hnum-amount")
    first = transcribe_voicemail(faster_engine, clip.path, number_pass=False)
    both = transcribe_voicemail(faster_engine, clip.path, refine_with=refine_engine)
    # Usually an empty reading with the speech flagged missing (Whisper's temperature fallback samples).
    assert first.missing or "dollars" in first.text
    assert "dollars" in both.text
    assert not both.missing


def test_a_reading_is_scored_by_its_whole_numbers_and_against_runs_no_number_has() -> None:
    from transcription.pipeline import number_score

    assert number_score("call me on 805 555 0188, extension 213") == 13
    assert number_score("ticket 400127, or 1 805 555 0188") == 17
    assert number_score("it's 16 of them") == 0  # two digits: not a number worth reading again for
    # An invented digit loses to the reading without it.
    assert number_score("It's 32360147723234323477.") < number_score("It's 323 601 4772.")
    assert number_score("My direct line is 61984277038.") < number_score("My direct line is 619 842 7703")


def _reading(text: str, *, low: bool = False, missing: tuple[tuple[float, float], ...] = ()) -> Transcript:
    return Transcript(
        text=text,
        segments=(),
        language="en",
        audio_seconds=12.0,
        engine="faster-whisper",
        model="tiny.en",
        confidence=0.4 if low else 0.8,
        no_speech=not text,
        low_confidence=low,
        missing=missing,
    )


def test_a_quick_first_reading_is_read_again_where_it_may_hold_a_number_left_speech_out_or_is_doubtful() -> None:
    from transcription.pipeline import worth_reading_again

    assert worth_reading_again(_reading("call me on eight oh five"))
    assert worth_reading_again(_reading("the printer is jammed again", missing=((8.0, 11.0),)))
    assert worth_reading_again(_reading("the printer is jammed again", low=True))
    assert not worth_reading_again(_reading("the printer is jammed again"))
    assert not worth_reading_again(_reading("", low=True))  # nothing heard and no speech found: silence


def test_the_second_reading_replaces_the_first_by_coverage_then_numbers_then_confidence() -> None:
    from transcription.pipeline import replaces

    doubtful = _reading("the printer in room for is jammed", low=True)
    assert replaces(doubtful, _reading("the printer in room four is jammed"))
    assert not replaces(doubtful, _reading("the printer in room four is jammed", low=True))
    assert not replaces(_reading("the printer is jammed"), _reading("the printer is jammed again"))
    # Numbers before confidence: a confident reading that lost the number does not win.
    assert not replaces(_reading("call 805 555 0188", low=True), _reading("call eight or five"))
    assert replaces(_reading("call eight or five"), _reading("call 805 555 0188", low=True))
    # Coverage before everything: no reading that leaves more speech out, nor one that hears nothing.
    assert not replaces(doubtful, _reading("the printer is jammed", missing=((3.0, 6.0),)))
    assert not replaces(doubtful, _reading(""))
    assert replaces(_reading("call", missing=((2.0, 9.0),)), _reading("call me back", low=True))
