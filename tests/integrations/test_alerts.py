"""Monitoring alerts through the PagerDuty Events API v2 endpoint, on both databases, with PagerDuty's own client."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pagerduty
import pytest
from flask import Flask
from sqlalchemy import func, select
from werkzeug.serving import make_server, make_ssl_devcert

from runtime import Runtime
from ticketing import alerts
from ticketing.db import transaction
from ticketing.models import Alert, AlertKey, AuditEntry, Client, Escalation, OutboxMessage, Ticket
from web.app import create_app

URL = "/integrations/events/v2/enqueue"


@pytest.fixture
def app(runtime: Runtime) -> Flask:
    """The web app on the test database; jobs stay in the outbox for the tests to look at."""
    runtime.settings = runtime.settings.with_overrides(dispatch_after_response=False)
    runtime.redis.flushdb()  # each test's rate counts start at nothing
    return create_app(runtime=runtime)


@pytest.fixture
def key(runtime: Runtime) -> str:
    """A live routing key of the client Acme Dental."""
    with transaction(runtime.sessions) as s:
        client = Client(name="Acme Dental", main_number="+18055550100")
        s.add(client)
        s.flush()
        _, raw = alerts.issue_key(s, client=client.id, name="RMM", actor="admin", now=runtime.now())
    return raw


@pytest.fixture
def live(app: Flask, tmp_path: Path) -> Iterator[str]:
    """The app over real HTTPS on a free port (PagerDuty's client takes nothing else); yields its base URL."""
    cert, private = make_ssl_devcert(str(tmp_path / "alerts"), host="127.0.0.1")
    server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=(cert, private))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    trust = ssl.create_default_context(cafile=cert)
    trust.check_hostname = False  # the development certificate names no IP address; it is still the one trusted
    sender.trust = trust
    yield f"https://127.0.0.1:{server.server_port}/integrations/events"
    server.shutdown()
    thread.join(timeout=5)


def sender(key: str, base_url: str) -> pagerduty.EventsApiV2Client:
    """PagerDuty's own Events API v2 client, pointed at our endpoint."""
    return pagerduty.EventsApiV2Client(key, base_url=base_url, verify=sender.trust)  # type: ignore[attr-defined]


def event(key: str, action: str = "trigger", **fields: Any) -> dict[str, Any]:
    """An Events API v2 body."""
    body: dict[str, Any] = {"routing_key": key, "event_action": action}
    if action == "trigger":
        body["payload"] = {"summary": "Disk C: 95% full", "source": "srv-01", "severity": "error"}
    body.update(fields)
    return body


def tickets(runtime: Runtime) -> list[Ticket]:
    with runtime.sessions() as s:
        return list(s.scalars(select(Ticket).order_by(Ticket.id)))


def actions(runtime: Runtime, number: int) -> list[str]:
    with runtime.sessions() as s:
        rows = s.scalars(select(AuditEntry.action).join(Ticket).where(Ticket.number == number).order_by(AuditEntry.id))
        return list(rows)


def test_pagerdutys_own_client_triggers_acknowledges_and_resolves_a_ticket(
    runtime: Runtime, key: str, live: str
) -> None:
    client = sender(key, live)
    dedup = client.trigger("Backup job failed", "nas-02", severity="error", custom_details={"job": "nightly"})
    assert len(dedup) == 32
    [opened] = tickets(runtime)
    assert (opened.source, opened.priority, opened.summary) == ("alert", "P2", "Backup job failed")
    assert '"job": "nightly"' in opened.description
    assert client.trigger("Backup job failed again", "nas-02", severity="error", dedup_key=dedup) == dedup
    assert len(tickets(runtime)) == 1
    assert client.acknowledge(dedup) == dedup
    assert client.resolve(dedup) == dedup
    [resolved] = tickets(runtime)
    assert resolved.status == "resolved"
    assert actions(runtime, resolved.number) == ["created", "note", "alert acknowledged", "first response met",
                                                  "resolved met", "status changed"]  # fmt: skip
    # Resolved: the same dedup key now opens a new ticket.
    client.trigger("Backup job failed once more", "nas-02", severity="warning", dedup_key=dedup)
    assert [t.priority for t in tickets(runtime)] == ["P2", "P3"]


