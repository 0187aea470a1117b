"""API tokens under load and by scope: rate limits counted in the real Redis, read-only tokens."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from flask import Flask
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import OperationalError

from runtime import Runtime
from settings import ROOT, ConfigError, load_settings
from tests.conftest import POSTGRES_URL, unavailable
from tests.web.conftest import ticket
from ticketing import accounts
from ticketing.db import normalize_url, transaction
from ticketing.models import ApiToken, Ticket
from web.app import create_app


def bearer(token: str) -> dict[str, str]:
    """The Authorization header of a token."""
    return {"Authorization": f"Bearer {token}"}


def make_token(runtime: Runtime, name: str, scope: str = accounts.WRITE) -> str:
    """A new live token."""
    with transaction(runtime.sessions) as s:
        _row, token = accounts.create_api_token(s, name, now=runtime.now(), created_by="tests", scope=scope)
    return token


def limited(runtime: Runtime, **rates: str) -> Flask:
    """The app with other rate limits (read at each request, so they apply at once)."""
    runtime.settings = runtime.settings.with_overrides(**rates)
    return create_app(runtime=runtime)


# --- rate limits -----------------------------------------------------------------------------------------


def test_a_flood_of_wrong_tokens_from_one_address_is_cut_off_with_429_and_retry_after(
    app: Flask, api_token: str
) -> None:
    client = app.test_client()
    wrong = api_token[:-4] + "abcd"
    answers = [client.get("/api/tickets", headers=bearer(wrong)) for _ in range(300)]
    statuses = [r.status_code for r in answers]
    # API_AUTH_FAILURE_LIMIT's default: 20 failures a minute from one address, then 429 for the rest.
    assert statuses == [401] * 20 + [429] * 280
    refused = answers[-1]
    assert refused.mimetype == "application/json"
    assert "too many requests" in refused.get_json()["error"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # While the address is refused even the right token is not looked at (a guess that hit is not confirmed).
    assert client.get("/api/tickets", headers=bearer(api_token)).status_code == 429
    assert client.get("/api/tickets").status_code == 429  # no token at all is one more failure


def test_behind_the_trusted_proxy_failures_count_against_the_real_client_address(
    runtime: Runtime, redis_url: str, api_token: str
) -> None:
    app = limited(runtime, api_auth_failure_limit="5/minute", trusted_proxy_hops=1)
    client = app.test_client()
    attacker, colleague = {"X-Forwarded-For": "203.0.113.9"}, {"X-Forwarded-For": "198.51.100.4"}
    for _ in range(5):
        assert client.get("/api/tickets", headers={**bearer("sl_wrong"), **attacker}).status_code == 401
    assert client.get("/api/tickets", headers={**bearer("sl_wrong"), **attacker}).status_code == 429
    assert client.get("/api/tickets", headers={**bearer(api_token), **colleague}).status_code == 200
    assert client.get("/api/tickets", headers=bearer("sl_wrong") | colleague).status_code == 401


def test_without_a_trusted_proxy_a_forged_forwarded_address_escapes_no_limit(runtime: Runtime, redis_url: str) -> None:
    client = limited(runtime, api_auth_failure_limit="5/minute").test_client()
    statuses = [
        client.get("/api/tickets", headers={**bearer("sl_wrong"), "X-Forwarded-For": f"203.0.113.{i}"}).status_code
        for i in range(8)
    ]
    assert statuses == [401] * 5 + [429] * 3


def test_a_token_over_its_rate_gets_429_and_other_tokens_go_on(runtime: Runtime, redis_url: str) -> None:
    client = limited(runtime, api_rate_limit="10/minute").test_client()
    busy, quiet = make_token(runtime, "busy"), make_token(runtime, "quiet")
    answers = [client.get("/api/tickets", headers=bearer(busy)) for _ in range(10)]
    assert [r.status_code for r in answers] == [200] * 10
    assert [int(r.headers["RateLimit-Remaining"]) for r in answers] == list(range(9, -1, -1))
    assert answers[0].headers["RateLimit-Limit"] == "10"
    over = client.get("/api/tickets", headers=bearer(busy))
    assert over.status_code == 429 and over.mimetype == "application/json"
    assert "at most 10 per 1 minute requests per token" in over.get_json()["error"]
    assert 1 <= int(over.headers["Retry-After"]) <= 60
    assert client.get("/api/tickets", headers=bearer(quiet)).status_code == 200


def test_every_web_process_shares_one_count_in_redis(runtime: Runtime, redis_url: str) -> None:
    first = limited(runtime, api_rate_limit="6/minute").test_client()
    # A second web process: its own runtime, database engine and Redis connections.
    other = create_app(runtime.settings, clock=runtime.clock)
    second = other.test_client()
    token = make_token(runtime, "psa")
    try:
        for client in (first, second, first, second, first, second):
            assert client.get("/api/tickets", headers=bearer(token)).status_code == 200
        assert second.get("/api/tickets", headers=bearer(token)).status_code == 429
        assert first.get("/api/tickets", headers=bearer(token)).status_code == 429
    finally:
        other.extensions["supportline"].close()


def test_a_refused_token_is_let_through_again_once_its_window_has_passed(runtime: Runtime, redis_url: str) -> None:
    client = limited(runtime, api_rate_limit="2/second").test_client()
    token = make_token(runtime, "psa")
    assert [client.get("/api/tickets", headers=bearer(token)).status_code for _ in range(2)] == [200, 200]
    refused = client.get("/api/tickets", headers=bearer(token))
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    deadline = time.monotonic() + 10
    while (answer := client.get("/api/tickets", headers=bearer(token))).status_code == 429:
        assert time.monotonic() < deadline, "the window never let the token through again"
        time.sleep(0.05)
    assert answer.status_code == 200


def test_the_api_still_answers_when_redis_is_down_trying_redis_once_per_request(
    runtime: Runtime, api_token: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = limited(runtime, redis_url="redis://127.0.0.1:9/0")  # nothing listens there
    client = app.test_client()
    with caplog.at_level(logging.WARNING, logger="web.api.throttle"):
        assert client.get("/api/tickets", headers=bearer(api_token)).status_code == 200
        assert client.get("/api/tickets", headers=bearer("sl_wrong")).status_code == 401
    # One failed try per request: a Redis that does not answer costs one timeout, not one per count.
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "API rate limits not counted (Redis unavailable)"
    ] * 2


# --- read-only tokens ------------------------------------------------------------------------------------


def test_a_read_only_token_made_by_the_cli_reads_but_every_write_is_refused_with_403(
    app: Flask, runtime: Runtime, open_ticket: Callable[..., int]
) -> None:
    cli = app.test_cli_runner()
    made = cli.invoke(args=["api-token", "create", "reports", "--scope", "read"])
    assert made.exit_code == 0 and "read-only" in made.output
    token = made.output.strip().splitlines()[-1]
    assert "reports" in (listed := cli.invoke(args=["api-token", "list"]).output) and " read " in listed
    number = open_ticket(priority="P3")
    before = ticket(runtime, number)
    client = app.test_client()
    assert client.get("/api/tickets", headers=bearer(token)).status_code == 200
    assert client.get(f"/api/tickets/{number}", headers=bearer(token)).status_code == 200
    for method, path, body in (
        ("post", "/api/tickets", {"summary": "Printer offline"}),
        ("patch", f"/api/tickets/{number}", {"priority": "P1", "reason": "down"}),
        ("patch", f"/api/tickets/{number}", {"note": "on site"}),
    ):
        refused = getattr(client, method)(path, headers=bearer(token), json=body)
        assert refused.status_code == 403 and refused.mimetype == "application/json", (method, path)
        assert "read-only" in refused.get_json()["error"]
    after = ticket(runtime, number)
    assert (after.priority, len(after.audit)) == (before.priority, len(before.audit))
    with runtime.sessions() as s:
        assert s.scalars(select(Ticket)).all() == [s.get(Ticket, after.id)]
    # A method no route has is still 405, whatever the token.
    assert client.delete(f"/api/tickets/{number}", headers=bearer(token)).status_code == 405


def test_a_write_token_may_still_open_and_change_tickets(
    app: Flask, runtime: Runtime, open_ticket: Callable[..., int]
) -> None:
    made = app.test_cli_runner().invoke(args=["api-token", "create", "psa", "--scope", "write"])
    token = made.output.strip().splitlines()[-1]
    number = open_ticket(priority="P3")
    client = app.test_client()
    assert client.post("/api/tickets", headers=bearer(token), json={"summary": "Printer offline"}).status_code == 201
    assert client.patch(f"/api/tickets/{number}", headers=bearer(token), json={"note": "on site"}).status_code == 200


def test_an_unknown_scope_is_refused(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["api-token", "create", "x", "--scope", "admin"])
    assert result.exit_code != 0 and "admin" in result.output


@pytest.fixture(params=["sqlite", "postgresql"])
def database_at_0008(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Config]]:
    """A database migrated to the revision before token scopes, and the Alembic config to go on."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/before-scopes.db"
        schema = None
    else:
        schema = f"scopes_{os.getpid()}"
        base = normalize_url(POSTGRES_URL)
        admin = create_engine(base)
        try:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
                conn.execute(text(f"CREATE SCHEMA {schema}"))
        except OperationalError:
            unavailable(f"PostgreSQL at {POSTGRES_URL}")
        finally:
            admin.dispose()
        url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, "0008")
    yield url, config
    if schema is not None:
        admin = create_engine(normalize_url(POSTGRES_URL))
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


