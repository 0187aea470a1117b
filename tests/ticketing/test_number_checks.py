"""Which numbers a ticket asks the coordinator to check against the recording (pure code).

The readings below are what the first pass and the second reading wrote for the number set's tuning
part (testing.corpus), in the benchmark run that chose these rules.
"""

from __future__ import annotations

import pytest

from ticketing.transcripts import NumberCheck, check_numbers, numbers_in, ticket_number_check


def test_numbers_are_the_digit_groups_a_transcript_writes() -> None:
    text = "Call 805 555 0188 about ticket 400127, extension 21, it's $250.50 or 3."
    assert numbers_in(text) == ("805 555 0188", "400127", "250")
    assert numbers_in("") == () and numbers_in(None) == ()


def test_two_readings_that_hear_a_number_differently_say_which_to_check() -> None:
    check = check_numbers(
        "Please call me back at 805 555 5018, thanks.", "Please call me back at 805 555 0188. Thanks."
    )
    assert check == NumberCheck((("805 555 5018", "another reading heard 805 555 0188"),), ("805 555 0188",))
    assert check.note == "check 805 555 5018 (another reading heard 805 555 0188) against the recording"


def test_numbers_sharing_one_doubt_are_listed_once() -> None:
    check = check_numbers("The invoice comes to 150 dollars, a quote 1100 and 80.", "can be 15 dollars, go to 180")
    assert check is not None
    assert check.note == "check 150, 1100 (another reading heard 180) against the recording"


def test_a_number_only_the_other_reading_heard_is_named() -> None:
    check = check_numbers(
        "Call me on a date near a time, triple time, I'm free one near a time today.",
        "Call me eight and 055559310, any time convey.",
    )
    assert check is not None and check.unsure == ()
    assert check.note == "another reading heard 055559310, which the transcript does not show"


@pytest.mark.parametrize(
    ("shown", "other"),
    [
        # The other reading lost the area code, or wrote the same digits without the caller's pauses.
        ("My number is area code 805 555 0142.", "My number in area Koneto 555 0142."),
        ("You can reach me on 805 555 0121.", "You can reach me on a 055550121."),
        ("It's Luis, my cell is 510 992 4376.", "It's Luis, my cell is 510992 for 376."),
        # ... or dropped one digit of it.
        ("Call me back on 805 555 0142.", "Call me back on 805550142."),
        # The other reading heard no number at all.
        ("It's Omar, call me back on 555 0188, please.", "It's Omar, call me, Mac, on time, time, time."),
        # Both heard the same.
        ("Number 400127", "Number 400127."),
    ],
)
def test_a_reading_that_lost_part_of_a_number_casts_no_doubt(shown: str, other: str) -> None:
    assert check_numbers(shown, other) is None


@pytest.mark.parametrize(
    ("shown", "unsure"),
    [
        # The decoder lost the number's end: lone digits follow it.
        ("Please call me Mac and 805 5550 well 8 8, thank.", ("805 5550", "stray digits follow it")),
        ("My number is 206 3335, well 8 2.", ("206 3335", "stray digits follow it")),
        # Too many digits for a phone number, or too few for a national one and too many for a local one.
        ("My direct line is 61984277038.", ("61984277038", "11 digits: no phone number has that many")),
        ("I'm at 714230988 call anytime.", ("714230988", "9 digits: no phone number has that many")),
    ],
)
def test_a_number_with_a_shape_no_caller_gives_is_checked_without_another_reading(
    shown: str, unsure: tuple[str, str]
) -> None:
    check = check_numbers(shown)
    assert check is not None and check.unsure == (unsure,)
    assert check.note == f"check {unsure[0]} ({unsure[1]}) against the recording"


@pytest.mark.parametrize(
    "shown",
    [
        "Call 1 805 555 0188 or 805 555 0100, ticket 400127, extension 213, it was 250 dollars 3 days ago.",
        "Ticket 400127 for 2 days now.",
        "Call me back on 18055550188.",
    ],
)
def test_whole_numbers_are_not_checked(shown: str) -> None:
    assert check_numbers(shown, shown) is None


def test_the_ticket_check_compares_the_shown_reading_with_the_other_until_someone_corrects_it() -> None:
    passes = [
        {"pass": "first", "text": "Call me back at 805 555 5018."},
        {"pass": "numbers", "text": "Call me back at 805 555 0188."},
    ]
    shown_first = ticket_number_check("Call me back at 805 555 5018.", "first", passes)
    assert shown_first is not None and shown_first.heard == ("805 555 0188",)
    shown_second = ticket_number_check("Call me back at 805 555 0188.", "numbers", passes)
    assert shown_second is not None and shown_second.heard == ("805 555 5018",)
    # A coordinator's correction is what the ticket says: nothing left to check.
    assert ticket_number_check("Call me back at 805 555 0188 (checked).", "first", passes) is None
    # Only one reading: nothing to compare with, and its numbers have a whole shape.
    assert ticket_number_check("Call me back at 805 555 5018.", "first", passes[:1]) is None
    # ... where one has a shape no caller gives, the first reading alone is enough to say so.
    stray = [{"pass": "first", "text": "Call me Mac and 805 5550 well 8 8."}]
    alone = ticket_number_check("Call me Mac and 805 5550 well 8 8.", "first", stray)
    assert alone is not None and alone.unsure == (("805 5550", "stray digits follow it"),)
    # A translation is not a reading of the English words.
    translated = [{"pass": "first", "text": "Llámeme al 805 555 5018."}, {"pass": "translation", "text": "Call 0188."}]
    assert ticket_number_check("Llámeme al 805 555 5018.", "first", translated) is None


