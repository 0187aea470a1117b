"""A person's public reply or connected call back meets the first response; automatic notices never do."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from runtime import Runtime
from tests.conftest import FixedClock
from ticketing import conversation, lifecycle
from ticketing.db import transaction
from ticketing.errors import InvalidInput
from ticketing.models import Client, Contact, OutboxMessage, Status


def _open(runtime: Runtime, *, email: bool = True, source: str = "voicemail", summary: str = "Server down") -> int:
    with transaction(runtime.sessions) as s:
        if email and s.scalars(select(Contact).where(Contact.phone == "+18055550142")).first() is None:
            acme = Client(name="Acme Dental", main_number="+18055550100")
            s.add(Contact(client=acme, name="Dana Whitfield", phone="+18055550142", email="dana@acme.example"))
            s.flush()
        t = lifecycle.open_ticket(
            s,
            policy=runtime.policy,
            now=runtime.now(),
            priority="P3",
            source=source,
            actor="support line",
            caller_number="+18055550142" if email else "+18055550777",
            summary=summary,
        )
        return int(t.number or 0)


def _first_response_entries(runtime: Runtime, number: int) -> list[tuple[str, str | None, dict]]:
    with runtime.sessions() as s:
        t = lifecycle.get_ticket(s, number)
        return [(a.actor, a.reason, dict(a.detail)) for a in t.audit if a.action == "first response met"]


def test_an_email_reply_by_a_person_is_the_first_response_audited_with_who_and_how(
    runtime: Runtime, clock: FixedClock
) -> None:
    number = _open(runtime)
    clock.advance(minutes=7)
    with transaction(runtime.sessions) as s:
        t = lifecycle.get_ticket(s, number)
        message = conversation.reply_to_client(s, t, "We are looking at it now.", actor="Alex Rivera", now=clock())
        assert message.channel == "email"
    with runtime.sessions() as s:
        t = lifecycle.get_ticket(s, number)
        milestone = t.milestone("first_response")
        assert milestone.met_at == clock() and milestone.met_in_time is True
        assert t.status == Status.ACKNOWLEDGED.value
        statuses = [a.detail for a in t.audit if a.action == "status changed"]
        assert statuses == [{"from": "new", "to": "acknowledged", "via": "email"}]
        # No "we are working on your request" notice: the client has just read a person's reply.
        keys = s.scalars(select(OutboxMessage.key).where(OutboxMessage.key.like(f"notify:{number}:%"))).all()
        assert not [k for k in keys if ":first_response:" in k]
    ((actor, reason, detail),) = _first_response_entries(runtime, number)
    assert (actor, reason, detail["via"], detail["in_time"]) == (
        "Alex Rivera",
        "an email reply by Alex Rivera",
        "email",
        True,
    )


def test_a_text_message_reply_to_a_caller_without_email_is_the_first_response(
    runtime: Runtime, clock: FixedClock
) -> None:
    number = _open(runtime, email=False)
    with transaction(runtime.sessions) as s:
        message = conversation.reply_to_client(
            s, lifecycle.get_ticket(s, number), "Calling you at 3.", actor="Eli", now=clock()
        )
        assert message.channel == "sms"
    ((actor, reason, detail),) = _first_response_entries(runtime, number)
    assert (actor, reason, detail["via"]) == ("Eli", "a text message reply by Eli", "sms")


def test_automatic_notices_never_meet_the_first_response(runtime: Runtime, clock: FixedClock) -> None:
    number = _open(runtime)
    with transaction(runtime.sessions) as s:
        t = lifecycle.get_ticket(s, number)
        lifecycle.notify_client(s, t, "created", clock())  # the confirmation
        lifecycle.pause_sla(s, t, actor="support line", now=clock(), reason="Which printer?")  # the waiting notice
    with runtime.sessions() as s:
        t = lifecycle.get_ticket(s, number)
        assert t.milestone("first_response").met_at is None
        assert s.scalars(select(OutboxMessage.key).where(OutboxMessage.key.like(f"notify:{number}:%"))).all()
    assert _first_response_entries(runtime, number) == []


def test_a_later_reply_changes_nothing_and_a_waiting_ticket_keeps_waiting(runtime: Runtime, clock: FixedClock) -> None:
    number = _open(runtime)
    with transaction(runtime.sessions) as s:
        lifecycle.pause_sla(s, lifecycle.get_ticket(s, number), actor="Alex", now=clock(), reason="Which printer?")
    clock.advance(minutes=3)
    with transaction(runtime.sessions) as s:
        conversation.reply_to_client(s, lifecycle.get_ticket(s, number), "Any news?", actor="Alex", now=clock())
    first = clock()
    clock.advance(minutes=5)
    with transaction(runtime.sessions) as s:
        t = lifecycle.get_ticket(s, number)
        conversation.reply_to_client(s, t, "Second reply.", actor="Blake", now=clock())
        assert lifecycle.first_response_by_person(s, t, by="Blake", how="call back", now=clock()) is None
    with runtime.sessions() as s:
        t = lifecycle.get_ticket(s, number)
        assert t.milestone("first_response").met_at == first
        assert t.status == Status.WAITING_ON_CLIENT.value  # a reply does not end the wait
    assert [actor for actor, _, _ in _first_response_entries(runtime, number)] == ["Alex"]


def test_a_first_response_met_before_the_reply_keeps_its_author(runtime: Runtime, clock: FixedClock) -> None:
    number = _open(runtime)
    with transaction(runtime.sessions) as s:
        t = lifecycle.get_ticket(s, number)
        lifecycle.set_status(s, t, "in progress", actor="Dana", now=clock(), policy=runtime.policy)
    clock.advance(minutes=1)
    with transaction(runtime.sessions) as s:
        conversation.reply_to_client(s, lifecycle.get_ticket(s, number), "On it.", actor="Alex", now=clock())
    assert [actor for actor, _, _ in _first_response_entries(runtime, number)] == ["Dana"]
    with runtime.sessions() as s:
        assert lifecycle.get_ticket(s, number).status == Status.IN_PROGRESS.value


def test_a_connected_call_back_meets_it_and_an_ended_ticket_is_left_alone(runtime: Runtime, clock: FixedClock) -> None:
    number = _open(runtime)
    ended = _open(runtime)
    with transaction(runtime.sessions) as s:
        t = lifecycle.get_ticket(s, number)
        met = lifecycle.first_response_by_person(s, t, by="  Eli  ", how="call back", now=clock())
        assert met is not None and met.met_at == clock()
        done = lifecycle.get_ticket(s, ended)
        lifecycle.set_status(s, done, "resolved", actor="Dana", now=clock(), policy=runtime.policy)
    with transaction(runtime.sessions) as s:
        done = lifecycle.get_ticket(s, ended)
        before = len(done.audit)
        assert lifecycle.first_response_by_person(s, done, by="Eli", how="call back", now=clock()) is None
        assert len(done.audit) == before
    ((actor, reason, detail),) = _first_response_entries(runtime, number)
    assert (actor, reason, detail["via"]) == ("Eli", "a connected call back by Eli", "call back")


@pytest.mark.parametrize(
    ("by", "how", "error"),
    [("Eli", "carrier pigeon", "unknown way of responding"), ("", "email", "needs who"), (" \r\n", "sms", "needs who")],
)
def test_bad_input_is_refused_and_changes_nothing(
    runtime: Runtime, clock: FixedClock, by: str, how: str, error: str
) -> None:
    number = _open(runtime)
    with pytest.raises(InvalidInput, match=error), transaction(runtime.sessions) as s:
        lifecycle.first_response_by_person(s, lifecycle.get_ticket(s, number), by=by, how=how, now=clock())
    with runtime.sessions() as s:
        t = lifecycle.get_ticket(s, number)
        assert t.milestone("first_response").met_at is None and t.status == Status.NEW.value