def test_a_critical_alert_pages_as_pressing_2_does_and_acknowledge_stops_it(
    app: Flask, runtime: Runtime, key: str
) -> None:
    client = app.test_client()
    body = event(key, dedup_key="cpu-srv-01")
    body["payload"]["severity"] = "critical"
    answer = client.post(URL, json=body)
    assert answer.status_code == 202
    assert answer.get_json() == {"status": "success", "message": "Event processed", "dedup_key": "cpu-srv-01"}
    [ticket] = tickets(runtime)
    assert ticket.priority == "P1" and ticket.critical_requested
    assert "paging requested" in actions(runtime, ticket.number)
    with runtime.sessions() as s:
        assert s.scalar(select(OutboxMessage.key).where(OutboxMessage.kind == "page")) == f"page:{ticket.number}"
    assert client.post(URL, json=event(key, "acknowledge", dedup_key="cpu-srv-01")).status_code == 202
    with runtime.sessions() as s:
        escalation = s.scalar(select(Escalation))
        assert escalation is not None and escalation.acknowledged_at is not None
        assert s.scalar(select(Ticket.assignee)) is None  # a machine acknowledged: nobody was given the ticket
    assert "acknowledged" in actions(runtime, ticket.number)


@pytest.mark.parametrize(
    ("severity", "priority"), [("critical", "P1"), ("error", "P2"), ("warning", "P3"), ("info", "P4")]
)
def test_severity_sets_the_priority(app: Flask, runtime: Runtime, key: str, severity: str, priority: str) -> None:
    body = event(key)
    body["payload"]["severity"] = severity
    assert app.test_client().post(URL, json=body).status_code == 202
    assert [t.priority for t in tickets(runtime)] == [priority]


def test_the_settings_choose_the_priority_of_a_severity(runtime: Runtime, key: str) -> None:
    runtime.settings = runtime.settings.with_overrides(alert_priorities=(("critical", "P1"), ("error", "P2"),
                                                                         ("warning", "P2"), ("info", "P4")))  # fmt: skip
    client = create_app(runtime=runtime).test_client()
    body = event(key)
    body["payload"]["severity"] = "warning"
    assert client.post(URL, json=body).status_code == 202
    assert [t.priority for t in tickets(runtime)] == ["P2"]


def test_unknown_and_revoked_keys_are_refused_as_pagerduty_refuses_them(app: Flask, runtime: Runtime, key: str) -> None:
    client = app.test_client()
    answer = client.post(URL, json=event("0" * 32))
    assert answer.status_code == 400
    assert answer.get_json() == {"status": "invalid event", "message": "Event object is invalid",
                                 "errors": ["Invalid routing key"]}  # fmt: skip
    with transaction(runtime.sessions) as s:
        alerts.revoke_key(s, key[:8], actor="admin", now=runtime.now())
    assert client.post(URL, json=event(key)).get_json()["errors"] == ["Invalid routing key"]
    short = client.post(URL, json=event("abc-")).get_json()["errors"]
    assert "Length of 'routing_key' is incorrect (should be 32 characters)" in short
    assert "'routing_key' cannot contain non-alphanumeric characters." in short
    assert tickets(runtime) == []


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b"",
        json.dumps({"event_action": "trigger"}).encode(),
        b"[" * 100_000 + b"]" * 100_000,  # nested past the parser's depth
        b'{"routing_key": "' + b"a" * 32 + b'", "event_action": "trigger", "payload": {"summary": NaN}}',
    ],
)
def test_malformed_bodies_get_the_events_apis_400(app: Flask, runtime: Runtime, body: bytes) -> None:
    answer = app.test_client().post(URL, data=body, content_type="application/json")
    assert answer.status_code == 400
    assert answer.get_json()["status"] == "invalid event" and answer.get_json()["errors"]
    assert tickets(runtime) == []


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"event_action": "explode"}, "'event_action' is missing or invalid"),
        ({"payload": {"summary": "x", "source": "y", "severity": "fatal"}}, "'payload.severity'"),
        ({"payload": {"summary": "", "source": "y", "severity": "info"}}, "'payload.summary' is missing or blank"),
        ({"payload": "text"}, "'payload' is missing or not an object"),
        ({"dedup_key": ""}, "'dedup_key' must be a non-empty string"),
        ({"dedup_key": "k" * 256}, "'dedup_key' is too long"),
    ],
)
def test_bad_fields_are_named(app: Flask, runtime: Runtime, key: str, change: dict[str, Any], error: str) -> None:
    answer = app.test_client().post(URL, json=event(key) | change)
    assert answer.status_code == 400
    assert any(e.startswith(error) for e in answer.get_json()["errors"])
    assert tickets(runtime) == []


