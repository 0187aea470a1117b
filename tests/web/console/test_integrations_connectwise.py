"""The ConnectWise page (admins only: dead letters, Send again) and ConnectWise's callback bringing a status back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from integrations import bridge
from integrations.connectwise import ConnectWise, load_config
from integrations.psa_models import PsaLink, PsaOperation
from runtime import Runtime
from settings import Settings
from testing.connectwise_standin import ConnectWiseStandIn, running
from tests.web.conftest import Console
from ticketing import lifecycle
from ticketing.db import transaction
from ticketing.models import AuditEntry

KEYS = {"company": "itechsol", "public_key": "pubKey77", "private_key": "privKey99secret", "client_id": "c1-d2-e3"}
SECRET = "cw-callback-7f3a9b"


@pytest.fixture
def standin() -> Iterator[ConnectWiseStandIn]:
    """The stand-in, serving."""
    server = ConnectWiseStandIn(**KEYS, board_id=3)
    with running(server):
        yield server


@pytest.fixture(autouse=True)
def configured(app: Flask, runtime: Runtime, standin: ConnectWiseStandIn, tmp_path: Path) -> Settings:
    """The app's settings with a ConnectWise file pointing at the stand-in."""
    path = tmp_path / "connectwise.toml"
    lines = [f'{k} = "{v}"' for k, v in KEYS.items()]
    lines += [f'site = "{standin.url}"', "board_id = 3", "default_company_id = 19297", f'callback_secret = "{SECRET}"']
    path.write_text("\n".join(lines) + "\n")
    runtime.settings = runtime.settings.with_overrides(connectwise_file=path)
    return runtime.settings


@pytest.fixture
def psa(runtime: Runtime, standin: ConnectWiseStandIn) -> ConnectWise:
    """The adapter the app uses, the stand-in's clock the test's."""
    standin.clock = runtime.now
    return ConnectWise(load_config(runtime.settings.connectwise_file))  # type: ignore[arg-type]


@pytest.fixture
def admin(app: Flask, users: dict[str, str]) -> Console:
    """Signed in as ada, the admin."""
    c = Console(app.test_client())
    assert c.login("ada").status_code == 303
    return c


def _synced_ticket(runtime: Runtime, psa: ConnectWise, open_ticket) -> tuple[int, int]:  # noqa: ANN001
    number = open_ticket(source="email", summary="VPN down")
    import runtime as rt_module

    rt_module.install(runtime)
    try:
        bridge.sync(psa)
    finally:
        rt_module.install(None)
    with runtime.sessions() as s:
        link = s.scalars(select(PsaLink)).one()
        return number, int(link.external_id)


def test_only_admins_see_the_page(console: Console, admin: Console, anonymous: Console) -> None:
    assert console.get("/integrations/connectwise").status_code == 403
    assert anonymous.get("/integrations/connectwise").status_code in (302, 303, 401)
    page = admin.get("/integrations/connectwise")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "board 3" in text and "Nothing failed." in text
    for secret in (*KEYS.values(), SECRET):
        assert secret not in text


def test_a_dead_letter_is_listed_and_sent_again(
    runtime: Runtime, admin: Console, console: Console, psa: ConnectWise, standin: ConnectWiseStandIn, open_ticket
) -> None:  # noqa: ANN001
    standin.companies.clear()
    number = open_ticket(source="email", summary="Printer offline")
    import runtime as rt_module

    rt_module.install(runtime)
    try:
        bridge.sync(psa, poll_changes=False)
        text = admin.get("/integrations/connectwise").get_data(as_text=True)
        assert f"#{number}" in text and "company not found" in text and "Send again" in text
        shown = console.get(f"/tickets/{number}").get_data(as_text=True)  # on the ticket, for every coordinator
        assert "psa failed" in shown and "company not found" in shown
        with runtime.sessions() as s:
            op_id = s.scalars(select(PsaOperation.id).where(PsaOperation.state == "dead")).one()
        assert console.post(f"/integrations/connectwise/operations/{op_id}/send-again").status_code == 403
        standin.companies[19297] = "Catchall"
        assert admin.post(f"/integrations/connectwise/operations/{op_id}/send-again").status_code == 303
        again = admin.post(f"/integrations/connectwise/operations/{op_id}/send-again", follow_redirects=True)
        assert "not waiting to be sent again" in again.get_data(as_text=True)
        bridge.sync(psa, poll_changes=False)
    finally:
        rt_module.install(None)
    assert [t["summary"] for t in standin.created()] == [f"#{number} Printer offline"]
    assert "Nothing failed." in admin.get("/integrations/connectwise").get_data(as_text=True)


