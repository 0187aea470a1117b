"""Triage hints from transcript text: summary, callback number, caller, priority, prompt."""

from __future__ import annotations

import pytest

from transcription.hints import (
    Caller,
    find_callback_number,
    find_caller,
    initial_prompt_for,
    suggest_priority,
    summarize,
    triage_hints,
)

CALLBACK_NUMBERS = [
    ("Please call me back at 805-555-0142. Thanks.", "+18055550142"),
    ("My number is (805) 555-0142.", "+18055550142"),
    ("call me at 805.555.0142", "+18055550142"),
    ("call me at 1 805 555 0142", "+18055550142"),
    ("my number is eight zero five, five five five, zero one four two", "+18055550142"),
    ("call me at eight oh five five five five oh one four two", "+18055550142"),
    ("reach me on 8-0-5, 5-5-5, 2-7-1-9.", "+18055552719"),
    ("it's eight oh five, five five five, twenty seven nineteen", "+18055552719"),
    ("my cell is double five five, one two one two", "5551212"),
    ("Can you call me Mac an 8-0-5-5-5-3-3-8-1?", None),  # nine digits: a digit was lost
    ("We have 3 printers and 12 laptops.", None),
    ("Oh, and the printer is out of toner.", None),
    ("", None),
    (
        "I'm at 805 555 9999 until noon, after that call me back at 805-555-0142.",
        "+18055550142",
    ),
]


@pytest.mark.parametrize(("text", "expected"), CALLBACK_NUMBERS)
def test_callback_numbers_are_read_from_digits_and_spoken_words(text: str, expected: str | None) -> None:
    assert find_callback_number(text) == expected


CALLERS = [
    ("Hi, this is Dana from Acme Dental, our server is down.", Caller("Dana", "Acme Dental")),
    ("Hello, it's Marcus Lee at Brightside Realty. I can't log in.", Caller("Marcus Lee", "Brightside Realty")),
    ("Hi, Sarah from Oak Street Pediatrics here. The Wi-Fi keeps dropping.", Caller("Sarah", "Oak Street Pediatrics")),
    ("This is Karen from Mesa Law Group. I deleted a folder.", Caller("Karen", "Mesa Law Group")),
    ("Hi, this is Priya with Harbor Veterinary Clinic.", Caller("Priya", "Harbor Veterinary Clinic")),
    ("My name is Tom Becker and we think we have ransomware.", Caller("Tom Becker", None)),
    ("Hey, Jordan here, the scheduling software won't open.", Caller("Jordan", None)),
    ("This is urgent, the whole office is down.", Caller(None, None)),
    ("the printer is jammed again", Caller(None, None)),
]


@pytest.mark.parametrize(("text", "expected"), CALLERS)
def test_callers_introducing_themselves_are_recognised(text: str, expected: Caller) -> None:
    assert find_caller(text) == expected


PRIORITIES = [
    ("Our server is down and nobody can work.", "P1", {"server down", "nobody can work"}),
    ("We think we have ransomware, there is a ransom note on the screen.", "P1", {"ransomware"}),
    ("I think we may have data loss, the client files are gone.", "P1", {"data loss"}),
    ("There may have been a breach, someone logged into my email from Russia.", "P1", {"breach"}),
    ("One of our staff clicked the link in a phishing email.", "P1", {"phishing"}),
    ("The internet is down for the whole office.", "P1", {"office down"}),
    ("Nobody can check in patients, the software won't open on any computer.", "P1", {"nobody can work"}),
    ("Please call us as soon as possible, payroll is due.", "P2", {"urgent"}),
    ("I can't log in to my email since this morning.", "P3", {"can't log in"}),
    ("The printer keeps crashing.", "P3", {"error"}),
    (
        "The printer is jammed and shows an error. It's not urgent, whenever someone has time.",
        "P4",
        {"error", "not urgent"},
    ),
    ("We need a new laptop set up for a new hire starting Monday.", "P4", {"request"}),
    ("Our server is down, but it's not urgent.", "P1", {"server down", "not urgent"}),
    ("Everyone can't log in and the whole office is unable to work.", "P1", {"nobody can work"}),
    ("Everyone can work again, thanks, the printer is fine now.", "P3", set()),
    ("Hi, just calling to say hello.", "P3", set()),
]


@pytest.mark.parametrize(("text", "priority", "cues"), PRIORITIES)
def test_urgency_cues_suggest_a_priority_and_say_why(text: str, priority: str, cues: set[str]) -> None:
    suggested, matched = suggest_priority(text)
    assert suggested == priority
    assert cues <= set(matched)


def test_not_urgent_does_not_count_as_urgent() -> None:
    _, cues = suggest_priority("It's not urgent.")
    assert "urgent" not in cues


SUMMARIES = [
    (
        "Hi, this is Dana from Acme Dental, our server is down and nobody can work. "
        "Please call me back at 805-555-0142. Thanks.",
        "Acme Dental: Our server is down and nobody can work",
    ),
    (
        "Yes, hello, this is Tom Becker from Coastal Accounting. We think we have ransomware. "
        "All the files on the shared drive have been renamed.",
        "Coastal Accounting: We think we have ransomware",
    ),
    ("The printer is jammed.", "The printer is jammed"),
    ("", "Voicemail (no speech transcribed)"),
]


@pytest.mark.parametrize(("text", "expected"), SUMMARIES)
def test_the_summary_is_the_first_sentence_about_the_problem(text: str, expected: str) -> None:
    assert summarize(text, organisation=find_caller(text).organisation) == expected


def test_a_long_summary_is_cut_at_a_word_within_80_characters() -> None:
    text = (
        "Hello, it's Marcus Lee at Brightside Realty. I can't log in to my email since this morning "
        "and it keeps saying my password is wrong even after I reset it twice."
    )
    summary = triage_hints(text).summary
    assert len(summary) <= 80
    assert summary.startswith("Brightside Realty: I can't log in to my email")
    assert summary.endswith("…")


def test_triage_hints_bring_everything_together() -> None:
    hints = triage_hints(
        "Hi, this is Dana from Acme Dental. Our server is down and nobody can work. "
        "Please call me back at eight zero five, five five five, zero one four two. Thanks."
    )
    assert hints.caller == Caller("Dana", "Acme Dental")
    assert hints.callback_number == "+18055550142"
    assert hints.priority == "P1"
    assert hints.summary == "Acme Dental: Our server is down and nobody can work"


INITIAL_PROMPTS = [
    (
        "Acme Dental",
        ["Dana Whitfield", "Raj Patel"],
        "Voicemail to the IT helpdesk from Acme Dental. Callers: Dana Whitfield, Raj Patel.",
    ),
    ("Acme Dental", [], "Voicemail to the IT helpdesk from Acme Dental."),
    ("", ["Dana Whitfield"], "Voicemail to the IT helpdesk. Callers: Dana Whitfield."),
    (
        "  Acme   Dental ",
        ["Dana  Whitfield", "Dana Whitfield", " "],
        "Voicemail to the IT helpdesk from Acme Dental. Callers: Dana Whitfield.",
    ),
    ("", [], ""),
]


@pytest.mark.parametrize(("client", "contacts", "expected"), INITIAL_PROMPTS)
def test_the_initial_prompt_names_the_client_and_its_contacts(client: str, contacts: list[str], expected: str) -> None:
    assert initial_prompt_for(client, contacts) == expected


def test_a_huge_contact_list_keeps_the_prompt_short() -> None:
    prompt = initial_prompt_for("Acme Dental", [f"Person Number{i}" for i in range(500)])
    assert len(prompt) <= 600
    assert "Person Number0" in prompt