def test_acknowledge_and_resolve_need_a_dedup_key_and_are_accepted_for_unknown_ones(app: Flask, key: str) -> None:
    client = app.test_client()
    assert client.post(URL, json=event(key, "resolve")).status_code == 400
    answer = client.post(URL, json=event(key, "resolve", dedup_key="never-seen"))
    assert answer.status_code == 202 and answer.get_json()["dedup_key"] == "never-seen"


def test_bodies_over_512_kib_get_413(app: Flask, runtime: Runtime, key: str) -> None:
    body = event(key)
    body["payload"]["custom_details"] = {"log": "x" * (512 * 1024)}
    answer = app.test_client().post(URL, json=body)
    assert answer.status_code == 413
    assert answer.get_json()["status"] == "invalid event"
    assert tickets(runtime) == []


def test_huge_values_crlf_and_links_are_kept_safe(app: Flask, runtime: Runtime, key: str) -> None:
    body = event(key, links=[{"href": "javascript:alert(1)", "text": "x"}], images=[{"src": "http://x/y.png"}])
    body["payload"]["summary"] = "Disk full\r\nBcc: victim@example.com\r\n" + "y" * 5000
    body["payload"]["custom_details"] = {"nested": [[[{"deep": "z" * 100_000}]]]}
    assert app.test_client().post(URL, json=body).status_code == 202
    [ticket] = tickets(runtime)
    assert "\n" not in ticket.summary and "\r" not in ticket.summary
    assert ticket.summary.startswith("Disk full Bcc: victim@example.com")
    assert len(ticket.summary) <= 200 and len(ticket.description) < 9000
    assert "javascript" not in ticket.description


def test_a_key_over_its_rate_gets_429(runtime: Runtime, key: str) -> None:
    runtime.settings = runtime.settings.with_overrides(alert_rate_limit="2/minute", dispatch_after_response=False)
    runtime.redis.flushdb()
    client = create_app(runtime=runtime).test_client()
    codes = [client.post(URL, json=event(key, dedup_key="same")).status_code for _ in range(3)]
    assert codes == [202, 202, 429]
    assert len(tickets(runtime)) == 1


def test_concurrent_duplicate_triggers_open_exactly_one_ticket(runtime: Runtime, key: str, live: str) -> None:
    barrier = threading.Barrier(2)
    results: list[str] = []

    def send() -> None:
        barrier.wait()
        results.append(sender(key, live).trigger("Link down", "fw-1", dedup_key="wan"))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert results == ["wan", "wan"]
    assert len(tickets(runtime)) == 1
    with runtime.sessions() as s:
        assert s.scalar(select(func.count(Alert.id))) == 1
        assert s.scalar(select(Alert.triggers)) == 2


def test_the_unique_constraint_refuses_a_second_open_alert_for_one_dedup_key(runtime: Runtime, key: str) -> None:
    from sqlalchemy.exc import IntegrityError

    with transaction(runtime.sessions) as s:
        outcome = alerts.receive(s, alerts.key_for(s, key), action="trigger", dedup_key="d", summary="s",  # type: ignore[arg-type]
                                 source="x", severity="info", policy=runtime.policy, now=runtime.now())  # fmt: skip
    with pytest.raises(IntegrityError), transaction(runtime.sessions) as s:
        first = s.scalar(select(Alert))
        assert first is not None and outcome.ticket is not None
        s.add(Alert(client_id=first.client_id, key_id=first.key_id, dedup_key="d", open_dedup_key="d",
                    ticket_id=first.ticket_id, severity="info", triggers=1, triggered_at=runtime.now(),
                    updated_at=runtime.now()))  # fmt: skip
        s.flush()