def test_the_callback_brings_a_status_changed_in_connectwise_back(
    runtime: Runtime, app: Flask, psa: ConnectWise, standin: ConnectWiseStandIn, open_ticket
) -> None:  # noqa: ANN001
    number, external = _synced_ticket(runtime, psa, open_ticket)
    client = app.test_client()
    standin.set_status(external, "In Progress")
    body = {"MessageId": "m1", "Action": "updated", "Type": "ticket", "ID": external, "Entity": "{}"}
    assert client.post("/integrations/connectwise/callback/wrong", json=body).status_code == 404
    assert client.post(f"/integrations/connectwise/callback/{SECRET}x", json=body).status_code == 404
    assert client.post(f"/integrations/connectwise/callback/{SECRET}", data="not json").status_code == 400
    assert client.post(f"/integrations/connectwise/callback/{SECRET}", json={"ID": "1\r\n2"}).status_code == 400
    assert client.post(f"/integrations/connectwise/callback/{SECRET}", json={"ID": 99999}).status_code == 502
    answer = client.post(f"/integrations/connectwise/callback/{SECRET}", json=body)
    assert answer.status_code == 200 and answer.get_json() == {"ticket": external, "status": "in progress"}
    with runtime.sessions() as s:
        ticket = lifecycle.get_ticket(s, number)
        assert ticket.status == "in progress"
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "status changed")).one()
        assert entry.actor == "psa:connectwise"
    # Told twice (ConnectWise retries callbacks): nothing changes the second time.
    again = client.post(f"/integrations/connectwise/callback/{SECRET}", json=body)
    assert again.get_json()["status"] is None


def test_the_callback_is_refused_when_no_secret_is_configured(
    runtime: Runtime, app: Flask, tmp_path: Path, standin: ConnectWiseStandIn
) -> None:
    path = runtime.settings.connectwise_file
    assert path is not None
    path.write_text(path.read_text().replace(f'callback_secret = "{SECRET}"', ""))
    runtime.cache.pop("psa", None)
    assert app.test_client().post("/integrations/connectwise/callback/", json={"ID": 1}).status_code in (404, 405)
    with transaction(runtime.sessions):
        pass
    assert app.test_client().post(f"/integrations/connectwise/callback/{SECRET}", json={"ID": 1}).status_code == 404


def test_the_psa_commands_run_a_pass_list_failures_and_send_again(
    runtime: Runtime, app: Flask, standin: ConnectWiseStandIn, open_ticket
) -> None:  # noqa: ANN001
    standin.clock = runtime.now
    standin.companies.clear()
    number = open_ticket(source="email", summary="Mail bounces")
    cli = app.test_cli_runner()
    assert cli.invoke(args=["psa", "sync"]).exit_code == 0
    listing = cli.invoke(args=["psa", "status"]).output
    assert "failed 1" in listing and f"ticket {number} create" in listing
    for secret in (*KEYS.values(), SECRET):
        assert secret not in listing
    op_id = int(listing.split("failed ", 2)[2].split(":")[0])
    standin.companies[19297] = "Catchall"
    assert cli.invoke(args=["psa", "send-again", str(op_id)]).exit_code == 0
    assert cli.invoke(args=["psa", "send-again", str(op_id)]).exit_code != 0
    assert cli.invoke(args=["psa", "sync"]).exit_code == 0
    assert "linked 1; sent 1; waiting 0; failed 0" in cli.invoke(args=["psa", "status"]).output


def test_the_sweeper_records_the_bridge_job_once_per_new_entry_and_minute(
    runtime: Runtime, standin: ConnectWiseStandIn, open_ticket, clock
) -> None:  # noqa: ANN001
    from ticketing import outbox
    from ticketing.models import OutboxMessage
    from workers.table import job_for

    standin.clock = runtime.now
    open_ticket(source="email", summary="Wi-Fi slow")
    with transaction(runtime.sessions) as s:
        assert bridge.post_sync(s, runtime)
        assert not bridge.post_sync(s, runtime)  # the same entry, the same minute: already recorded
    with runtime.sessions() as s:
        message = s.scalars(select(OutboxMessage).where(OutboxMessage.kind == outbox.PSA_SYNC)).one()
        key, payload = message.key, message.payload
    assert job_for(outbox.PSA_SYNC).function is bridge.sync
    done = bridge.sync(**payload, runtime=runtime)  # as the worker runs it
    assert done["sent"] == 1 and len(standin.created()) == 1
    with runtime.sessions() as s:
        assert s.scalars(select(OutboxMessage).where(OutboxMessage.key == key)).one().completed_at is not None
    clock.advance(minutes=1)
    with transaction(runtime.sessions) as s:
        assert bridge.post_sync(s, runtime)  # a minute later: a pass to read ConnectWise's changes
    runtime.settings = runtime.settings.with_overrides(connectwise_file=None)
    with transaction(runtime.sessions) as s:
        clock.advance(minutes=1)
        assert not bridge.post_sync(s, runtime)  # no PSA configured: nothing recorded
