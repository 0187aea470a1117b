"""The admins' webhook page: admins only, CSRF on every form, the secret shown once, Send again."""

from __future__ import annotations

import re

from flask import Flask
from sqlalchemy import select

from integrations import webhooks
from integrations.webhook_models import WebhookDelivery, WebhookEndpoint
from runtime import Runtime
from tests.web.conftest import Console
from ticketing.db import transaction

URL = "https://hooks.example.com/supportline"


def admin(app: Flask) -> Console:
    c = Console(app.test_client())
    assert c.login("ada").status_code == 303
    return c


def endpoints(runtime: Runtime) -> list[WebhookEndpoint]:
    with runtime.sessions() as s:
        return list(s.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)))


def test_only_admins_see_the_pages_and_the_nav_link(app: Flask, console: Console, anonymous: Console) -> None:
    for path in ("/integrations", "/integrations/webhooks"):
        assert console.get(path).status_code == 403
        assert anonymous.get(path).status_code == 302
    assert ">Integrations</a>" not in console.get("/queue").get_data(as_text=True)
    assert console.post("/integrations/webhooks", {"url": URL, "events": "ticket.created"}).status_code == 403
    ada = admin(app)
    assert ">Integrations</a>" in ada.get("/queue").get_data(as_text=True)
    index = ada.get("/integrations").get_data(as_text=True)
    for path in ("/integrations/webhooks", "/integrations/alerts", "/integrations/connectwise"):
        assert f'href="{path}"' in index


def test_adding_an_endpoint_needs_the_csrf_token_and_shows_the_secret_once(
    app: Flask, runtime: Runtime, users: dict[str, str]
) -> None:
    ada = admin(app)
    refused = ada.client.post("/integrations/webhooks", data={"url": URL, "events": ["ticket.created"]})
    assert refused.status_code == 400 and endpoints(runtime) == []
    answer = ada.post("/integrations/webhooks", {"url": URL, "events": ["ticket.created", "sla.breached"]})
    assert answer.status_code == 201
    (row,) = endpoints(runtime)
    assert row.events == ["ticket.created", "sla.breached"] and not row.include_pii and row.created_by == "Ada Brooks"
    assert row.secret in answer.get_data(as_text=True) and re.fullmatch(r"whsec_[A-Za-z0-9+/]{43}=", row.secret)
    assert row.secret not in ada.get("/integrations/webhooks").get_data(as_text=True)


def test_bad_urls_and_events_are_refused_with_the_reason(app: Flask, runtime: Runtime, users: dict[str, str]) -> None:
    ada = admin(app)
    for url, why in (
        ("ftp://hooks.example.com/x", "https"),
        ("https://hooks.example.com/x\r\nX-Evil: 1", "control characters"),
        ("https://me:pw@hooks.example.com/", "user name"),
        ("https://127.0.0.1/x", "private"),
        ("", "empty"),
    ):
        answer = ada.post("/integrations/webhooks", {"url": url, "events": ["ticket.created"]})
        assert answer.status_code == 400 and why in answer.get_data(as_text=True), url
    assert ada.post("/integrations/webhooks", {"url": URL}).status_code == 400
    assert ada.post("/integrations/webhooks", {"url": URL, "events": ["ticket.deleted"]}).status_code == 400
    assert endpoints(runtime) == []


def test_disable_enable_rotate_and_send_again(app: Flask, runtime: Runtime, users: dict[str, str]) -> None:
    ada = admin(app)
    assert ada.post("/integrations/webhooks", {"url": URL, "events": ["ticket.created"]}).status_code == 201
    (row,) = endpoints(runtime)
    assert ada.post(f"/integrations/webhooks/{row.id}/disable").status_code == 303
    assert not endpoints(runtime)[0].enabled and "disabled by Ada Brooks" in ada.get("/integrations/webhooks").get_data(
        as_text=True
    )
    assert ada.post(f"/integrations/webhooks/{row.id}/enable").status_code == 303
    assert endpoints(runtime)[0].enabled
    rotated = ada.post(f"/integrations/webhooks/{row.id}/rotate")
    (after,) = endpoints(runtime)
    assert after.secret != row.secret and after.previous_secret == row.secret
    assert after.secret in rotated.get_data(as_text=True)
    assert ada.post(f"/integrations/webhooks/{row.id}/delete").status_code == 404
    assert ada.post("/integrations/webhooks/999/disable").status_code == 404

    with transaction(runtime.sessions) as s:
        webhooks._record(s, "k", "ticket.created", 12, runtime.now(), {"ticket": 12}, {}, runtime.now())
    with runtime.sessions() as s:
        delivery = s.scalars(select(WebhookDelivery)).one()
    with transaction(runtime.sessions) as s:
        s.get(WebhookDelivery, delivery.id).state = "failed"  # type: ignore[union-attr]
    page = ada.get(f"/integrations/webhooks/{row.id}").get_data(as_text=True)
    assert delivery.message_id in page and "Send again" in page
    assert ada.post(f"/integrations/webhooks/deliveries/{delivery.id}/send-again").status_code == 303
    with runtime.sessions() as s:
        again = s.get(WebhookDelivery, delivery.id)
        assert again is not None and again.state == "pending" and again.message_id == delivery.message_id
    assert ada.client.post(f"/integrations/webhooks/deliveries/{delivery.id}/send-again").status_code == 400
    missing = ada.post("/integrations/webhooks/deliveries/999/send-again", follow_redirects=True)
    assert "no delivery 999" in missing.get_data(as_text=True)
