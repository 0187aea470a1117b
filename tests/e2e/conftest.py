"""A live supportline (real HTTP server, database, Redis) and a Twilio simulator calling it."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from rq import SimpleWorker
from werkzeug.serving import make_server

import runtime as rt
from ivr.simulate import MediaServer, TwilioSimulator
from runtime import Runtime, build_runtime
from settings import Settings
from tests.conftest import FixedClock
from web.app import create_app
from workers.dispatch import dispatch_pending

PUBLIC = "https://support.example.com"  # what Twilio calls; the test server sits "behind a proxy"


@dataclass
class Service:
    """The running service, its runtime, and a way to run the worker."""

    runtime: Runtime
    url: str

    def work(self) -> None:
        """Hand the outbox to Redis and run every queued job in-process (SimpleWorker, burst)."""
        rt.install(self.runtime)
        try:
            dispatch_pending(self.runtime)
            SimpleWorker(self.runtime.queues(), connection=self.runtime.redis).work(burst=True)
        finally:
            rt.install(None)


@pytest.fixture
def service_settings(settings: Settings) -> Settings:
    """The live service's settings; modules override this fixture to point at the Twilio test server."""
    return settings


@pytest.fixture
def media(service_settings: Settings) -> Iterator[MediaServer]:
    """Twilio's media URLs, served locally with Basic auth."""
    server = MediaServer(service_settings.twilio_account_sid, service_settings.twilio_auth_token)
    yield server
    server.close()


@pytest.fixture
def live(service_settings: Settings, clock: FixedClock, redis_url: str) -> Iterator[Service]:
    """supportline served over real HTTP on a free port, with the test clock."""
    s = service_settings.with_overrides(public_base_url=PUBLIC, redis_url=redis_url, dispatch_after_response=False)
    runtime = build_runtime(s, clock=clock)
    app = create_app(runtime=runtime)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Service(runtime=runtime, url=f"http://127.0.0.1:{server.server_port}")
    server.shutdown()
    from ticketing.models import Base

    with runtime.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    runtime.close()


@pytest.fixture
def sim(live: Service, media: MediaServer, settings: Settings) -> TwilioSimulator:
    """Twilio's side of the call, signing every request."""
    return TwilioSimulator(
        PUBLIC,
        server_base_url=live.url,
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token,
        media=media,
    )


@pytest.fixture(scope="session")
def voicemail_wav(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real spoken voicemail, 8 kHz mono telephone audio made with espeak-ng and sox."""
    d = tmp_path_factory.mktemp("vm")
    raw, out = d / "raw.wav", d / "vm.wav"
    text = "Hi, this is Dana from Acme Dental. Our file server is down and nobody in the office can work. Please call me back at 805 555 0142."
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(raw), text], check=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(out)], check=True)
    return Path(out).read_bytes()
