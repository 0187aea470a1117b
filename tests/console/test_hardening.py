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