def test_the_transcript_follow_up_sms_says_which_numbers_to_check() -> None:
    from types import SimpleNamespace

    from ticketing.paging import content_of, follow_up_sms

    shown = "Server down. Please call me Mac and 805 5550 well 8 8, thanks."
    ticket = SimpleNamespace(
        number=400127,
        client=None,
        caller_number=None,
        transcript=shown,
        transcript_language="en",
        transcript_translation=None,
        transcript_low_confidence=False,
        transcript_missing=None,
        transcript_pass="first",  # the first reading alone, as when the follow-up goes out
        transcript_passes=[{"pass": "first", "text": shown}],
    )
    body = follow_up_sms(content_of(ticket), acknowledged=False)  # type: ignore[arg-type]
    assert body == (
        f'Ticket #400127 transcript: "{shown}" (Check 805 5550 (stray digits follow it) against the recording.)'
        " Reply 1 to acknowledge."
    )


def test_a_digit_changed_or_two_dropped_is_a_disagreement() -> None:
    assert check_numbers("Call 805 555 0142.", "Call 805 555 0143.") is not None
    assert check_numbers("Call 805 555 0142.", "Call 80555042.") is not None  # two dropped: 8 digits
    check = check_numbers("Call 805 552 1019.", "Call 055 552 1019.")
    assert check is not None and check.unsure == (("805 552 1019", "another reading heard 055 552 1019"),)


def test_the_note_says_where_in_the_recording_a_number_was_said() -> None:
    check = check_numbers(
        "Please call me back at 805 555 5018, thanks.",
        "Please call me back at 805 555 0188. Thanks.",
        {"805 555 5018": (3.2, 7.9), "400127": (8.0, 9.0)},
    )
    assert check is not None and check.span("805 555 5018") == "0:03–0:08" and check.span("400127") == ""
    assert check.note == ("check 805 555 5018 at 0:03–0:08 (another reading heard 805 555 0188) against the recording")


def test_each_number_is_placed_in_the_segment_it_was_read_from() -> None:
    from transcription.engine import Segment, Transcript
    from transcription.pipeline import numbers_said_at

    def segment(start: float, end: float, text: str) -> Segment:
        return Segment(start, end, text, -0.3, 0.01, 1.2)

    transcript = Transcript(
        text="Hi, it's Dana. Call me on 805 555 0142. It's about ticket 400127.",
        segments=(
            segment(0.0, 2.1, " Hi, it's Dana."),
            segment(2.1, 6.4, " Call me on eight oh five, five five five, oh one four two."),
            segment(6.4, 9.0, " It's about ticket four zero zero one two seven."),
        ),
        language="en",
        audio_seconds=9.0,
        engine="faster-whisper",
        model="tiny.en",
        confidence=0.8,
        no_speech=False,
        low_confidence=False,
    )
    assert numbers_said_at(transcript) == {"805 555 0142": (2.1, 6.4), "400127": (6.4, 9.0)}
    passes = [{"pass": "first", "text": "Call me on 805 5550 well 8 8.", "numbers_at": {"805 5550": [2.1, 6.4]}}]
    check = ticket_number_check("Call me on 805 5550 well 8 8.", "first", passes)
    assert (
        check is not None and check.note == "check 805 5550 at 0:02–0:07 (stray digits follow it) against the recording"
    )


def test_the_numbers_sms_fits_two_segments_however_many_numbers_are_in_doubt() -> None:
    from ticketing.paging import SMS_LIMIT, PageContent, numbers_sms

    check = check_numbers(" ".join(f"Call {n}55 5550 well 8 8." for n in range(100, 130)))
    assert check is not None and len(check.note) > SMS_LIMIT
    url = "https://support.example/tickets/400127"
    content = PageContent(ticket=400127, client="Acme", caller=None, transcript="", ticket_url=url, numbers=check.note)
    body = numbers_sms(content, acknowledged=False)
    assert len(body) <= SMS_LIMIT and body.startswith("Ticket #400127: the transcript's numbers may be misheard. Check")
    assert body.endswith(f". Reply 1 to acknowledge. {url}")