def test_keys_are_stored_hashed(runtime: Runtime, key: str) -> None:
    with runtime.sessions() as s:
        row = s.scalar(select(AlertKey))
        assert row is not None and key not in (row.key_hash, row.prefix, row.name)
        assert alerts.key_for(s, key.upper()) is None and alerts.key_for(s, key) is not None


def test_the_command_line_issues_lists_and_revokes_keys(app: Flask, runtime: Runtime) -> None:
    with transaction(runtime.sessions) as s:
        s.add(Client(name="Beta Law"))
    cli = app.test_cli_runner()
    added = cli.invoke(args=["alerts", "key", "add", "Beta Law", "--name", "Datto RMM"])
    assert added.exit_code == 0, added.output
    raw = added.output.strip().splitlines()[-1]
    assert len(raw) == 32 and raw.isalnum()
    assert "/integrations/events/v2/enqueue" in added.output
    client = app.test_client()
    assert client.post(URL, json=event(raw)).status_code == 202
    listing = cli.invoke(args=["alerts", "key", "list"]).output
    assert raw[:8] in listing and "Beta Law" in listing and "live" in listing and raw not in listing
    assert cli.invoke(args=["alerts", "key", "revoke", raw[:8]]).exit_code == 0
    assert "revoked" in cli.invoke(args=["alerts", "key", "list"]).output
    assert client.post(URL, json=event(raw)).get_json()["errors"] == ["Invalid routing key"]
    stranger = cli.invoke(args=["alerts", "key", "add", "Nobody Inc", "--name", "x"])
    assert stranger.exit_code != 0 and "unknown client" in stranger.output
    blank = cli.invoke(args=["alerts", "key", "add", "Beta Law", "--name", " \r\n "])
    assert blank.exit_code != 0 and "needs a name" in blank.output
    assert cli.invoke(args=["alerts", "key", "revoke", "nonesuch"]).exit_code != 0


def test_alert_priorities_are_read_from_the_environment_and_bad_ones_refused() -> None:
    from settings import ConfigError, load_settings

    chosen = load_settings({"ALERT_PRIORITIES": " Warning = p2 "}).alert_priorities
    assert dict(chosen) == {"critical": "P1", "error": "P2", "warning": "P2", "info": "P4"}
    for bad in ("warning=P9", "fatal=P1", "warning"):
        with pytest.raises(ConfigError):
            load_settings({"ALERT_PRIORITIES": bad})


def test_a_repeat_that_grows_critical_raises_the_ticket_to_p1_and_pages(app: Flask, runtime: Runtime, key: str) -> None:
    client = app.test_client()
    body = event(key, dedup_key="raid")
    body["payload"]["severity"] = "warning"
    assert client.post(URL, json=body).status_code == 202
    body["payload"]["severity"] = "critical"
    assert client.post(URL, json=body).status_code == 202
    body["payload"]["severity"] = "info"  # a calmer repeat never lowers it
    assert client.post(URL, json=body).status_code == 202
    [ticket] = tickets(runtime)
    assert ticket.priority == "P1"
    assert actions(runtime, ticket.number).count("paging requested") == 1
    assert "priority changed" in actions(runtime, ticket.number)


@pytest.mark.parametrize("where", ["summary", "source", "dedup_key", "custom_details_key", "custom_details_value"])
def test_text_that_is_not_unicode_is_refused_with_400_and_stores_nothing(
    app: Flask, runtime: Runtime, key: str, where: str
) -> None:
    body = event(key, dedup_key="switch-1")
    lone = "\\ud800"  # a JSON escape of a lone surrogate, which no database or mail can hold
    if where in ("summary", "source"):
        body["payload"][where] = "PLACEHOLDER"
    elif where == "dedup_key":
        body["dedup_key"] = "PLACEHOLDER"
    elif where == "custom_details_key":
        body["payload"]["custom_details"] = {"PLACEHOLDER": 1}
    else:
        body["payload"]["custom_details"] = {"note": ["PLACEHOLDER"]}
    raw = json.dumps(body).replace("PLACEHOLDER", lone).encode()
    answer = app.test_client().post(URL, data=raw, content_type="application/json")
    assert answer.status_code == 400
    assert answer.get_json()["status"] == "invalid event"
    assert any("not valid Unicode" in e for e in answer.get_json()["errors"])
    assert tickets(runtime) == []
