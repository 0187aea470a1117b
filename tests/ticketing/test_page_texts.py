"""What a page says (SMS, follow-up, TwiML) and which replies count as an acknowledgement."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from ivr.paging import connect_caller, page_prompt, page_voicemail
from ticketing.paging import PageContent, follow_up_sms, page_sms, parse_ack, shorten

CONTENT = PageContent(ticket=400127, client="Acme Dental", caller="+18055550142", transcript=None)
LONG = "Hi, this is Dana from Acme Dental. Our file server is down and nobody in the office can work. " * 8


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("1", (True, None)),
        ("ack", (True, None)),
        ("ACK", (True, None)),
        ("ACK 400127", (True, 400127)),
        ("ack #400127", (True, 400127)),
        (" Acknowledge ", (True, None)),
        ("12", (False, None)),
        ("yes", (False, None)),
        ("back at 5", (False, None)),
        ("", (False, None)),
    ],
)
def test_an_ack_is_1_or_ack_with_an_optional_ticket_number_in_any_case(
    body: str, expected: tuple[bool, int | None]
) -> None:
    assert parse_ack(body) == expected


def test_the_page_sms_names_ticket_client_and_caller_and_says_reply_1() -> None:
    assert page_sms(CONTENT, "ITECH Solutions") == (
        "ITECH Solutions P1 CRITICAL: ticket #400127, Acme Dental, caller +18055550142. Reply 1 to acknowledge."
    )


def test_the_page_sms_links_to_the_ticket_in_the_console() -> None:
    content = PageContent(
        400127, "Acme Dental", "+18055550142", LONG, ticket_url="https://support.example.com/tickets/400127"
    )
    body = page_sms(content, "ITECH Solutions")
    assert "Reply 1 to acknowledge. https://support.example.com/tickets/400127" in body
    assert len(body) <= 320 and 'Message: "Hi, this is Dana' in body


def test_a_page_after_the_transcript_carries_it_within_two_sms_segments() -> None:
    body = page_sms(PageContent(400127, "Acme Dental", None, LONG), "ITECH Solutions")

    assert len(body) <= 320
    assert "caller number withheld" in body and 'Message: "Hi, this is Dana' in body


def test_the_follow_up_is_shortened_at_a_sentence_and_says_reply_1_until_acknowledged() -> None:
    content = PageContent(400127, "Acme Dental", None, LONG, low_confidence=True)

    open_ = follow_up_sms(content, acknowledged=False)
    done = follow_up_sms(content, acknowledged=True)

    assert len(open_) <= 300 and open_.endswith("Reply 1 to acknowledge.")
    assert open_.startswith('Ticket #400127 transcript (low confidence): "Hi, this is Dana')
    assert '. …" Reply 1 to acknowledge.' in open_  # cut after a whole sentence
    assert "Reply 1" not in done


def test_the_follow_up_says_when_part_of_the_message_may_be_missing() -> None:
    content = PageContent(
        400127, "Acme Dental", None, LONG, missing="part of the message may be missing: listen to 0:08–0:16"
    )
    body = follow_up_sms(content, acknowledged=False)
    assert len(body) <= 300 and "(Part of the message may be missing: listen to 0:08–0:16.)" in body
    assert body.endswith("Reply 1 to acknowledge.")


def test_shorten_keeps_short_text_and_cuts_long_words_cleanly() -> None:
    assert shorten("  server\n down  ", 50) == "server down"
    assert shorten("word " * 30, 40).endswith("word…")
    assert len(shorten("x" * 100, 40)) == 40


def test_the_page_call_reads_the_page_then_offers_1_to_acknowledge_and_2_to_connect() -> None:
    root = ET.fromstring(
        str(
            page_prompt(CONTENT, company="ITECH Solutions", key_action="https://x/key", again="https://x/call?repeat=2")
        )
    )

    gather = root.find("Gather")
    assert gather is not None and gather.get("numDigits") == "1" and gather.get("action") == "https://x/key"
    said = [s.text for s in gather.iter("Say")]
    assert said[0] is not None and "Ticket 4 0 0 1 2 7. Client: Acme Dental. Caller: 8 0 5, 5 5 5, 0 1 4 2." in said[0]
    assert said[1] == "Press 1 to acknowledge. Press 2 to be connected to the caller now."
    assert root.find("Redirect") is not None


def test_a_machine_hears_a_short_message_and_no_menu() -> None:
    root = ET.fromstring(str(page_voicemail(CONTENT, company="ITECH Solutions")))

    assert root.find("Gather") is None and root.find("Hangup") is not None


def test_connecting_dials_the_caller_from_the_support_number() -> None:
    root = ET.fromstring(str(connect_caller("+18055550142", caller_id="+18055922500", action="https://x/connected")))

    dial = root.find("Dial")
    assert dial is not None and dial.get("callerId") == "+18055922500" and dial.get("action") == "https://x/connected"
    assert [n.text for n in dial.iter("Number")] == ["+18055550142"]
    withheld = ET.fromstring(str(connect_caller(None, caller_id="+18055922500", action="https://x")))
    assert withheld.find("Dial") is None