def test_tokens_made_before_scopes_keep_full_access(database_at_0008: tuple[str, Config]) -> None:
    url, config = database_at_0008
    engine = create_engine(normalize_url(url))
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO api_tokens (name, token_hash, prefix, created_at, created_by) "
                "VALUES ('psa', :hash, 'sl_abc', :at, 'cli')"
            ),
            {"hash": "a" * 64, "at": datetime(2026, 11, 1)},
        )
    command.upgrade(config, "head")
    with engine.connect() as conn:
        assert conn.execute(select(ApiToken.name, ApiToken.scope)).all() == [("psa", accounts.WRITE)]
    command.downgrade(config, "0008")
    engine.dispose()


# --- settings --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["API_RATE_LIMIT", "API_AUTH_FAILURE_LIMIT"])
@pytest.mark.parametrize("raw", ["lots", "0/minute", "5/minute;10/hour", "-3/second"])
def test_a_malformed_rate_stops_the_service_naming_the_setting(key: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=key):
        load_settings({key: raw})


def test_rates_are_read_from_the_environment() -> None:
    s = load_settings({"API_RATE_LIMIT": "1000 per 10 minutes", "API_AUTH_FAILURE_LIMIT": "5/second"})
    assert (s.api_rate_limit, s.api_auth_failure_limit) == ("1000 per 10 minutes", "5/second")
    assert (load_settings({}).api_rate_limit, load_settings({}).api_auth_failure_limit) == ("300/minute", "20/minute")
    hsts = load_settings({"HSTS_MAX_AGE_SECONDS": "600", "HSTS_INCLUDE_SUBDOMAINS": "true"})
    assert (hsts.hsts_max_age_seconds, hsts.hsts_include_subdomains) == (600, True)
