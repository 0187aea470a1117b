"""The console's monitoring alerts page: admins issue, see and revoke routing keys; nobody else may."""

from __future__ import annotations

import re

from flask import Flask

from runtime import Runtime
from tests.web.conftest import PASSWORD, Console
from ticketing.db import transaction
from ticketing.models import AlertKey, Client

URL = "/integrations/events/v2/enqueue"


def _admin(app: Flask) -> Console:
    c = Console(app.test_client())
    assert c.login("ada", PASSWORD).status_code == 303
    return c


def _client(runtime: Runtime) -> int:
    with transaction(runtime.sessions) as s:
        client = Client(name="Acme <Dental>")
        s.add(client)
        s.flush()
        return client.id


def test_an_admin_issues_a_key_shown_once_that_works_until_revoked(
    app: Flask, runtime: Runtime, users: dict[str, str]
) -> None:
    client_id = _client(runtime)
    admin = _admin(app)
    page = admin.get("/integrations/alerts")
    assert page.status_code == 200 and "Acme &lt;Dental&gt;" in page.get_data(as_text=True)
    issued = admin.post("/integrations/alerts", {"client": str(client_id), "name": "Datto RMM"})
    assert issued.status_code == 200
    raw = re.search(r'<code id="issued-key">([0-9a-f]{32})</code>', issued.get_data(as_text=True))
    assert raw is not None
    key = raw.group(1)
    assert key not in admin.get("/integrations/alerts").get_data(as_text=True)  # shown once only
    event = {"routing_key": key, "event_action": "trigger",
             "payload": {"summary": "UPS on battery", "source": "ups-1", "severity": "warning"}}  # fmt: skip
    assert app.test_client().post(URL, json=event).status_code == 202
    with runtime.sessions() as s:
        key_id = s.query(AlertKey.id).scalar()
    assert admin.post(f"/integrations/alerts/{key_id}/revoke").status_code == 303
    assert "revoked" in admin.get("/integrations/alerts").get_data(as_text=True)
    assert app.test_client().post(URL, json=event).status_code == 400


def test_bad_input_is_refused_with_a_message(app: Flask, runtime: Runtime, users: dict[str, str]) -> None:
    client_id = _client(runtime)
    admin = _admin(app)
    blank = admin.post("/integrations/alerts", {"client": str(client_id), "name": "\r\n"})
    assert blank.status_code == 400 and "needs a name" in blank.get_data(as_text=True)
    stranger = admin.post("/integrations/alerts", {"client": "99999", "name": "x"})
    assert stranger.status_code == 400 and "nknown client" in stranger.get_data(as_text=True)
    assert admin.post("/integrations/alerts/424242/revoke").status_code == 400
    with runtime.sessions() as s:
        assert s.query(AlertKey).count() == 0


def test_only_admins_see_or_issue_keys(app: Flask, runtime: Runtime, console: Console, anonymous: Console) -> None:
    client_id = _client(runtime)
    assert console.get("/integrations/alerts").status_code == 403  # dana, a coordinator
    assert console.post("/integrations/alerts", {"client": str(client_id), "name": "x"}).status_code == 403
    assert anonymous.get("/integrations/alerts").status_code == 302
    with runtime.sessions() as s:
        assert s.query(AlertKey).count() == 0
