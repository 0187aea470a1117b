"""The ticket store on SQLite and PostgreSQL: numbers, queue order, audit, SLA clocks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError

from runtime import Runtime
from tests.conftest import FixedClock, pacific
from ticketing import lifecycle, queue
from ticketing.db import transaction
from ticketing.errors import InvalidInput, InvalidTransition, UnknownTicket
from ticketing.models import AuditEntry, Client, Contact, Ticket


def open_(rt: Runtime, priority: str = "P3", **kw: object) -> int:
    with transaction(rt.sessions) as s:
        t = lifecycle.open_ticket(
            s,
            policy=rt.policy,
            now=rt.now(),
            priority=priority,
            source=kw.pop("source", "voicemail"),
            actor="test",
            **kw,  # type: ignore[arg-type]
        )
        assert t.number is not None
        return t.number


def test_migrations_create_every_table(runtime: Runtime) -> None:
    names = set(inspect(runtime.engine).get_table_names())
    assert {"tickets", "milestones", "audit_log", "clients", "contacts", "sla_pauses", "outbox", "call_events"} <= names


def test_ticket_numbers_are_unique_increasing_digits_of_at_least_six(runtime: Runtime) -> None:
    numbers = [open_(runtime, summary=f"t{i}") for i in range(5)]
    assert numbers == sorted(set(numbers))
    assert all(str(n).isdigit() and len(str(n)) >= 6 for n in numbers)


def test_a_caller_id_resolves_to_the_client_and_contact(runtime: Runtime) -> None:
    with transaction(runtime.sessions) as s:
        acme = Client(name="Acme Dental", main_number="+18055550100")
        s.add(Contact(client=acme, name="Dana", phone="+18055550142", email="dana@example.com"))
    number = open_(runtime, caller_number="(805) 555-0142")
    number_main = open_(runtime, caller_number="805-555-0100")
    unknown = open_(runtime, caller_number="+14155550000")
    with runtime.sessions() as s:
        t = lifecycle.get_ticket(s, number)
        assert (t.caller_number, t.client.name, t.contact.name) == ("+18055550142", "Acme Dental", "Dana")
        assert lifecycle.get_ticket(s, number_main).client.name == "Acme Dental"
        assert lifecycle.get_ticket(s, unknown).client is None


def test_the_open_queue_is_first_come_first_served_within_priority(runtime: Runtime, clock: FixedClock) -> None:
    order = []
    for prio in ["P3", "P1", "P4", "P3", "P1"]:
        order.append((prio, open_(runtime, prio)))
        clock.advance(minutes=1)
    with runtime.sessions() as s:
        listed = [(t.priority, t.number) for t in queue.open_queue(s)]
    assert listed == sorted(order, key=lambda pn: (pn[0], pn[1]))


def test_opening_a_ticket_sets_its_sla_due_times_and_audits_it(runtime: Runtime) -> None:
    number = open_(runtime, "P2", summary="server down")
    with runtime.sessions() as s:
        t = lifecycle.get_ticket(s, number)
        due = {m.name: m.due_at.astimezone(runtime.policy.timezone).strftime("%m-%d %H:%M") for m in t.milestones}
        assert due == {"first_response": "11-18 10:12", "resolution_plan": "11-18 17:00", "resolved": "11-19 09:00"}
        assert [(a.action, a.actor) for a in t.audit] == [("created", "test")]
        assert t.opened_at.tzinfo is not None


def test_a_priority_change_recomputes_due_times_and_is_audited_with_its_reason(
    runtime: Runtime, clock: FixedClock
) -> None:
    number = open_(runtime, "P3")
    clock.advance(minutes=30)
    with transaction(runtime.sessions) as s:
        t = lifecycle.get_ticket(s, number)
        lifecycle.change_priority(
            s, t, "P1", reason="whole office down", actor="dana", now=runtime.now(), policy=runtime.policy
        )
    with runtime.sessions() as s:
        t = lifecycle.get_ticket(s, number)
        assert t.milestone("resolved").due_at == pacific("2026-11-18 14:00")
        entry = t.audit[-1]
        assert (entry.action, entry.actor, entry.reason, entry.detail["from"], entry.detail["to"]) == (
            "priority changed",
            "dana",
            "whole office down",
            "P3",
            "P1",
        )


@pytest.mark.parametrize("bad", [("P9", "x"), ("P1", "  ")])
def test_a_bad_priority_change_changes_nothing(runtime: Runtime, bad: tuple[str, str]) -> None:
    number = open_(runtime, "P3")
    with pytest.raises((InvalidInput, ValueError)):
        with transaction(runtime.sessions) as s:
            t = lifecycle.get_ticket(s, number)
            lifecycle.change_priority(s, t, bad[0], reason=bad[1], actor="x", now=runtime.now(), policy=runtime.policy)
    with runtime.sessions() as s:
        t = lifecycle.get_ticket(s, number)
        assert t.priority == "P3" and len(t.audit) == 1


def test_waiting_on_client_pauses_clocks_and_resuming_pushes_them_out(runtime: Runtime, clock: FixedClock) -> None:
    clock.set("2026-11-25 09:00")
    number = open_(runtime, "P3")
    clock.set("2026-11-25 10:00")
    with transaction(runtime.sessions) as s:
        t = lifecycle.get_ticket(s, number)
        lifecycle.set_status(s, t, "in progress", actor="eng", now=runtime.now(), policy=runtime.policy)
        lifecycle.set_status(
            s, t, "waiting on client", actor="eng", now=runtime.now(), policy=runtime.policy, reason="asked for logs"
        )
    with runtime.sessions() as s:
        t = lifecycle.get_ticket(s, number)
        assert t.paused_at is not None and t.status == "waiting on client"
        clock.set("2026-11-30 09:00")
        # Waiting on the client, its clocks are not reported as breaching; only the first response, met an
        # hour late, stays breached.
        listed = queue.breaching(s, runtime.now(), timedelta(days=30))
        assert [(t.number, m.name) for t, m in listed] == [(number, "first_response")]
    with transaction(runtime.sessions) as s:
        t = lifecycle.get_ticket(s, number)
        lifecycle.set_status(s, t, "in progress", actor="eng", now=runtime.now(), policy=runtime.policy)
    with runtime.sessions() as s:
        t = lifecycle.get_ticket(s, number)
        assert t.milestone("resolved").due_at == pacific("2026-12-02 14:00")
        assert t.milestone("first_response").met_at == pacific("2026-11-25 10:00")
        assert [a.action for a in t.audit] == [
            "created",
            "first response met",
            "status changed",
            "waiting on client",
            "resumed",
        ]


def test_resolution_plan_needs_an_estimate_and_resolving_meets_the_milestones(
    runtime: Runtime, clock: FixedClock
) -> None:
    number = open_(runtime, "P2")
    clock.advance(minutes=5)
    with pytest.raises(InvalidInput, match="estimated resolution"):
        with transaction(runtime.sessions) as s:
            lifecycle.meet_milestone(
                s, lifecycle.get_ticket(s, number), "resolution_plan", actor="e", now=runtime.now()
            )
    with transaction(runtime.sessions) as s:
        t = lifecycle.get_ticket(s, number)
        lifecycle.meet_milestone(
            s, t, "resolution_plan", actor="e", now=runtime.now(), estimate=runtime.now() + timedelta(hours=3)
        )
        clock.advance(hours=33)
        lifecycle.set_status(s, t, "resolved", actor="e", now=runtime.now(), policy=runtime.policy)
    with runtime.sessions() as s:
        t = lifecycle.get_ticket(s, number)
        met = {m.name: m.met_in_time for m in t.milestones}
        assert met == {"first_response": True, "resolution_plan": True, "resolved": False}
        assert queue.open_queue(s) == []


def test_breach_query_finds_tickets_breached_or_within_n_minutes(runtime: Runtime, clock: FixedClock) -> None:
    p1 = open_(runtime, "P1")
    p4 = open_(runtime, "P4")
    clock.advance(minutes=5)
    with runtime.sessions() as s:
        soon = queue.breaching(s, runtime.now(), timedelta(minutes=10))
        assert {(t.number, m.name) for t, m in soon} == {(p1, "first_response"), (p4, "first_response")}
        assert queue.breaching(s, runtime.now(), timedelta(minutes=1)) == []
        clock.advance(minutes=10)
        late = queue.breaching(s, runtime.now(), timedelta(0))
        assert {(t.number, m.name) for t, m in late} == {(p1, "first_response"), (p4, "first_response")}


def test_the_audit_log_is_append_only_history(runtime: Runtime) -> None:
    number = open_(runtime, "P3")
    with transaction(runtime.sessions) as s:
        t = lifecycle.get_ticket(s, number)
        lifecycle.add_note(s, t, "called back, no answer", actor="coord", now=runtime.now())
        lifecycle.assign(s, t, "sam", actor="coord", now=runtime.now())
    with runtime.sessions() as s:
        rows = s.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        assert [(r.action, r.actor) for r in rows] == [("created", "test"), ("note", "coord"), ("assigned", "coord")]


def test_unknown_ticket_numbers_are_a_clear_error(runtime: Runtime) -> None:
    with runtime.sessions() as s:
        with pytest.raises(UnknownTicket):
            lifecycle.get_ticket(s, 999999)
        with pytest.raises(UnknownTicket):
            lifecycle.get_ticket(s, "12ab")


def test_closed_tickets_cannot_change(runtime: Runtime) -> None:
    number = open_(runtime, "P3")
    with transaction(runtime.sessions) as s:
        t = lifecycle.get_ticket(s, number)
        lifecycle.set_status(s, t, "closed", actor="c", now=runtime.now(), policy=runtime.policy, reason="duplicate")
    with pytest.raises(InvalidTransition):
        with transaction(runtime.sessions) as s:
            lifecycle.set_status(
                s, lifecycle.get_ticket(s, number), "in progress", actor="c", now=runtime.now(), policy=runtime.policy
            )


def test_a_voicemail_call_sid_is_unique(runtime: Runtime) -> None:
    open_(runtime, call_sid="CA" + "1" * 32)
    with pytest.raises(IntegrityError):
        open_(runtime, call_sid="CA" + "1" * 32)
    with runtime.sessions() as s:
        assert len(s.scalars(select(Ticket)).all()) == 1


def test_a_recording_attached_by_a_concurrent_callback_is_audited_once(runtime: Runtime) -> None:
    """Callback B read the ticket before callback A committed the recording, and writes after: one audit row."""
    from ticketing import voicemail

    call, recording = "CA" + "7" * 32, "RE" + "7" * 32
    kw = {"policy": runtime.policy, "call_sid": call, "caller": "+18055550142", "critical": False}
    rec = {"recording_sid": recording, "recording_url": "https://api.twilio.com/r", "duration": 9}
    with transaction(runtime.sessions) as s:
        voicemail.reach_voicemail(s, now=runtime.now(), **kw)  # type: ignore[arg-type]
    with runtime.sessions() as b, b.begin():
        early = voicemail.ticket_for_call(b, call)
        assert early is not None and early.recording_sid is None
        with transaction(runtime.sessions) as a:
            voicemail.attach_recording(a, now=runtime.now(), **kw, **rec)  # type: ignore[arg-type]
        voicemail.attach_recording(b, now=runtime.now(), **kw, **rec)  # type: ignore[arg-type]
    with runtime.sessions() as s:
        ticket = s.scalars(select(Ticket).where(Ticket.call_sid == call)).one()
        actions = [e.action for e in ticket.audit]
    assert actions.count("recording attached") == 1, actions
    assert "extra recording" not in actions
