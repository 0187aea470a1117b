"""The ConnectWise bridge against the stand-in: every ticket once, notes and statuses out, statuses back."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from integrations import bridge
from integrations.connectwise import ConfigError, ConnectWise, config_from, load_config
from integrations.psa import PsaError
from integrations.psa_models import PsaLink, PsaOperation
from runtime import Runtime
from tests.conftest import FixedClock
from tests.integrations.conftest import BOARD, CREDENTIALS, Bridge
from ticketing import lifecycle, portal, voicemail
from ticketing.audit import audit
from ticketing.db import transaction
from ticketing.models import AuditEntry, Client, Contact, Ticket
from ticketing.triage import Affected, TriageAnswers, triage


def _directory(runtime: Runtime) -> int:
    with transaction(runtime.sessions) as s:
        client = Client(name="Acme Dental", main_number="+18055550100")
        s.add(client)
        s.flush()
        contact = Contact(
            client=client, name="Dana Reyes", phone="+18055550123", email="dana@acme.example", primary=True
        )
        s.add(contact)
        s.flush()
        return contact.id


def _three_tickets(runtime: Runtime) -> dict[str, int]:
    """A voicemail (recording, then transcript), an email and a portal ticket, as the domain makes them."""
    contact_id = _directory(runtime)
    now = runtime.now()
    with transaction(runtime.sessions) as s:
        vm = voicemail.attach_recording(
            s,
            policy=runtime.policy,
            now=now,
            call_sid="CA" + "1" * 32,
            caller="+18055550123",
            recording_sid="RE" + "1" * 32,
            recording_url="https://api.twilio.com/recordings/RE1",
            duration=30,
            critical=False,
        )
        vm.transcript = "Hi, the front desk printer is jammed again."
        audit(s, vm, actor="transcriber", action="transcribed", now=now, detail={"language": "en"})
        mail = lifecycle.open_ticket(
            s,
            policy=runtime.policy,
            now=now,
            priority="P3",
            source="email",
            actor="email",
            summary="Printer offline",
            description="The printer in room 4 says offline.",
            requester_email="stranger@elsewhere.example",
        )
        contact = s.get(Contact, contact_id)
        assert contact is not None
        viewer = portal.PortalViewer(
            contact.id, contact.client_id, contact.name, "dana@acme.example", "Acme Dental", True
        )
        answers = TriageAnswers(affected=Affected.JUST_ME, workaround=True, deadline=False)
        web = portal.submit_portal_ticket(
            s,
            viewer,
            policy=runtime.policy,
            now=now,
            summary="New laptop for Sam",
            description="Sam starts Monday.",
            answers=answers,
            result=triage(answers),
        )
        return {"voicemail": vm.number, "email": mail.number, "portal": web.number}


def test_a_voicemail_an_email_and_a_portal_ticket_reach_connectwise_exactly_once(
    runtime: Runtime, connectwise: Bridge
) -> None:
    numbers = _three_tickets(runtime)
    done = bridge.sync(connectwise.psa)
    assert done["failed"] == 0
    created = connectwise.standin.created()
    assert sorted(t["summary"].split()[0] for t in created) == sorted(f"#{n}" for n in numbers.values())
    by_number = {int(t["summary"].split()[0][1:]): t for t in created}
    vm, mail, web = (by_number[numbers[k]] for k in ("voicemail", "email", "portal"))
    assert vm["company"]["id"] == 250 and vm["contactEmailAddress"] == "dana@acme.example"
    assert vm["contactPhoneNumber"] == "+18055550123" and vm["board"]["id"] == BOARD
    assert mail["company"]["id"] == 19297 and mail["contactEmailAddress"] == "stranger@elsewhere.example"
    assert mail["initialDescription"] == "The printer in room 4 says offline."
    assert web["company"]["id"] == 250
    notes = {t: [n["text"] for n in connectwise.standin.notes.get(by_number[numbers[t]]["id"], [])] for t in numbers}
    assert any("front desk printer is jammed" in n for n in notes["voicemail"])
    assert any(f"https://support.example.com/tickets/{numbers['voicemail']}" in n for n in notes["voicemail"])
    assert any(n.startswith("Portal triage answers:") for n in notes["portal"])
    # Running again (the sweeper does, every minute) sends nothing twice.
    bridge.sync(connectwise.psa)
    assert len(connectwise.standin.created()) == 3
    with runtime.sessions() as s:
        assert len(s.scalars(select(PsaLink)).all()) == 3


def test_a_failed_create_is_retried_with_backoff_and_never_makes_a_second_ticket(
    runtime: Runtime, connectwise: Bridge, clock: FixedClock
) -> None:
    numbers = _three_tickets(runtime)
    connectwise.standin.fail_next(503)
    first = bridge.sync(connectwise.psa, poll_changes=False)
    assert first["failed"] == 1
    with runtime.sessions() as s:
        waiting = s.scalars(
            select(PsaOperation).where(PsaOperation.state == "pending", PsaOperation.attempts == 1)
        ).all()
        assert [op.op for op in waiting] == ["create"] and "503" in (waiting[0].last_error or "")
    bridge.sync(connectwise.psa, poll_changes=False)  # not due yet: nothing more of that ticket is sent
    assert len(connectwise.standin.created()) == 2
    clock.advance(seconds=31)
    bridge.sync(connectwise.psa, poll_changes=False)
    assert len(connectwise.standin.created()) == 3
    assert {int(t["summary"].split()[0][1:]) for t in connectwise.standin.created()} == set(numbers.values())


def test_a_ticket_created_but_not_recorded_is_found_by_its_number_not_made_again(
    runtime: Runtime, connectwise: Bridge
) -> None:
    numbers = _three_tickets(runtime)
    bridge.sync(connectwise.psa, poll_changes=False)
    with transaction(runtime.sessions) as s:  # the job died after ConnectWise answered, before its commit
        for link in s.scalars(select(PsaLink)).all():
            s.delete(link)
        for op in s.scalars(select(PsaOperation).where(PsaOperation.op == "create")).all():
            op.state = "pending"
    bridge.sync(connectwise.psa, poll_changes=False)
    assert len(connectwise.standin.created()) == len(numbers)


def test_status_changes_go_out_and_come_back_audited(runtime: Runtime, connectwise: Bridge, clock: FixedClock) -> None:
    numbers = _three_tickets(runtime)
    bridge.sync(connectwise.psa)
    with transaction(runtime.sessions) as s:
        ticket = lifecycle.get_ticket(s, numbers["email"])
        lifecycle.set_status(s, ticket, "in progress", actor="alex", now=runtime.now(), policy=runtime.policy)
    bridge.sync(connectwise.psa)
    with runtime.sessions() as s:
        link = s.scalars(select(PsaLink).join(Ticket).where(Ticket.number == numbers["email"])).one()
        external = int(link.external_id)
    assert connectwise.standin.tickets[external]["status"]["name"] == "In Progress"
    clock.advance(minutes=5)
    connectwise.standin.set_status(external, "Resolved")  # a technician resolves it in ConnectWise
    bridge.sync(connectwise.psa)
    with runtime.sessions() as s:
        ticket = lifecycle.get_ticket(s, numbers["email"])
        assert ticket.status == "resolved"
        entry = s.scalars(
            select(AuditEntry).where(AuditEntry.ticket_id == ticket.id, AuditEntry.action == "status changed")
        ).all()[-1]
        assert entry.actor == "psa:connectwise" and entry.detail == {"from": "in progress", "to": "resolved"}
    # Our own audit entry of that change is never sent back to ConnectWise.
    patches = [r for r in connectwise.standin.requests if r[0] == "PATCH"]
    bridge.sync(connectwise.psa)
    assert [r for r in connectwise.standin.requests if r[0] == "PATCH"] == patches


def test_changes_are_read_across_pages_following_the_link_header(runtime: Runtime, connectwise: Bridge) -> None:
    for n in range(1, 251):
        connectwise.standin.tickets[n] = {
            "id": n,
            "summary": f"#{n} x",
            "board": {"id": BOARD},
            "status": {"id": 1, "name": "New"},
            "_info": {"lastUpdated": f"2026-11-0{1 + n % 9}T10:00:00Z"},
        }
    changes = connectwise.psa.changes_since(None)
    assert len(changes) == 250 and len({c.external_id for c in changes}) == 250
    assert [c.updated_at for c in changes] == sorted(c.updated_at for c in changes)
    pages = [r for r in connectwise.standin.requests if r[0] == "GET"]
    assert len(pages) == 3 and "page=3" in pages[-1][1]


def test_an_audit_entry_committed_late_with_a_lower_id_is_still_read(runtime: Runtime, connectwise: Bridge) -> None:
    numbers = _three_tickets(runtime)
    bridge.sync(connectwise.psa, poll_changes=False)
    with transaction(runtime.sessions) as s:
        ticket = lifecycle.get_ticket(s, numbers["email"])
        lifecycle.set_status(s, ticket, "acknowledged", actor="alex", now=runtime.now(), policy=runtime.policy)
        s.flush()
        late = s.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
        assert late is not None
        late_id = late.id
    # The cursor already read past it, as when a later id committed first.
    with transaction(runtime.sessions) as s:
        cursor = s.get(bridge.PsaCursor, "connectwise")
        assert cursor is not None
        cursor.high = late_id + 3
        cursor.seen = [i for i in cursor.seen if i != late_id]
    bridge.sync(connectwise.psa, poll_changes=False)
    with runtime.sessions() as s:
        assert s.scalar(select(PsaOperation).where(PsaOperation.key == f"{late_id}:status")) is not None
    link_ids = [t["id"] for t in connectwise.standin.created() if t["summary"].startswith(f"#{numbers['email']} ")]
    assert connectwise.standin.tickets[link_ids[0]]["status"]["name"] == "Acknowledged"


def test_refused_operations_become_dead_letters_shown_on_the_ticket_and_sent_again(
    runtime: Runtime, connectwise: Bridge
) -> None:
    numbers = _three_tickets(runtime)
    connectwise.standin.companies.pop(19297)  # the catch-all company was deleted in ConnectWise
    bridge.sync(connectwise.psa, poll_changes=False)
    with runtime.sessions() as s:
        dead = bridge.dead_letters(s, "connectwise")
        assert [(op.op, number) for op, number in dead] == [("create", numbers["email"])]
        assert "400 InvalidObject: ticket object is invalid; company company not found" in (dead[0][0].last_error or "")
        ticket = lifecycle.get_ticket(s, numbers["email"])
        assert [e.action for e in ticket.audit][-1] == "psa failed"
        op_id = dead[0][0].id
    connectwise.standin.companies[19297] = "Catchall"
    with transaction(runtime.sessions) as s:
        assert bridge.send_again(s, op_id, runtime.now()) is not None
        assert bridge.send_again(s, 999999, runtime.now()) is None
    bridge.sync(connectwise.psa, poll_changes=False)
    assert len(connectwise.standin.created()) == 3


def test_credentials_never_reach_the_logs(
    runtime: Runtime, connectwise: Bridge, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _three_tickets(runtime)
    connectwise.standin.fail_next(500, 502)
    bridge.sync(connectwise.psa)
    wrong = ConnectWise(
        config_from({**CREDENTIALS, "site": connectwise.standin.url, "board_id": BOARD, "private_key": "nope"})
    )
    with pytest.raises(PsaError) as refused:
        wrong.find_ticket(400001)
    assert refused.value.status == 401 and not refused.value.retry
    logging.getLogger("test").error("refused: %s; config %r", refused.value, connectwise.config)
    text = caplog.text + repr(connectwise.config) + str(refused.value)
    assert "ConnectWise" in caplog.text
    for secret in connectwise.config.secrets:
        assert secret not in text


def test_the_connectwise_file_is_checked(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "connectwise.toml"
    path.write_text(
        'site = "ftp://x"\ncompany = "c"\npublic_key = "p"\nprivate_key = "k"\nclient_id = "i"\nboard_id = 1\n'
    )
    with pytest.raises(ConfigError, match="site must be"):
        load_config(path)
    path.write_text(
        'site = "https://x"\ncompany = "c"\npublic_key = "p"\nprivate_key = ""\nclient_id = "i"\nboard_id = 1\n'
    )
    with pytest.raises(ConfigError, match="private_key is required"):
        load_config(path)
    with pytest.raises(ConfigError):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="unknown priorities P9"):
        config_from({**CREDENTIALS, "site": "https://x", "board_id": 1, "priorities": {"P9": 1}})


def test_an_unreachable_connectwise_is_a_retryable_failure(runtime: Runtime) -> None:
    psa = ConnectWise(config_from({**CREDENTIALS, "site": "http://127.0.0.1:9", "board_id": 1, "timeout": 2}))
    with pytest.raises(PsaError) as failed:
        psa.add_note("12", "hello")
    assert failed.value.retry and "ConnectionError" in str(failed.value)
    assert isinstance(requests.Session(), requests.Session)
    assert bridge.backoff(1) == timedelta(seconds=30) and bridge.backoff(20) == timedelta(hours=1)


def test_a_status_set_here_and_not_yet_sent_is_not_overwritten_by_an_older_connectwise_status(
    runtime: Runtime, connectwise: Bridge
) -> None:
    numbers = _three_tickets(runtime)
    bridge.sync(connectwise.psa)
    connectwise.standin.fail_next(503)  # our change waits for its next attempt
    with transaction(runtime.sessions) as s:
        ticket = lifecycle.get_ticket(s, numbers["email"])
        lifecycle.set_status(s, ticket, "acknowledged", actor="alex", now=runtime.now(), policy=runtime.policy)
    bridge.sync(connectwise.psa)
    with runtime.sessions() as s:
        assert lifecycle.get_ticket(s, numbers["email"]).status == "acknowledged"


def test_an_audit_entry_whose_transaction_commits_after_a_later_one_is_still_read(
    runtime: Runtime, connectwise: Bridge, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers: ids cannot commit out of order there")
    numbers = _three_tickets(runtime)
    bridge.sync(connectwise.psa, poll_changes=False)
    slow = runtime.sessions()
    slow.begin()
    early = lifecycle.get_ticket(slow, numbers["email"])
    lifecycle.set_status(slow, early, "acknowledged", actor="alex", now=runtime.now(), policy=runtime.policy)
    slow.flush()  # takes its audit id now, commits later
    with transaction(runtime.sessions) as s:
        later = lifecycle.get_ticket(s, numbers["portal"])
        lifecycle.set_status(s, later, "in progress", actor="alex", now=runtime.now(), policy=runtime.policy)
    bridge.sync(connectwise.psa, poll_changes=False)  # reads the later id; the earlier is not visible yet
    slow.commit()
    slow.close()
    bridge.sync(connectwise.psa, poll_changes=False)
    statuses = {int(t["summary"].split()[0][1:]): t["status"]["name"] for t in connectwise.standin.created()}
    assert statuses[numbers["email"]] == "Acknowledged" and statuses[numbers["portal"]] == "In Progress"
