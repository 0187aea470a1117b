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


# --- the demo's voicemails, a number split by words, the callback number ---------------------------------------

DANA = "+18055550142"  # the demo's P1 caller (samples/voicemail.wav)


@pytest.mark.parametrize(
    ("shown", "other", "named"),
    [
        # samples/voicemail.wav: the first reading (shown), and the second, which agrees with its last digits.
        (
            "We open up them tomorrow. Please call me my cat 800 and 5500 and 50 50142.",
            "We open up Heaven tomorrow. Please call me my catate-hunry done. I'm 550 50142.",
            "800 and 5500 and 50 50142",
        ),
        # Both of the demo's tickets after the second reading, with the first reading beside them.
        (
            "Please call me at 800 and 5500 and 50 50188.",
            "Please call me at 805 150 50142.",
            "800 and 5500 and 50 50188",
        ),
        ("Call 805 and 555 0188, thanks.", None, "805 and 555 0188"),
    ],
)
def test_a_number_split_by_words_is_named_to_check(shown: str, other: str | None, named: str) -> None:
    check = check_numbers(shown, other, callback=DANA)
    assert check is not None
    assert check.unsure[0] == (named, "split by words: it may be one number or several")
    assert f"check {named} (split by words" in check.note


def test_the_first_readings_check_survives_the_second_reading_as_a_number_the_transcript_does_not_show() -> None:
    passes = [
        {"pass": "first", "text": "Please call me at 805 150 50142."},
        {"pass": "numbers", "text": "Please call me at 800 and 5500 and 50 50188."},
    ]
    first = ticket_number_check(passes[0]["text"], "first", passes[:1], DANA)
    assert first is not None and first.unsure == (("805 150 50142", "11 digits: no phone number has that many"),)
    second = ticket_number_check(passes[1]["text"], "numbers", passes, DANA)
    assert second is not None
    assert second.note == (
        "check 800 and 5500 and 50 50188 (split by words: it may be one number or several) against the recording; "
        "another reading heard 805 150 50142, which the transcript does not show"
    )


@pytest.mark.parametrize(
    "shown",
    [
        "Please call me at 805 150 50188. Thanks.",  # samples/printer.wav, both readings
        "Hi, my number is 805 5550, 188.",
    ],
)
def test_the_demo_printer_voicemail_is_never_a_silent_number(shown: str) -> None:
    check = check_numbers(shown, shown, callback="+18055550211")
    assert check is not None and check.unsure


def test_a_phone_number_that_is_not_the_callback_number_is_a_hint_to_check() -> None:
    check = check_numbers("It's Dana, call me on my cell at 805 555 0188.", callback=DANA)
    assert check is not None
    assert check.note == "check 805 555 0188 (not the callback number 805 555 0142) against the recording"
    # The callback number the caller keyed, or a number that is it (without the area code, or with the 1).
    for said in ("805 555 0188", "555 0188", "1 805 555 0188"):
        assert check_numbers(f"Call me at {said}.", callback="+18055550188;ext=12") is None
    # Ticket numbers and amounts are not phone numbers; two whole numbers an "or" apart are not split.
    assert check_numbers("Ticket 400127 and 250 dollars.", callback=DANA) is None
    assert check_numbers("Call 805 555 0142 or 805 555 0142.", callback=DANA) is None
    assert check_numbers("About ticket 400127 and 805 555 0142.", callback=DANA) is None


def test_the_callback_number_shown_first_is_the_keyed_one_then_the_caller_id_then_the_heard_one() -> None:
    from ticketing.phone import callback_of

    assert callback_of("+18055550188", "keyed", DANA, "+18055550199") == ("+18055550188", "keyed")
    assert callback_of(None, None, DANA, "+18055550199") == (DANA, "caller_id")
    assert callback_of(None, None, "anonymous", "+18055550199") == ("+18055550199", "heard")
    assert callback_of(None, None, None, "805 55") == (None, None)


def test_the_page_sms_says_the_numbers_in_the_message_may_be_misheard() -> None:
    from types import SimpleNamespace

    from ticketing.paging import content_of, follow_up_sms, page_sms

    shown = "Server down. Please call me at 800 and 5500 and 50 50188."
    ticket = SimpleNamespace(
        number=400127,
        client=None,
        caller_number=DANA,
        callback_number=None,
        callback_origin=None,
        hints={},
        transcript=shown,
        transcript_language="en",
        transcript_translation=None,
        transcript_low_confidence=False,
        transcript_missing=None,
        transcript_pass="numbers",
        transcript_passes=[
            {"pass": "first", "text": "Please call me at 805 150 50142."},
            {"pass": "numbers", "text": shown},
        ],
        language="en",
    )
    body = page_sms(content_of(ticket), "ITECH")  # type: ignore[arg-type]
    assert body.startswith(f"ITECH P1 CRITICAL: ticket #400127, unknown client, caller {DANA}. Reply 1")
    assert body.endswith(f'Message: "{shown}" (Numbers in it may be misheard: check them.)')
    ticket.callback_number, ticket.callback_origin = "+18055550188", "keyed"
    assert "caller +18055550188 (keyed by the caller)." in page_sms(content_of(ticket), "ITECH")  # type: ignore[arg-type]
    follow_up = follow_up_sms(content_of(ticket), acknowledged=False)  # type: ignore[arg-type]
    assert follow_up.endswith(" Call back +18055550188 (keyed by the caller). Reply 1 to acknowledge.")
    assert len(follow_up) <= 320


def test_a_check_the_second_reading_clears_is_cleared_in_the_history_with_why(runtime) -> None:  # type: ignore[no-untyped-def]
    from types import SimpleNamespace

    from sqlalchemy import select

    from ticketing import phone, voicemail
    from ticketing.db import transaction
    from ticketing.models import AuditEntry

    first = "Please call me back at 805 5550 well 8 8."
    second = SimpleNamespace(text="Please call me back at 805 555 0188.", segments=(), confidence=0.8,
                             low_confidence=False, missing=())  # fmt: skip
    with transaction(runtime.sessions) as s:
        t = voicemail.reach_voicemail(
            s, policy=runtime.policy, now=runtime.now(), call_sid="CA" + "1" * 32, caller=None, critical=False
        )
        t.transcript, t.transcript_pass, t.transcription_state = first, "first", "done"
        t.transcript_passes = [{"pass": "first", "text": first}]
        assert voicemail.audit_number_check(s, t, "", runtime.now())
        before = voicemail.numbers_of(t).note
        # The caller keyed the number on the call; the second reading writes it whole.
        voicemail.record_callback_number(s, t, "+18055550188", origin=phone.KEYED, now=runtime.now())
        voicemail.record_second_reading(
            s, t, second, record={"pass": "numbers", "text": second.text}, shown=True,
            hints=SimpleNamespace(summary="", callback_number="805 555 0188", caller=SimpleNamespace(name=None,
            organisation=None), priority=None, cues=()), seconds=1.0, now=runtime.now(),
        )  # fmt: skip
        assert voicemail.numbers_of(t) is None
        entries = s.scalars(select(AuditEntry).where(AuditEntry.ticket_id == t.id).order_by(AuditEntry.id)).all()
        cleared = [e for e in entries if e.action == "numbers to check cleared"]
        assert [e.detail["before"] for e in cleared] == [before]
        assert "second reading writes every number whole" in cleared[0].detail["why"]
        callback = next(e for e in entries if e.action == "callback number")
        assert callback.detail["number"] == "+18055550188" and callback.detail["origin"] == "keyed"
        with pytest.raises(ValueError):
            voicemail.record_callback_number(s, t, "+18055550199", origin=phone.HEARD, now=runtime.now())
