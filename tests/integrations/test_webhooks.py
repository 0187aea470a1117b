"""Outbound webhooks through the real outbox, Redis and worker, to real HTTP receivers, verified as receivers do."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from pathlib import Path

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from integrations import webhooks
from integrations.webhook_models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from runtime import Runtime
from tests.conftest import FixedClock
from tests.integrations.conftest import Receiver, add, change, open_ticket, run
from ticketing.db import transaction
from ticketing.models import AuditEntry, User
from web.app import create_app


def verified(secret: str, request: object) -> dict:
    """The payload, checked by the Standard Webhooks library exactly as a receiver checks it."""
    return Webhook(secret).verify(request.body, request.headers)  # type: ignore[attr-defined]


def deliveries(runtime: Runtime, endpoint_id: int) -> list[WebhookDelivery]:
    with runtime.sessions() as s:
        return list(
            s.scalars(
                select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id).order_by(WebhookDelivery.id)
            )
        )


def test_every_delivery_verifies_and_carries_the_change_with_its_old_and_new_values(
    hooks: Runtime, receiver: Receiver
) -> None:
    endpoint, secret = add(hooks, receiver.url)
    number = open_ticket(hooks)
    change(hooks, number, "P2")
    run(hooks)
    assert receiver.types() == ["ticket.created", "ticket.updated"]
    created, updated = (verified(secret, r) for r in receiver.got)
    assert created["data"]["ticket"] == number and created["data"]["priority"] == "P3"
    assert updated["data"]["changes"] == {"priority": {"old": "P3", "new": "P2"}}
    assert all(r.headers["webhook-id"].startswith("msg_") for r in receiver.got)
    assert [d.state for d in deliveries(hooks, endpoint)] == ["delivered", "delivered"]
    assert all(d.last_status == 200 for d in deliveries(hooks, endpoint))
    # Nothing twice: a second pass finds nothing new.
    run(hooks)
    assert len(receiver.got) == 2


def test_no_phone_number_or_transcript_unless_the_endpoint_opts_in(
    hooks: Runtime, receiver: Receiver, other_receiver: Receiver
) -> None:
    _plain, plain_secret = add(hooks, receiver.url, ["ticket.created"])
    _pii, pii_secret = add(hooks, other_receiver.url, ["ticket.created"], include_pii=True)
    open_ticket(hooks)
    run(hooks)
    plain = verified(plain_secret, receiver.got[0])
    assert "caller_number" not in plain["data"] and b"5550123" not in receiver.got[0].body
    assert verified(pii_secret, other_receiver.got[0])["data"]["caller_number"] == "+18055550123"


def test_tampered_bodies_and_replayed_old_timestamps_are_refused_by_the_verifier(
    hooks: Runtime, receiver: Receiver
) -> None:
    _endpoint, secret = add(hooks, receiver.url, ["ticket.created"])
    open_ticket(hooks)
    run(hooks)
    (request,) = receiver.got
    verified(secret, request)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(request.body.replace(b'"P3"', b'"P1"'), request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(request.body, {**request.headers, "webhook-id": "msg_other"})
    with pytest.raises(WebhookVerificationError):
        Webhook(webhooks.new_secret()).verify(request.body, request.headers)
    # A request captured and replayed later: its timestamp is old, the signature covers it.
    with hooks.sessions() as s:
        delivery = s.scalars(select(WebhookDelivery)).one()
        old = webhooks.prepare(delivery, hooks.now(), datetime.now(UTC) - timedelta(minutes=10))
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(old.body, old.headers)
    newer = {**old.headers, "webhook-timestamp": str(int(datetime.now(UTC).timestamp()))}
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(secret).verify(old.body, newer)


def test_a_failing_endpoint_is_retried_with_backoff_and_the_same_webhook_id(
    hooks: Runtime, receiver: Receiver, clock: FixedClock
) -> None:
    answers = iter([500, 503, 200])
    receiver.answer = lambda _r: next(answers)
    endpoint, secret = add(hooks, receiver.url, ["ticket.created"])
    open_ticket(hooks)
    run(hooks)
    assert len(receiver.got) == 1
    (delivery,) = deliveries(hooks, endpoint)
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("pending", 1, 500)
    assert delivery.last_error is not None and len(delivery.last_error) <= 500
    run(hooks)  # not due yet: nothing is sent before the backoff
    assert len(receiver.got) == 1
    clock.advance(seconds=webhooks.BACKOFF[0])
    run(hooks)
    clock.advance(seconds=webhooks.BACKOFF[1])
    run(hooks)
    assert len(receiver.got) == 3
    assert len({r.headers["webhook-id"] for r in receiver.got}) == 1
    for request in receiver.got:
        verified(secret, request)
    (delivery,) = deliveries(hooks, endpoint)
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("delivered", 3, 200)


def test_a_later_event_of_a_ticket_waits_for_the_earlier_one_while_other_tickets_go_on(
    hooks: Runtime, receiver: Receiver, clock: FixedClock
) -> None:
    first = open_ticket(hooks)  # before the endpoint: not sent
    failing = {"on": True}

    def answer(request: object) -> int:
        data = json.loads(request.body)["data"]  # type: ignore[attr-defined]
        return 500 if failing["on"] and data["ticket"] == first and data.get("changes") else 200

    receiver.answer = answer
    _endpoint, secret = add(hooks, receiver.url, ["ticket.updated", "ticket.created"])
    change(hooks, first, "P2")
    change(hooks, first, "P1")
    other = open_ticket(hooks)
    run(hooks)
    got = [(verified(secret, r)["data"]["ticket"], r.headers["webhook-id"]) for r in receiver.got]
    assert [ticket for ticket, _id in got] == [first, other]  # P3->P2 failed; P2->P1 not sent; the other ticket went
    failing["on"] = False
    clock.advance(seconds=webhooks.BACKOFF[0])
    run(hooks)
    changes = [verified(secret, r)["data"].get("changes") for r in receiver.got]
    assert changes[2:] == [{"priority": {"old": "P3", "new": "P2"}}, {"priority": {"old": "P2", "new": "P1"}}]
    assert receiver.got[2].headers["webhook-id"] == got[0][1]


def test_an_endpoint_failing_for_24_hours_is_disabled_and_the_admins_are_told(
    hooks: Runtime, receiver: Receiver, clock: FixedClock
) -> None:
    receiver.answer = lambda _r: 500
    with transaction(hooks.sessions) as s:
        for name, email, role in (
            ("ada", "ada@msp.example", "admin"),
            ("bo", None, "admin"),
            ("cy", "cy@x", "engineer"),
        ):
            s.add(User(username=name, display_name=name, role=role, email=email, password_hash="x", active=True,
                       created_at=hooks.now(), failed_logins=0))  # fmt: skip
    endpoint, _secret = add(hooks, receiver.url, ["ticket.created"])
    open_ticket(hooks)
    started = hooks.now()
    run(hooks)
    while hooks.now() - started < timedelta(hours=25):
        clock.advance(hours=1)
        run(hooks)
        with hooks.sessions() as s:
            if not s.get(WebhookEndpoint, endpoint).enabled:  # type: ignore[union-attr]
                break
    with hooks.sessions() as s:
        row = s.get(WebhookEndpoint, endpoint)
        assert row is not None and not row.enabled and (row.disabled_reason or "").startswith("failing since")
        assert timedelta(hours=24) <= hooks.now() - started <= timedelta(hours=25)
        assert webhooks.counts(s)["disabled"] == 1
    (delivery,) = deliveries(hooks, endpoint)
    assert delivery.state == "failed" and delivery.attempts >= 8
    sent = len(receiver.got)
    clock.advance(hours=1)
    run(hooks)
    assert len(receiver.got) == sent  # nothing more goes to a disabled endpoint
    metrics = create_app(runtime=hooks).test_client().get("/metrics").get_data(as_text=True)
    assert "supportline_webhook_endpoints_disabled 1.0" in metrics
    assert 'supportline_webhook_deliveries{state="failed"} 1.0' in metrics
    mails = [message_from_bytes(p.read_bytes()) for p in Path(hooks.settings.dev_mailbox_dir, "new").iterdir()]
    assert [m["To"] for m in mails] == ["ada@msp.example"]
    assert receiver.url in mails[0].get_payload() and "disabled" in mails[0]["Subject"]


def test_rotation_sends_both_signatures_during_the_overlap_then_only_the_new_one(
    hooks: Runtime, receiver: Receiver, clock: FixedClock
) -> None:
    endpoint, old_secret = add(hooks, receiver.url, ["ticket.created"])
    with transaction(hooks.sessions) as s:
        new_secret = webhooks.rotate(webhooks.get_endpoint(s, endpoint), now=hooks.now(), overlap=timedelta(hours=1))
    assert new_secret != old_secret and new_secret.startswith("whsec_")
    open_ticket(hooks)
    run(hooks)
    (during,) = receiver.got
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    verified(old_secret, during)
    verified(new_secret, during)
    clock.advance(hours=1, seconds=1)
    open_ticket(hooks)
    run(hooks)
    after = receiver.got[1]
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    verified(new_secret, after)
    with pytest.raises(WebhookVerificationError):
        verified(old_secret, after)


def test_redirects_are_not_followed_and_answers_are_read_only_a_few_kib(hooks: Runtime, receiver: Receiver) -> None:
    receiver.answer = lambda _r: 302
    endpoint, _secret = add(hooks, receiver.url, ["ticket.created"])
    open_ticket(hooks)
    run(hooks)
    (delivery,) = deliveries(hooks, endpoint)
    assert (delivery.state, delivery.last_status) == ("pending", 302)
    assert len(receiver.got) == 1 and delivery.last_error == "HTTP 302: " + "x" * 300  # of 100,000 bytes sent


@pytest.mark.parametrize(
    ("url", "dev_mode", "why"),
    [
        ("ftp://hooks.example.com/x", True, "https"),
        ("http://hooks.example.com/x", True, "https"),
        ("http://127.0.0.1:8080/x", False, "https"),
        ("https://user:pw@hooks.example.com/x", True, "user name"),
        ("https://hooks.example.com/x\r\nX-Evil: 1", True, "control"),
        ("https://hooks.example.com/a b", True, "control"),
        ("", True, "empty"),
        ("https:///nohost", True, "no host"),
        ("https://127.0.0.1/x", False, "private"),
        ("https://10.1.2.3/x", False, "private"),
        ("https://169.254.169.254/latest", False, "private"),
        ("https://[::1]/x", False, "private"),
        ("https://localhost/x", False, "private"),
        ("https://hooks.example.com:99999/x", True, "port"),
        ("https://hooks.example.com:99999/x", False, "port"),
        ("https://hooks.example.com:0/x", True, "port"),
        ("https://hooks.example.com:http/x", True, "port"),
    ],
)
def test_refused_urls(url: str, dev_mode: bool, why: str) -> None:
    with pytest.raises(webhooks.WebhookError, match=why):
        webhooks.check_url(url, dev_mode=dev_mode)


def test_accepted_urls() -> None:
    assert webhooks.check_url("http://localhost:5000/hook", dev_mode=True) == "http://localhost:5000/hook"
    assert webhooks.check_url(" https://93.184.215.14/hook ", dev_mode=False) == "https://93.184.215.14/hook"
    with pytest.raises(webhooks.WebhookError, match="unknown events"):
        webhooks.check_events(["ticket.created", "ticket.deleted"])
    with pytest.raises(webhooks.WebhookError, match="at least one"):
        webhooks.check_events([" "])


def test_outside_development_mode_a_host_that_resolves_to_loopback_is_never_contacted(
    hooks: Runtime, receiver: Receiver
) -> None:
    endpoint, _secret = add(hooks, receiver.url, ["ticket.created"])
    with transaction(hooks.sessions) as s:  # as if the name had resolved elsewhere when it was registered
        row = webhooks.get_endpoint(s, endpoint)
        row.url = receiver.url.replace("http://127.0.0.1", "https://localhost")
    hooks.settings = hooks.settings.with_overrides(dev_mode=False)
    open_ticket(hooks)
    run(hooks)
    assert receiver.got == []
    (delivery,) = deliveries(hooks, endpoint)
    assert delivery.state == "pending" and (delivery.last_error or "").startswith("refused: localhost")


def test_send_again_uses_the_same_webhook_id(hooks: Runtime, receiver: Receiver) -> None:
    endpoint, secret = add(hooks, receiver.url, ["ticket.created"])
    open_ticket(hooks)
    run(hooks)
    (delivery,) = deliveries(hooks, endpoint)
    with transaction(hooks.sessions) as s:
        webhooks.send_again(s, delivery.id, now=hooks.now())
    run(hooks)
    assert len(receiver.got) == 2 and receiver.got[0].headers["webhook-id"] == receiver.got[1].headers["webhook-id"]
    verified(secret, receiver.got[1])
    with transaction(hooks.sessions) as s, pytest.raises(webhooks.WebhookError):
        webhooks.send_again(s, delivery.id + 1000, now=hooks.now())


def test_an_audit_id_committed_after_a_higher_one_is_not_skipped(hooks: Runtime, receiver: Receiver) -> None:
    if hooks.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serializes writers: ids always commit in order")
    from ticketing import lifecycle

    _endpoint, secret = add(hooks, receiver.url, ["ticket.created"])
    slow = hooks.sessions()
    slow.begin()
    late = lifecycle.open_ticket(slow, policy=hooks.policy, now=hooks.now(), priority="P3", source="phone",
                                 actor="tests", notify=False)  # fmt: skip
    slow.flush()  # its audit id is taken, not committed
    early = open_ticket(hooks)  # a higher id, committed first
    with hooks.sessions() as s:
        late_id = s.scalar(select(AuditEntry.id).order_by(AuditEntry.id.desc()).limit(1))
    run(hooks)
    assert [verified(secret, r)["data"]["ticket"] for r in receiver.got] == [early]
    late_number = late.number
    slow.commit()
    slow.close()
    run(hooks)
    assert [verified(secret, r)["data"]["ticket"] for r in receiver.got] == [early, late_number]
    assert late_id is not None


def test_a_gap_that_never_commits_is_passed_after_the_settle_time(hooks: Runtime, clock: FixedClock) -> None:
    with transaction(hooks.sessions) as s:
        webhooks.add_endpoint(s, "http://localhost:9/x", ["ticket.created"], now=hooks.now(), dev_mode=True)
    with hooks.sessions() as s:
        cursor = webhooks._cursor(s)
        start = cursor.position
        webhooks._advance(cursor, {start + 2, start + 3}, hooks.now())
        assert (cursor.position, cursor.seen) == (start, [start + 2, start + 3])
        clock.advance(seconds=30)
        webhooks._advance(cursor, set(cursor.seen), hooks.now())
        assert cursor.position == start
        clock.advance(seconds=31)
        webhooks._advance(cursor, set(cursor.seen), hooks.now())
        assert (cursor.position, cursor.seen, cursor.gap_since) == (start + 3, [], None)


def test_events_of_maps_audit_actions() -> None:
    (updated,) = webhooks.events_of("assigned", {"from": None, "to": "eli"})
    assert (updated.type, updated.data) == ("ticket.updated", {"changes": {"assignee": {"old": None, "new": "eli"}}})
    (status,) = webhooks.events_of("status changed", {"from": "new", "to": "resolved"})
    assert status.data["changes"]["status"] == {"old": "new", "new": "resolved"}
    assert webhooks.events_of("transcribed", {"language": "en"})[0].private == ("transcript", "caller_number")
    assert [
        webhooks.events_of(a, {})[0].type for a in ("paged", "acknowledged", "nobody reached", "client message")
    ] == [
        "page.sent",
        "page.acknowledged",
        "paging.nobody_reached",
        "ticket.client_message",
    ]
    assert webhooks.events_of("note", {"text": "secret"}) == []


def test_an_sla_breach_is_sent_once(hooks: Runtime, receiver: Receiver, clock: FixedClock) -> None:
    _endpoint, secret = add(hooks, receiver.url, ["sla.breached"])
    number = open_ticket(hooks, priority="P2")
    run(hooks)
    assert receiver.got == []
    clock.advance(days=3)
    run(hooks)
    run(hooks)
    breaches = [verified(secret, r)["data"] for r in receiver.got]
    assert breaches and all(b["ticket"] == number for b in breaches)
    assert len({b["milestone"] for b in breaches}) == len(breaches)
    with hooks.sessions() as s:
        assert len(s.scalars(select(WebhookEvent)).all()) == len(breaches)


def test_the_connection_goes_to_the_address_checked_not_to_a_later_answer_of_the_dns(
    hooks: Runtime, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = socket.getaddrinfo
    answers = iter(["127.0.0.1"])

    def rebinding(host: str, port: object, *args: object, **kwargs: object) -> list:  # type: ignore[type-arg]
        if host != "rebind.test":
            return real(host, port, *args, **kwargs)  # type: ignore[arg-type]
        return real(next(answers, "10.255.255.1"), port, *args, **kwargs)  # type: ignore[arg-type]

    port = receiver.url.split(":")[2].split("/")[0]
    endpoint, secret = add(hooks, receiver.url, ["ticket.created"])
    with transaction(hooks.sessions) as s:
        webhooks.get_endpoint(s, endpoint).url = f"http://rebind.test:{port}/hook"
    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    open_ticket(hooks)
    run(hooks)
    (request,) = receiver.got
    assert request.headers["host"] == f"rebind.test:{port}"
    verified(secret, request)
    (delivery,) = deliveries(hooks, endpoint)
    assert delivery.state == "delivered"


def test_what_happens_while_every_endpoint_is_disabled_is_never_sent_later(hooks: Runtime, receiver: Receiver) -> None:
    endpoint, secret = add(hooks, receiver.url, ["ticket.created"])
    with transaction(hooks.sessions) as s:
        webhooks.disable(s, webhooks.get_endpoint(s, endpoint), now=hooks.now(), reason="tests")
    open_ticket(hooks)
    run(hooks)
    with transaction(hooks.sessions) as s:
        webhooks.enable(webhooks.get_endpoint(s, endpoint))
    later = open_ticket(hooks)
    run(hooks)
    assert [verified(secret, r)["data"]["ticket"] for r in receiver.got] == [later]
