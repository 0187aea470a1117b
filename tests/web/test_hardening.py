"""Bad input on every route: oversized bodies, huge numbers, header injection, deep JSON, sign-in abuse."""

from __future__ import annotations

import threading
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from runtime import Runtime
from tests.web.conftest import PASSWORD, Console
from ticketing import accounts
from ticketing.db import transaction
from ticketing.models import SignInFailure, User

EIGHT_MB = b"a=" + b"x" * (8 * 1024 * 1024)


@pytest.mark.parametrize(
    "path",
    ["/twilio/voice", "/twilio/voice/recorded", "/twilio/sms", "/login", "/tickets/400001/note", "/api/tickets"],
)
def test_an_8_mb_body_is_refused_413_at_once_without_being_read(app: Flask, path: str) -> None:
    client = app.test_client()
    tracemalloc.start()
    started = time.perf_counter()
    response = client.post(path, data=EIGHT_MB, content_type="application/x-www-form-urlencoded")
    took = time.perf_counter() - started
    _now, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert response.status_code == 413
    assert "larger than 65536 bytes" in response.get_data(as_text=True)
    print(f"{path}: 413 in {took * 1000:.1f} ms, peak allocation {peak / 1024:.0f} KiB")
    assert peak < 2 * 1024 * 1024  # the body (8 MiB) was never copied or parsed


def test_an_oversized_api_body_gets_a_json_413(app: Flask) -> None:
    response = app.test_client().post("/api/tickets", data=EIGHT_MB, content_type="application/json")
    assert response.status_code == 413 and response.is_json
    assert "larger than" in response.get_json()["error"]


def test_a_normal_console_form_is_still_accepted(console: Console, open_ticket) -> None:  # type: ignore[no-untyped-def]
    number = open_ticket()
    response = console.post(f"/tickets/{number}/note", {"text": "called back " * 500, "note": "called back " * 500})
    assert response.status_code in (200, 302, 303)


NINES = "9" * 30


def test_numbers_of_thirty_nines_are_a_400_or_404_never_a_500(console: Console, api_token: str) -> None:
    for path in (f"/tickets/{NINES}", f"/go?number={NINES}", f"/queue?client={NINES}", f"/queue/rows?client={NINES}"):
        response = console.get(path, follow_redirects=True)
        assert response.status_code in (200, 400, 404), (path, response.status_code)
    auth = {"Authorization": f"Bearer {api_token}"}
    for path in (f"/api/tickets/{NINES}", f"/api/tickets?client_id={NINES}"):
        response = console.client.get(path, headers=auth)
        assert response.status_code in (400, 404) and response.is_json, (path, response.status_code)
    response = console.client.patch(f"/api/tickets/{NINES}", json={"note": "x"}, headers=auth)
    assert response.status_code in (400, 404) and response.is_json


@pytest.mark.parametrize("target", ["/queue\r\nSet-Cookie: x=1", "/queue\nLocation: https://evil.example/", "/q\x00"])
def test_a_sign_in_link_with_cr_lf_in_next_is_a_400_page(
    anonymous: Console, users: dict[str, str], target: str
) -> None:
    page = anonymous.client.get("/login", query_string={"next": target})
    assert page.status_code == 400 and "This sign-in link is damaged" in page.get_data(as_text=True)
    posted = anonymous.login(next=target)
    assert posted.status_code == 400
    assert "Set-Cookie: x" not in str(posted.headers) and "evil.example" not in posted.headers.get("Location", "")


def test_deeply_nested_json_is_a_json_400(app: Flask, api_token: str) -> None:
    client = app.test_client()
    auth = {"Authorization": f"Bearer {api_token}", "Content-Type": "application/json"}
    deep = "[" * 20000 + "]" * 20000
    for body in (deep, '{"summary": ' + deep + "}"):
        response = client.post("/api/tickets", data=body, headers=auth)
        assert response.status_code == 400 and response.is_json
        assert response.get_json()["error"]


# --- sign-in ---------------------------------------------------------------------------------------------


def _sign_in(app: Flask, username: str, password: str, address: str) -> tuple[int, str]:
    client = app.test_client()
    form = client.get("/login", environ_overrides={"REMOTE_ADDR": address}).get_data(as_text=True)
    token = form.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    response = client.post(
        "/login",
        data={"csrf_token": token, "username": username, "password": password},
        environ_overrides={"REMOTE_ADDR": address},
    )
    text = response.get_data(as_text=True)
    marker = 'class="flash flash-error" role="alert">'
    error = text.split(marker, 1)[1].split("<", 1)[0] if marker in text else ""
    return response.status_code, error


