"""Bad input on every route: oversized bodies, huge numbers, header injection, deep JSON, sign-in abuse."""

from __future__ import annotations

import time
import tracemalloc

import pytest
from flask import Flask

from tests.console.conftest import Console

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
