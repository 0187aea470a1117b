"""HSTS: Strict-Transport-Security on answers to HTTPS requests (behind the trusted proxy), never over plain HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask

from runtime import Runtime
from settings import ROOT
from testing.database import migrate
from testing.stack import wait_until
from testing.twilio_server import free_port
from web.app import create_app

PATHS = ("/api/openapi.yaml", "/login", "/healthz", "/api/tickets")
HSTS = "Strict-Transport-Security"


def app_behind(runtime: Runtime, hops: int, **overrides: object) -> Flask:
    """The web app with ``hops`` trusted proxies in front of it."""
    runtime.settings = runtime.settings.with_overrides(
        trusted_proxy_hops=hops, dispatch_after_response=False, **overrides
    )
    return create_app(runtime=runtime)


def test_behind_the_trusted_proxy_an_https_request_gets_hsts(runtime: Runtime) -> None:
    client = app_behind(runtime, 1).test_client()
    for path in PATHS:
        response = client.get(path, headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"})
        assert response.headers.get(HSTS) == "max-age=31536000", path


def test_hsts_is_never_sent_over_plain_http(runtime: Runtime) -> None:
    client = app_behind(runtime, 1).test_client()
    for path in PATHS:
        assert HSTS not in client.get(path).headers, path
        assert HSTS not in client.get(path, headers={"X-Forwarded-Proto": "http"}).headers, path


def test_without_a_trusted_proxy_a_forwarded_https_claim_is_not_believed(runtime: Runtime) -> None:
    client = app_behind(runtime, 0).test_client()
    for path in PATHS:
        assert HSTS not in client.get(path, headers={"X-Forwarded-Proto": "https"}).headers, path


def test_only_the_proxy_nearest_the_app_is_believed_about_https(runtime: Runtime) -> None:
    # A client that sends its own X-Forwarded-Proto: https over plain HTTP to the proxy, which appends "http".
    client = app_behind(runtime, 1).test_client()
    assert HSTS not in client.get("/login", headers={"X-Forwarded-Proto": "https, http"}).headers


def test_hsts_max_age_and_subdomains_come_from_the_settings(runtime: Runtime) -> None:
    client = app_behind(runtime, 1, hsts_max_age_seconds=600, hsts_include_subdomains=True).test_client()
    response = client.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert response.headers[HSTS] == "max-age=600; includeSubDomains"
    off = app_behind(runtime, 1, hsts_max_age_seconds=0).test_client()
    assert HSTS not in off.get("/login", headers={"X-Forwarded-Proto": "https"}).headers


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """The web process as the Procfile runs it (gunicorn.conf.py), on SQLite, without a trusted proxy."""
    database = f"sqlite:///{tmp_path / 'web.db'}"
    migrate(database)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database,
        "REDIS_URL": "redis://127.0.0.1:9/0",  # nothing the pages asked for here needs Redis
        "PUBLIC_BASE_URL": "https://support.example.com",
        "SECRET_KEY": "https-test-" + "x" * 32,
        "RECORDINGS_DIR": str(tmp_path / "recordings"),
        "WEB_CONCURRENCY": "1",
        "TRUSTED_PROXY_HOPS": "0",
    }
    gunicorn_bin = str(Path(sys.executable).parent / "gunicorn")
    argv = [gunicorn_bin, "-c", str(ROOT / "gunicorn.conf.py"), "-b", f"127.0.0.1:{port}", "wsgi:app"]
    process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:

        def answers() -> bool:
            assert process.poll() is None, "gunicorn exited"
            return requests.get(url + "/healthz", timeout=1).status_code > 0

        wait_until(answers, 60, "gunicorn to answer")
        yield url, env
    finally:
        process.terminate()
        process.wait(15)


def test_gunicorn_itself_takes_no_forwarded_https_claim_from_a_local_client(
    gunicorn: tuple[str, dict[str, str]],
) -> None:
    # gunicorn's default believes X-Forwarded-Proto from 127.0.0.1; only TRUSTED_PROXY_HOPS may decide.
    url, _env = gunicorn
    response = requests.get(url + "/login", headers={"X-Forwarded-Proto": "https"}, timeout=10)
    assert response.status_code == 200 and HSTS not in response.headers
