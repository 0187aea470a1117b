"""Monitoring alerts on the real stack (gunicorn, worker, pager, sweeper, PostgreSQL, Redis): a critical alert
pages on-call through Twilio, duplicates sent at once open one ticket, and acknowledge stops the paging."""

from __future__ import annotations

import secrets
import threading
from datetime import UTC, datetime

import requests
from sqlalchemy import select

from testing.stack import Stack, wait_until
from testing.twilio_server import TwilioTestServer
from ticketing import alerts
from ticketing.db import transaction
from ticketing.models import Alert, Client, Ticket

ENQUEUE = "/integrations/events/v2/enqueue"


def routing_key(stack: Stack) -> tuple[str, int]:
    """A new client of the stack and its routing key."""
    with transaction(stack.db.sessions) as s:
        client = Client(name=f"Stack Client {secrets.token_hex(4)}")
        s.add(client)
        s.flush()
        _, key = alerts.issue_key(s, client=client.id, name="RMM", actor="test", now=datetime.now(UTC))
        return key, client.id


def trigger(stack: Stack, key: str, dedup: str, severity: str = "critical") -> requests.Response:
    event = {"routing_key": key, "event_action": "trigger", "dedup_key": dedup,
             "payload": {"summary": "Core switch unreachable", "source": "prtg", "severity": severity}}  # fmt: skip
    return requests.post(stack.url + ENQUEUE, json=event, timeout=30)


def test_a_critical_alert_pages_on_call_and_its_acknowledge_stops_the_paging(
    stack: Stack, twilio_api: TwilioTestServer
) -> None:
    key, client_id = routing_key(stack)
    answers: list[requests.Response] = []
    barrier = threading.Barrier(2)

    def send() -> None:
        barrier.wait()
        answers.append(trigger(stack, key, "switch-1"))

    senders = [threading.Thread(target=send) for _ in range(2)]
    for t in senders:
        t.start()
    for t in senders:
        t.join(timeout=60)
    assert [a.status_code for a in answers] == [202, 202]
    assert {a.json()["dedup_key"] for a in answers} == {"switch-1"}
    with stack.session() as s:
        tickets = s.scalars(select(Ticket).where(Ticket.client_id == client_id)).all()
        assert len(tickets) == 1 and tickets[0].priority == "P1"
        number = tickets[0].number
        assert s.scalar(select(Alert.triggers).where(Alert.client_id == client_id)) == 2
    wait_until(lambda: any(p.state == "sent" for p in stack.pages(number)), 20, "the alert's page to go out")
    answer = requests.post(stack.url + ENQUEUE, json={"routing_key": key, "event_action": "acknowledge",
                                                      "dedup_key": "switch-1"}, timeout=30)  # fmt: skip
    assert answer.status_code == 202
    escalation = stack.escalation(number)
    assert escalation is not None and escalation.acknowledged_at is not None
    assert "acknowledged" in stack.audit(number)


def test_critical_alerts_with_different_dedup_keys_each_page(stack: Stack) -> None:
    key, client_id = routing_key(stack)
    for dedup in ("ups-1", "ups-2"):
        assert trigger(stack, key, dedup).status_code == 202
    with stack.session() as s:
        numbers = s.scalars(select(Ticket.number).where(Ticket.client_id == client_id).order_by(Ticket.id)).all()
    assert len(numbers) == 2
    for number in numbers:  # no caller number: never joined like a flood of withheld-number calls
        wait_until(lambda n=number: any(p.state == "sent" for p in stack.pages(n)), 20, f"ticket {number}'s own page")
    # Acknowledged, so that their escalations page nobody during the tests that come after this one.
    for dedup, number in zip(("ups-1", "ups-2"), numbers, strict=True):
        answer = requests.post(stack.url + ENQUEUE, json={"routing_key": key, "event_action": "acknowledge",
                                                          "dedup_key": dedup}, timeout=30)  # fmt: skip
        assert answer.status_code == 202
        escalation = stack.escalation(number)
        assert escalation is not None and escalation.acknowledged_at is not None
