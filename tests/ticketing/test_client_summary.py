"""What the client sees a ticket is about: never a voicemail's transcript, until a person writes it; audited."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from languages import translator
from runtime import Runtime
from tests.conftest import FixedClock
from ticketing import conversation, lifecycle, summaries
from ticketing.db import transaction
from ticketing.errors import InvalidInput
from ticketing.models import Client, Contact, TicketMessage

MISHEARD = "Our file firm are in town"


def _voicemail(
    runtime: Runtime, *, caller: str | None = "+18055550142", recording: bool = True, language: str = "en"
) -> int:
    with transaction(runtime.sessions) as s:
        if s.scalars(select(Contact).where(Contact.phone == "+18055550142")).first() is None:
            acme = Client(name="Acme Dental", main_number="+18055550100")
            s.add(Contact(client=acme, name="Dana Whitfield", phone="+18055550142", email="dana@acme.example"))
            s.flush()
        t = lifecycle.open_ticket(
            s,
            policy=runtime.policy,
            now=runtime.now(),
            priority="P3",
            source="voicemail",
            actor="support line",
            caller_number=caller,
            summary=MISHEARD,
        )
        t.language = language
        t.transcript = f"Hi, this is Dana. {MISHEARD}. Please call back."
        if recording:
            t.recording_sid = f"RE{t.number}"
        return int(t.number or 0)


def _summary(runtime: Runtime, number: int, language: str = "en") -> str:
    with runtime.sessions() as s:
        t = lifecycle.get_ticket(s, number)
        return summaries.client_summary(t, tz=runtime.policy.timezone, translate=translator(language))


def test_a_voicemail_is_a_neutral_line_in_the_policy_time_zone_never_the_transcript(runtime: Runtime) -> None:
    number = _voicemail(runtime)
    assert _summary(runtime, number) == "Voicemail from (805) 555-0142, Wed 10:00"
    with runtime.sessions() as s:
        t = lifecycle.get_ticket(s, number)
        assert not summaries.by_person(t)
        assert t.summary == MISHEARD  # the coordinators still read the recogniser's line


def test_the_neutral_line_is_in_the_ticket_language(runtime: Runtime) -> None:
    number = _voicemail(runtime, language="es")
    assert _summary(runtime, number, "es") == "Mensaje de voz de (805) 555-0142, mié 10:00"


@pytest.mark.parametrize(
    ("caller", "recording", "expected"),
    [
        ("anonymous", True, "Voicemail, Wed 10:00"),
        (None, False, "Call, Wed 10:00"),
        ("+18055550142", False, "Call from (805) 555-0142, Wed 10:00"),
        ("+442079460958", True, "Voicemail from +44 20 7946 0958, Wed 10:00"),
    ],
)
def test_withheld_numbers_missed_calls_and_numbers_abroad(
    runtime: Runtime, caller: str | None, recording: bool, expected: str
) -> None:
    assert _summary(runtime, _voicemail(runtime, caller=caller, recording=recording)) == expected


def test_email_and_portal_tickets_keep_the_client_subject_on_one_line(runtime: Runtime) -> None:
    with transaction(runtime.sessions) as s:
        numbers = [
            lifecycle.open_ticket(
                s,
                policy=runtime.policy,
                now=runtime.now(),
                priority="P3",
                source=source,
                actor="x",
                summary="Printer offline\r\nagain",
            ).number
            for source in ("email", "portal", "manual")
        ]
        s.flush()
        for n in numbers:
            lifecycle.get_ticket(s, n).summary = "Printer offline\r\nagain"  # as stored before summaries were one line
    assert [_summary(runtime, int(n or 0)) for n in numbers] == ["Printer offline again"] * 3


def test_a_person_writes_the_client_summary_audited_and_can_take_it_back(runtime: Runtime, clock: FixedClock) -> None:
    number = _voicemail(runtime)
    with transaction(runtime.sessions) as s:
        t = lifecycle.get_ticket(s, number)
        assert summaries.write_client_summary(s, t, "  Our file server\r\nis down ", actor="Dana", now=clock()) == (
            "Our file server is down"
        )
    assert _summary(runtime, number) == "Our file server is down"
    clock.advance(minutes=1)
    with transaction(runtime.sessions) as s:
        summaries.write_client_summary(s, lifecycle.get_ticket(s, number), "", actor="Eli", now=clock())
    assert _summary(runtime, number) == "Voicemail from (805) 555-0142, Wed 10:00"
    with runtime.sessions() as s:
        entries = [
            (a.actor, a.action, a.detail) for a in lifecycle.get_ticket(s, number).audit if "client summary" in a.action
        ]
    assert entries == [
        ("Dana", "client summary written", {"from": None, "to": "Our file server is down"}),
        ("Eli", "client summary removed", {"from": "Our file server is down", "to": None}),
    ]


@pytest.mark.parametrize(
    ("text", "error"),
    [("x" * 201, "at most 200"), ("", "no client summary to remove"), (" \r\n\t", "no client summary to remove")],
)
def test_bad_client_summaries_are_refused_and_change_nothing(
    runtime: Runtime, clock: FixedClock, text: str, error: str
) -> None:
    number = _voicemail(runtime)
    with pytest.raises(InvalidInput, match=error), transaction(runtime.sessions) as s:
        summaries.write_client_summary(s, lifecycle.get_ticket(s, number), text, actor="Dana", now=clock())
    with runtime.sessions() as s:
        t = lifecycle.get_ticket(s, number)
        assert t.client_summary is None and not [a for a in t.audit if "client summary" in a.action]


def test_an_unchanged_client_summary_is_refused(runtime: Runtime, clock: FixedClock) -> None:
    number = _voicemail(runtime)
    with transaction(runtime.sessions) as s:
        summaries.write_client_summary(s, lifecycle.get_ticket(s, number), "Server down", actor="Dana", now=clock())
    with pytest.raises(InvalidInput, match="unchanged"), transaction(runtime.sessions) as s:
        summaries.write_client_summary(s, lifecycle.get_ticket(s, number), "Server down\n", actor="Dana", now=clock())


def test_a_reply_subject_and_a_follow_up_never_carry_the_transcript(runtime: Runtime, clock: FixedClock) -> None:
    number = _voicemail(runtime)
    with transaction(runtime.sessions) as s:
        t = lifecycle.get_ticket(s, number)
        reply = conversation.reply_to_client(s, t, "On it.", actor="Alex", now=clock(), tz=runtime.policy.timezone)
        assert reply.subject == f"[#{number}] Re: Voicemail from (805) 555-0142, Wed 10:00"
        lifecycle.set_status(s, t, "resolved", actor="Alex", now=clock(), policy=runtime.policy)
    clock.advance(days=30)
    with transaction(runtime.sessions) as s:
        landing = conversation.add_client_message(
            s,
            lifecycle.get_ticket(s, number),
            body="It broke again.",
            author="Dana",
            now=clock(),
            policy=runtime.policy,
            subject=f"Re: [#{number}]",
        )
        assert landing.follow_up_of == number
        follow_up = landing.ticket.number
    assert MISHEARD not in _summary(runtime, int(follow_up or 0))
    with runtime.sessions() as s:
        subjects = s.scalars(select(TicketMessage.subject).where(TicketMessage.direction == "out")).all()
    assert subjects and not [x for x in subjects if MISHEARD in x]
