"""No speech lost silently: the transcript is checked against where the audio has speech."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from testing.corpus import MID_SILENCE, TEST_SET, Clip, build_clip
from ticketing.transcripts import missing_note
from transcription.coverage import CoverageConfig, complete_transcript, decode, speech_spans, uncovered
from transcription.engine import Engine, Segment, Transcript
from transcription.hints import initial_prompt_for
from transcription.pipeline import transcribe_voicemail

FIXTURES = Path(__file__).parent / "fixtures"
# espeak-ng "en" at 145 words a minute, 8 kHz: the demo's after-hours message.
# With the client-name prompt, tiny.en (int8, beam 5) returns one segment
# covering 0-8.6 s of 16.2 s, ending "We open up"; the callback number is lost.
TRUNCATION = FIXTURES / "prompt-truncation.wav"
TRUNCATION_PROMPT = initial_prompt_for("Acme Dental", ["Dana Whitfield", "Luis Ortega"])


def seg(start: float, end: float, text: str | None = None) -> Segment:
    """A segment; by default with the words a caller says in that time (2.5 a second)."""
    text = text if text is not None else " ".join(["word"] * max(1, int((end - start) * 2.5)))
    return Segment(start=start, end=end, text=text, avg_logprob=-0.3, no_speech_prob=0.01, compression_ratio=1.2)


class StopsEarly:
    """Wraps a real engine and keeps only its first ``keep`` segments of every recording it is given."""

    def __init__(self, engine: Engine, keep: int = 1, *, on_spans: bool = True) -> None:
        self.engine, self.keep, self.on_spans = engine, keep, on_spans
        self.name, self.model = engine.name, engine.model
        self.calls: list[str | None] = []

    def transcribe(self, audio_path: Path, initial_prompt: str | None = None) -> Transcript:
        self.calls.append(initial_prompt)
        full = self.engine.transcribe(audio_path, initial_prompt=initial_prompt)
        keep = self.keep if (len(self.calls) == 1 or self.on_spans) else 0
        kept = full.segments[:keep]
        return replace(full, segments=kept, text=" ".join(s.text.strip() for s in kept), no_speech=not kept)


# --- the arithmetic ---------------------------------------------------------------------------------


def test_speech_no_segment_covers_is_reported_and_short_or_covered_speech_is_not() -> None:
    speech = [(0.5, 8.0), (8.5, 15.5)]
    assert uncovered(speech, [seg(0.0, 8.3)]) == [(8.9, 15.5)]
    assert uncovered(speech, [seg(0.0, 8.3), seg(8.3, 15.4)]) == []
    # Less than a second uncovered is a breath, not lost words.
    assert uncovered([(0.5, 9.5)], [seg(0.0, 8.3)]) == []
    assert uncovered([], [seg(0, 1)]) == [] and uncovered([(1.0, 4.0)], []) == [(1.0, 4.0)]


def test_a_segment_stamped_over_the_whole_window_is_credited_only_with_the_speech_its_words_hold() -> None:
    # A decoder that stopped after five words may still stamp its one segment 0-30 s.
    assert uncovered([(0.5, 29.0)], [seg(0.0, 30.0, "we open up seven tomorrow")]) == [(6.1, 29.0)]
    # Silence inside the segment costs no credit: the words cover the speech on either side.
    assert uncovered([(0.5, 3.0), (20.0, 22.0)], [seg(0.0, 30.0, "one two three four five")]) == []


def test_a_segment_with_timed_words_covers_its_words_and_not_its_stamps() -> None:
    # "…called me on" stamped 0-11.9 s of an 8.4 s message: its words end at 4.2 s.
    words = ((0.0, 0.4), (0.5, 1.2), (1.3, 2.0), (2.1, 3.0), (3.5, 3.84), (3.84, 4.22))
    stopped = replace(seg(0.0, 11.88, "Hi, it's Dana from Acme Dental, called me on"), words=words)
    assert uncovered([(0.67, 7.56)], [stopped]) == [(pytest.approx(4.82), 7.56)]
    # A pause between timed words that holds speech is uncovered too; pauses of silence are not.
    apart = replace(seg(0.0, 9.0, "one two"), words=((0.5, 1.0), (8.0, 8.5)))
    assert uncovered([(0.5, 1.0), (8.0, 8.5)], [apart]) == []
    assert uncovered([(0.5, 8.5)], [apart]) == [(pytest.approx(1.6), pytest.approx(7.4))]


def test_the_note_names_the_spans_to_listen_to_in_minutes_and_seconds() -> None:
    assert missing_note([[8.3, 15.6]]) == "part of the message may be missing: listen to 0:08–0:16"
    assert missing_note([(61.2, 75.0), (90, 95.5)]).endswith("listen to 1:01–1:15, 1:30–1:36")
    assert missing_note(None) == "" and missing_note([]) == ""


def test_the_detector_finds_speech_on_the_audio_not_in_silence_or_noise(corpus: dict[str, Clip]) -> None:
    spans = speech_spans(decode(corpus["dana-server-down"].path))
    assert spans and spans[0][0] < 1.0 and spans[-1][1] > corpus["dana-server-down"].seconds - 2.0
    for name in ("silence", "white-noise", "pink-noise"):
        assert speech_spans(decode(corpus[name].path)) == [], name
    assert speech_spans(np.zeros(16000, dtype=np.float32)) == []


# --- the real engine --------------------------------------------------------------------------------


def test_the_prompt_truncation_recording_is_transcribed_completely(
    faster_engine: Engine, refine_engine: Engine
) -> None:
    raw = faster_engine.transcribe(TRUNCATION, initial_prompt=TRUNCATION_PROMPT)
    speech = speech_spans(decode(TRUNCATION))
    lost = uncovered(speech, raw.segments)
    # The recording still triggers the failure it was kept for.
    assert lost and lost[0][0] < 10.0 < raw.audio_seconds - 5, raw.segments
    # The lost half is decoded again and joins the first reading...
    completed = complete_transcript(faster_engine, TRUNCATION, raw)
    assert completed.missing == () and completed.recovered
    assert "tomorrow" in completed.text.lower()
    # ...and the voicemail's transcript, whichever reading it keeps, covers the whole message.
    whole = transcribe_voicemail(faster_engine, TRUNCATION, TRUNCATION_PROMPT, refine_with=refine_engine)
    assert whole.missing == ()
    assert "tomorrow" in whole.text.lower() and max(s.end for s in whole.segments) > raw.audio_seconds - 2
    assert whole.text.lower().startswith(raw.text.lower()[:40])  # the prompted first part is kept


def test_a_decoder_that_stops_early_is_caught_and_the_rest_decoded_again(
    faster_engine: Engine, corpus: dict[str, Clip]
) -> None:
    clip = corpus["human-unavailable"]  # 31 s, five sentences
    early = StopsEarly(faster_engine, keep=1)
    whole = transcribe_voicemail(early, clip.path, number_pass=False)  # the coverage re-decode alone
    assert whole.recovered and whole.missing == ()
    assert len(early.calls) > 1 and set(early.calls) == {None}
    assert max(s.end for s in whole.segments) > clip.seconds - 3
    assert len(whole.text.split()) > 40


def test_speech_still_untranscribed_is_flagged_with_its_spans(faster_engine: Engine, corpus: dict[str, Clip]) -> None:
    clip = corpus["human-unavailable"]
    never = StopsEarly(faster_engine, keep=1, on_spans=False)
    whole = transcribe_voicemail(never, clip.path, number_pass=False)
    assert whole.missing and not whole.recovered
    start, end = whole.missing[0]
    assert whole.segments[-1].end - 1 < start < end <= clip.seconds + 0.1
    assert missing_note(whole.missing).startswith("part of the message may be missing: listen to 0:")


def test_speech_after_a_long_silence_mid_message_is_transcribed_or_flagged(
    faster_engine: Engine, refine_engine: Engine, audio_dir: Path
) -> None:
    clip = build_clip(audio_dir, MID_SILENCE.name)  # congratulations..., 25 s of silence, "Goodbye. Thank you..."
    whole = transcribe_voicemail(faster_engine, clip.path, refine_with=refine_engine)
    speech = speech_spans(decode(clip.path))
    assert speech[-1][0] > 50, speech  # the detector hears the second part
    assert whole.missing or "thank you for trying" in whole.text.lower()


def test_no_clip_of_the_test_set_is_flagged_without_reason(
    faster_engine: Engine, refine_engine: Engine, corpus: dict[str, Clip]
) -> None:
    flagged = {}
    for name in TEST_SET:
        result = transcribe_voicemail(faster_engine, corpus[name].path, refine_with=refine_engine)
        if result.missing:
            flagged[name] = result.missing
        if corpus[name].kind != "speech":
            assert result.no_speech and not result.recovered, name
    assert flagged == {}


@pytest.mark.parametrize("tolerance", [0.3, 0.6])
def test_tolerance_keeps_timestamp_jitter_from_counting_as_lost(tolerance: float) -> None:
    config = CoverageConfig(tolerance_s=tolerance)
    assert uncovered([(0.5, 10.0)], [seg(0.9, 4.0), seg(4.2, 9.6)], config) == []


def test_a_decoder_that_stops_before_a_number_goes_on_from_its_last_word(
    faster_engine: Engine, audio_dir: Path
) -> None:
    # flite's "…call me on three one oh, five five five, two nine four seven": timed only by its
    # segment, tiny.en's one segment "…called me on" was stamped 0-11.9 s of an 8.4 s message and
    # the number was lost with nothing flagged. With words timed, the decoder goes on from "on".
    clip = build_clip(audio_dir, "new-direct-line")
    raw = faster_engine.transcribe(clip.path)
    assert raw.segments[0].words and raw.segments[0].words[-1][1] < 5.0
    assert "2947" in transcribe_voicemail(faster_engine, clip.path, number_pass=False).text


def test_words_the_first_decode_mistimed_are_not_written_twice(faster_engine: Engine, audio_dir: Path) -> None:
    # tiny.en stamps "You can reach me at area code" at 5.2-6.6 s of a message that says it at the
    # start; the decode of the uncovered start hears those words again, with the number after them.
    clip = build_clip(audio_dir, "new-double-oh")
    raw = faster_engine.transcribe(clip.path)
    assert raw.segments[0].start > 3.0  # still the failure this test is about
    whole = transcribe_voicemail(faster_engine, clip.path, number_pass=False)
    assert whole.text.lower().count("reach me") == 1, whole.text
    assert whole.missing == () and whole.recovered


def test_words_timed_where_the_audio_has_no_speech_are_dropped(faster_engine: Engine, corpus: dict[str, Clip]) -> None:
    # A decoder that goes on from its last word may write digits into the line's silence after the
    # caller stopped; the voice detector heard nothing there.
    clip = corpus["dana-server-down"]
    read = faster_engine.transcribe(clip.path)
    end = speech_spans(decode(clip.path))[-1][1]
    invented = replace(seg(end + 0.4, end + 0.9, "One eight, five, five, five."), words=((end + 0.4, end + 0.9),))
    padded = replace(read, segments=(*read.segments, invented), text=f"{read.text} {invented.text}")
    completed = complete_transcript(faster_engine, clip.path, padded)
    assert completed.segments == read.segments and "One eight" not in completed.text
    # Words timed inside the speech stay, and so do untimed segments (their stamps are all there is).
    untimed = replace(invented, words=())
    assert (
        untimed
        in complete_transcript(faster_engine, clip.path, replace(read, segments=(*read.segments, untimed))).segments
    )
