"""pytest plugin: Prism for Twilio's REST API (once per session) and a fresh Twilio test server per test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from testing.twilio_server import PrismMock, PrismUnavailable, TwilioTestServer


@pytest.fixture(scope="session")
def prism() -> Iterator[PrismMock]:
    """A `prism mock --errors` of Twilio's API; fails under CI=true when it cannot start, else skips."""
    mock = PrismMock()
    try:
        mock.start()
    except PrismUnavailable as error:
        if os.environ.get("CI", "").strip().lower() in {"true", "1"}:
            pytest.fail(f"Prism (Twilio API mock) is required in CI and did not start: {error}", pytrace=False)
        pytest.skip(f"Prism (Twilio API mock) unavailable: {error}")
    try:
        yield mock
    finally:
        mock.stop()


@pytest.fixture(scope="session")
def twilio_server(prism: PrismMock) -> Iterator[TwilioTestServer]:
    """One Twilio test server for the session; tests use twilio_api, which resets it."""
    server = TwilioTestServer(prism_url=prism.url).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def twilio_api(twilio_server: TwilioTestServer) -> Iterator[TwilioTestServer]:
    """The Twilio test server with no recorded requests, faults or recordings left from other tests.

    Point the app at it with ``settings.with_overrides(**twilio_api.settings_overrides())``;
    ``base_url``, ``account_sid`` (AC + 32 hex) and ``auth_token`` (32 hex) are attributes.
    """
    twilio_server.reset()
    yield twilio_server
    twilio_server.reset()
