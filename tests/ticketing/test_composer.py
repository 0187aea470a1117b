"""The composer's rule in the domain, on SQLite and PostgreSQL: a message and a status change in one action, the
client told at most once; withdrawing a job recorded in the same transaction; who a ticket may be assigned to."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from runtime import Runtime
from ticketing import accounts, conversation, lifecycle, outbox
from ticketing.db import transaction
from ticketing.errors import InvalidInput, InvalidTransition
from ticketing.models import AuditEntry, Client, Contact, OutboxMessage, Ticket, User


def _email_ticket(rt: Runtime) -> int:
    with transaction(rt.sessions) as s:
        client = Client(name="Acme Dental", main_number="+18055550100")
        contact = Contact(client=client, name="Dana Whitfield", email="dana@acme-dental.example")
        s.add_all([client, contact])
        s.flush()
        t = lifecycle.open_ticket(
            s,
            policy=rt.policy,
            now=rt.now(),
            priority="P3",
            source="email",
            actor="test",
            summary="Printer offline",
            client_id=client.id,
            contact_id=contact.id,
            notify=False,
        )
        return int(t.number or 0)


def _compose(rt: Runtime, number: int, text: str, *, public: bool, then: str) -> conversation.Composed:
    with transaction(rt.sessions) as s:
        t = lifecycle.get_ticket(s, number, for_update=True)
        return conversation.compose(
            s, t, text, public=public, then=then, actor="Dana Reyes", now=rt.now(), policy=rt.policy
        )


def _jobs(rt: Runtime) -> list[str]:
    with rt.sessions() as s:
        return list(s.scalars(select(OutboxMessage.key).order_by(OutboxMessage.id)))


def test_a_reply_that_waits_on_the_client_queues_the_reply_alone(runtime: Runtime) -> None:
    number = _email_ticket(runtime)
    done = _compose(runtime, number, "Which model is it?", public=True, then="waiting")
    assert done.status == "waiting on client" and done.reply is not None
    assert _jobs(runtime) == [f"deliver:{done.reply.id}"]
    with runtime.sessions() as s:
        actions = [a.action for a in s.scalars(select(AuditEntry).order_by(AuditEntry.id))]
        replied = actions.index(
            "reply to client"
        )  # the first response (new -> acknowledged), then the status asked for
        assert actions[replied:] == ["reply to client", "first response met", "status changed", "waiting on client"]


@pytest.mark.parametrize("then", ["waiting", "resolved"])
def test_a_note_with_a_status_change_tells_the_client_nothing(runtime: Runtime, then: str) -> None:
    number = _email_ticket(runtime)
    done = _compose(runtime, number, "On site tomorrow", public=False, then=then)
    assert done.reply is None and done.status == {"waiting": "waiting on client", "resolved": "resolved"}[then]
    assert _jobs(runtime) == []


def test_a_refused_composition_leaves_the_ticket_as_it_was(runtime: Runtime) -> None:
    number = _email_ticket(runtime)
    _compose(runtime, number, "asked", public=False, then="waiting")
    for text, public, then, error in (
        ("again", True, "waiting", InvalidTransition),  # already waiting: the reply is rolled back too
        ("hello", True, "closed", InvalidInput),
        ("  ", False, "keep", InvalidInput),
    ):
        with pytest.raises(error):
            _compose(runtime, number, text, public=public, then=then)
    assert _jobs(runtime) == []
    with runtime.sessions() as s:
        assert s.scalars(select(Ticket.status)).one() == "waiting on client"
        assert [a.action for a in s.scalars(select(AuditEntry))].count("reply to client") == 0


def test_a_job_withdrawn_after_a_flush_is_never_stored(runtime: Runtime) -> None:
    with transaction(runtime.sessions) as s:
        outbox.post(s, outbox.NOTIFY, "notify:1:waiting:1", {"ticket": 1}, runtime.now())
        (message,) = outbox.written(s)
        s.flush()
        outbox.withdraw(s, message)
        assert outbox.written(s) == []
    assert _jobs(runtime) == []


def test_only_an_active_console_user_may_be_assigned(runtime: Runtime) -> None:
    with transaction(runtime.sessions) as s:
        for username, active in (("eli", True), ("ada", False)):
            s.add(
                User(
                    username=username,
                    display_name=username.title(),
                    role=accounts.ENGINEER,
                    password_hash="x",
                    active=active,
                    created_at=runtime.now(),
                    failed_logins=0,
                )
            )
    with runtime.sessions() as s:
        assert accounts.assignee(s, " ELI ").display_name == "Eli"
        assert [u.username for u in accounts.assignable(s)] == ["eli"]
        for name in ("ada", "", "Blake Chen", "eli\r\nX: y"):
            with pytest.raises(InvalidInput, match="is not a console user"):
                accounts.assignee(s, name)