def test_a_locked_account_and_an_unknown_name_get_the_same_answer(app: Flask, users: dict[str, str]) -> None:
    for _ in range(5):
        _sign_in(app, "dana", "guess", "10.0.0.1")
    answers = {
        "locked, right password": _sign_in(app, "dana", PASSWORD, "10.0.0.1"),
        "locked, wrong password": _sign_in(app, "dana", "guess", "10.0.0.1"),
        "unknown name": _sign_in(app, "nobody", "guess", "10.0.0.1"),
        "unknown name, elsewhere": _sign_in(app, "nobody", "guess", "10.0.0.2"),
        "wrong password, elsewhere": _sign_in(app, "dana", "guess", "10.0.0.2"),
    }
    assert len(set(answers.values())) == 1, answers
    status, error = answers["unknown name"]
    assert status == 401 and "Wrong username or password" in error and "locked" not in error


def test_five_failures_from_one_address_do_not_lock_the_account_for_everyone(
    app: Flask, users: dict[str, str], runtime: Runtime
) -> None:
    for _ in range(5):
        assert _sign_in(app, "ada", "guess", "203.0.113.9")[0] == 401
    assert _sign_in(app, "ada", PASSWORD, "203.0.113.9")[0] == 401  # locked there
    assert _sign_in(app, "ada", PASSWORD, "192.0.2.10")[0] == 303  # the admin elsewhere signs in
    with runtime.sessions() as s:
        ada = s.scalars(select(User).where(User.username == "ada")).one()
        assert accounts.locked_addresses(s, ada, now=runtime.now()) == ["203.0.113.9"]


def test_an_address_that_keeps_failing_is_throttled_for_every_account(
    app: Flask, users: dict[str, str], runtime: Runtime
) -> None:
    for i in range(runtime.settings.console_signin_attempts_per_address):
        assert _sign_in(app, f"guess{i}", "guess", "198.51.100.7")[0] == 401
    assert _sign_in(app, "eli", PASSWORD, "198.51.100.7")[0] == 401  # throttled, even with the right password
    assert _sign_in(app, "eli", PASSWORD, "198.51.100.8")[0] == 303


def test_the_lock_out_counter_holds_under_20_parallel_attempts(runtime: Runtime, users: dict[str, str]) -> None:
    limits = accounts.SignInLimits(
        account_failures=5,
        account_lockout=timedelta(minutes=15),
        address_failures=100,
        address_window=timedelta(minutes=15),
    )
    attempts = 20
    barrier = threading.Barrier(attempts)

    def attempt(_i: int) -> str:
        barrier.wait()
        with transaction(runtime.sessions) as s:  # as the sign-in view: the refusal commits its count
            try:
                accounts.authenticate(s, "dana", "guess", now=runtime.now(), address="10.9.9.9", limits=limits)
            except accounts.LoginRefused as exc:
                return str(exc)
        return "signed in"

    with ThreadPoolExecutor(attempts) as pool:
        answers = list(pool.map(attempt, range(attempts)))
    assert answers == [accounts.REFUSED] * attempts
    with runtime.sessions() as s:
        rows = {r.key: r for r in s.scalars(select(SignInFailure)).all()}
        dana = s.scalars(select(User).where(User.username == "dana")).one()
    # Attempts that found the account already locked are not counted; every other one is, exactly.
    counted = rows["user:dana@10.9.9.9"].failures
    assert counted == rows["address:10.9.9.9"].failures == dana.failed_logins
    assert counted >= 5 and rows["user:dana@10.9.9.9"].locked_until is not None
    with transaction(runtime.sessions) as s:
        with pytest.raises(accounts.LoginRefused):
            accounts.authenticate(s, "dana", PASSWORD, now=runtime.now(), address="10.9.9.9", limits=limits)
        assert accounts.authenticate(s, "dana", PASSWORD, now=runtime.now(), address="10.9.9.8", limits=limits)


def test_behind_a_trusted_proxy_the_client_address_comes_from_x_forwarded_for(
    runtime: Runtime, users: dict[str, str]
) -> None:
    from web.app import create_app

    runtime.settings = runtime.settings.with_overrides(trusted_proxy_hops=1, dispatch_after_response=False)
    app = create_app(runtime=runtime)
    client = app.test_client()
    for _ in range(5):
        form = client.get("/login").get_data(as_text=True)
        token = form.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        client.post(
            "/login",
            data={"csrf_token": token, "username": "dana", "password": "guess"},
            headers={"X-Forwarded-For": "203.0.113.50"},
        )
    with runtime.sessions() as s:
        dana = s.scalars(select(User).where(User.username == "dana")).one()
        assert accounts.locked_addresses(s, dana, now=runtime.now()) == ["203.0.113.50"]
