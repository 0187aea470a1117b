"""The anti-hallucination guards and the confidence figure, on synthetic segments."""

from __future__ import annotations

import math

import pytest

from transcription.engine import Segment
from transcription.guards import (
    DEFAULT_GUARDS,
    NO_GUARDS,
    GuardConfig,
    collapse_repeated_words,
    compression_ratio,
    confidence,
    is_phantom_phrase,
    review_segments,
)


def segment(
    text: str,
    start: float = 0.0,
    end: float = 2.0,
    avg_logprob: float = -0.3,
    no_speech_prob: float = 0.1,
) -> Segment:
    return Segment(start, end, text, avg_logprob, no_speech_prob, compression_ratio(text))


def quiet(start: float, end: float) -> float:
    return -90.0


def loud(start: float, end: float) -> float:
    return -20.0


def test_clean_speech_is_kept_whole() -> None:
    segments = [segment(" Our server is down.", 0, 3), segment(" Please call me back.", 3, 5)]
    review = review_segments(segments, audio_seconds=6.0, level_dbfs=loud)
    assert review.text == "Our server is down. Please call me back."
    assert review.kept == tuple(segments)
    assert not review.no_speech
    assert not review.low_confidence


def test_a_segment_whisper_itself_thinks_is_silence_is_dropped() -> None:
    segments = [segment(" Hello.", 0, 2), segment(" and so on", 2, 4, avg_logprob=-1.4, no_speech_prob=0.8)]
    review = review_segments(segments, audio_seconds=5.0, level_dbfs=loud)
    assert review.text == "Hello."
    assert review.dropped[0][1].startswith("no speech")


@pytest.mark.parametrize(
    ("no_speech_prob", "avg_logprob"),
    [(0.8, -0.5), (0.3, -1.5)],
    ids=["likely-silence-but-confident-text", "unlikely-silence-but-unsure-text"],
)
def test_one_of_the_two_no_speech_signals_alone_keeps_the_segment(no_speech_prob: float, avg_logprob: float) -> None:
    # Whisper's rule needs both (faster-whisper #621: no_speech_prob alone is not enough).
    review = review_segments(
        [segment(" We need help.", avg_logprob=avg_logprob, no_speech_prob=no_speech_prob)],
        audio_seconds=3.0,
        level_dbfs=loud,
    )
    assert review.text == "We need help."


@pytest.mark.parametrize(
    "phrase", [" Thanks for watching!", " you", " Thank you.", " Subtitles by the Amara.org community"]
)
def test_a_known_phantom_phrase_over_quiet_audio_is_dropped(phrase: str) -> None:
    review = review_segments([segment(phrase)], audio_seconds=10.0, level_dbfs=quiet)
    assert review.no_speech
    assert review.text == ""
    assert review.dropped[0][1] == "known phantom phrase over quiet audio"


def test_a_caller_who_really_says_thank_you_keeps_it() -> None:
    segments = [segment(" The printer is jammed.", 0, 3), segment(" Thank you.", 3, 4)]
    review = review_segments(segments, audio_seconds=5.0, level_dbfs=loud)
    assert review.text == "The printer is jammed. Thank you."


def test_phantom_phrases_only_match_the_whole_segment() -> None:
    assert is_phantom_phrase("Thanks for watching.")
    assert not is_phantom_phrase("Thanks for watching the server for us.")
    assert not is_phantom_phrase("")


def test_punctuation_only_output_counts_as_no_speech() -> None:
    review = review_segments([segment(" . . . . ."), segment(" ...")], audio_seconds=10.0, level_dbfs=loud)
    assert review.no_speech
    assert review.text == ""


# The next three guards are off by default (no effect on the fixture corpus)
# but stay available as switches; they must still do their job when on.
ALL_ON = GuardConfig(drop_segments_past_end=True, drop_repetitive_segments=True, collapse_repeated_words=True)


def test_segments_that_start_after_the_audio_ends_are_dropped() -> None:
    segments = [segment(" Call me back.", 0, 2), segment(" Call me back.", 12, 16)]
    review = review_segments(segments, audio_seconds=10.0, level_dbfs=loud, config=ALL_ON)
    assert review.text == "Call me back."


def test_a_decoding_loop_is_dropped_by_its_compression_ratio() -> None:
    loop = " I'm going to go ahead and do that." * 12
    assert compression_ratio(loop) > DEFAULT_GUARDS.compression_ratio
    review = review_segments(
        [segment(" Server is down.", 0, 2), segment(loop, 2, 30)], audio_seconds=30.0, level_dbfs=loud, config=ALL_ON
    )
    assert review.text == "Server is down."


def test_repeated_words_collapse_but_phone_digits_do_not() -> None:
    assert collapse_repeated_words("the the the the the printer") == "the printer"
    assert collapse_repeated_words("I think I think I think I think so") == "I think so"
    assert collapse_repeated_words("call 5 5 5 5 5 five five five five") == "call 5 5 5 5 5 five five five five"
    assert collapse_repeated_words("no no no, it is fine") == "no no no, it is fine"
    review = review_segments([segment(" the the the the printer")], audio_seconds=3.0, level_dbfs=loud, config=ALL_ON)
    assert review.text == "the printer"


def test_the_shipped_guards_are_the_ones_that_lowered_errors() -> None:
    assert DEFAULT_GUARDS.decoder_no_speech_skip and DEFAULT_GUARDS.drop_silent_segments
    assert DEFAULT_GUARDS.drop_phantoms_when_quiet
    assert not DEFAULT_GUARDS.vad_filter  # measured: it cut quiet callers


def test_no_segments_at_all_is_no_speech_with_zero_confidence() -> None:
    review = review_segments([], audio_seconds=10.0, level_dbfs=quiet)
    assert review.no_speech
    assert review.confidence == 0.0
    assert not review.low_confidence  # nothing was said: nothing to doubt


def test_confidence_is_exp_of_the_duration_weighted_mean_logprob() -> None:
    segments = [segment("a", 0, 3, avg_logprob=-0.2), segment("b", 3, 4, avg_logprob=-1.0)]
    expected = math.exp((3 * -0.2 + 1 * -1.0) / 4)
    assert confidence(segments) == pytest.approx(expected)


def test_a_zero_length_segment_still_weighs_in_confidence() -> None:
    assert confidence([segment("a", 5, 5, avg_logprob=-0.5)]) == pytest.approx(math.exp(-0.5))


def test_low_confidence_is_flagged_below_the_threshold() -> None:
    config = GuardConfig(low_confidence=0.5)
    unsure = review_segments(
        [segment(" Something about a printer.", avg_logprob=-0.9)], audio_seconds=3.0, level_dbfs=loud, config=config
    )
    sure = review_segments(
        [segment(" Something about a printer.", avg_logprob=-0.4)], audio_seconds=3.0, level_dbfs=loud, config=config
    )
    assert unsure.low_confidence and not unsure.no_speech
    assert not sure.low_confidence


def test_with_no_guards_every_segment_with_words_is_kept() -> None:
    segments = [segment(" you", avg_logprob=-1.5, no_speech_prob=0.9), segment(" Call me.", 40, 45)]
    review = review_segments(segments, audio_seconds=10.0, level_dbfs=quiet, config=NO_GUARDS)
    assert review.kept == tuple(segments)
