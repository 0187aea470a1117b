"""Twilio's words for a page's fate become paging's own at the edge: the mapping, and the rows stored before."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, text

from providers.twilio_status import answer, delivery_report, dial_answered
from tests.inbox.test_threading import empty_database  # noqa: F401 - the fixture
from ticketing import paging
from ticketing.models import Escalation, Page, Ticket


@pytest.mark.parametrize(
    ("callback", "status", "code", "outcome"),
    [
        ("sms", "delivered", None, paging.DELIVERED),
        ("sms", "read", None, paging.DELIVERED),
        ("call", "completed", None, paging.DELIVERED),
        ("call", "in-progress", None, paging.DELIVERED),
        ("sms", "undelivered", "30006", paging.UNREACHABLE),  # a landline: the number's fault
        ("sms", "failed", None, paging.UNREACHABLE),  # no code: taken as the number's
        ("sms", "undelivered", "30008", paging.PROVIDER_FAILED),  # an unknown carrier error
        ("call", "failed", "31005", paging.PROVIDER_FAILED),
        ("call", "busy", None, paging.NOT_ANSWERED),
        ("call", "no-answer", None, paging.NOT_ANSWERED),
        ("sms", "queued", None, None),
        ("sms", "sent", None, None),
        ("call", "ringing", None, None),
        ("call", "undelivered", None, None),  # not a call status
    ],
)
def test_a_status_callback_reads_as_paging_words(callback: str, status: str, code: str | None, outcome: str) -> None:
    report = delivery_report(callback, f" {status.upper()} ", code, None)  # type: ignore[arg-type]
    assert report.outcome == outcome
    assert report.record == {"status": status, "error_code": code}


@pytest.mark.parametrize(
    ("answered_by", "words"),
    [
        ("human", paging.BY_PERSON),
        ("machine_start", paging.BY_MACHINE),
        ("machine_end_beep", paging.BY_MACHINE),
        ("fax", paging.BY_MACHINE),
        ("unknown", paging.UNDECIDED),
        ("", None),
        (None, None),
    ],
)
def test_answering_machine_detection_reads_as_paging_words(answered_by: str | None, words: str | None) -> None:
    assert answer(answered_by) == words


def test_only_a_picked_up_call_to_the_caller_counts_as_connected() -> None:
    assert dial_answered("completed") and dial_answered("answered")
    assert not any(dial_answered(s) for s in ("busy", "no-answer", "failed", "canceled", ""))


def test_the_upgrade_translates_the_pages_twilio_words(empty_database: str) -> None:  # noqa: F811
    from alembic import command

    from testing.database import alembic_config, migrate
    from ticketing.db import make_engine

    migrate(empty_database, "0013")
    at = datetime(2026, 11, 18, 18, 0, tzinfo=UTC)
    engine = make_engine(empty_database)
    before = [  # channel, state, delivery status, AnsweredBy
        ("sms", "sent", "delivered", None),
        ("call", "sent", "completed", None),
        ("call", "sent", "completed", "machine_start"),
        ("call", "sent", "busy", None),
        ("sms", "failed", "undelivered", None),
        ("sms", "retrying", "undelivered", None),
        ("sms", "sent", "queued", None),
        ("call", "sent", "in-progress", "unknown"),
        ("email", "sent", "accepted", None),
    ]
    with engine.begin() as conn:
        conn.execute(
            insert(Ticket.__table__).values(
                id=1, number=400001, priority="P1", source="phone", opened_at=at, updated_at=at
            )
        )
        conn.execute(insert(Escalation.__table__).values(id=1, ticket_id=1, policy="p", state="paging", started_at=at))
        for i, (channel, state, status, answered_by) in enumerate(before):
            conn.execute(
                insert(Page.__table__).values(
                    escalation_id=1, key=f"k{i}", position=0, round=1, step=1, person="p", person_name="P",
                    to_number="+18055550100", channel=channel, state=state, claimed_at=at, updated_at=at,
                    delivery_status=status, answered_by=answered_by,
                )
            )  # fmt: skip
    migrate(empty_database)
    with engine.connect() as conn:
        after = [tuple(r) for r in conn.execute(text("SELECT delivery_status, answered_by FROM pages ORDER BY id"))]
    assert after == [
        (paging.DELIVERED, None),
        (paging.DELIVERED, None),
        (paging.DELIVERED, paging.BY_MACHINE),
        (paging.NOT_ANSWERED, None),
        (paging.UNREACHABLE, None),
        (paging.PROVIDER_FAILED, None),
        (None, None),
        (paging.DELIVERED, paging.UNDECIDED),
        ("accepted", None),
    ]
    command.downgrade(alembic_config(empty_database), "0013")
    engine.dispose()
