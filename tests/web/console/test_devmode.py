"""Development mode: strict about where it may send, the local Twilio stand-in, the console's list of what was sent,
the shared simulated clock, and the simulator's plain messages."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis import Redis

from ivr import simulate
from ivr.twilio_standin import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN, TwilioStandIn, read_log
from providers import twilio_rest
from runtime import Runtime
from runtime.devclock import OFFSET_KEY, SharedOffsetClock
from settings import ConfigError, Settings, load_settings
from tests.web.conftest import Console
from web.app import create_app


def test_development_mode_is_off_by_default_and_never_points_at_twilio() -> None:
    assert load_settings({}).dev_mode is False
    with pytest.raises(ConfigError, match="DEV_MODE=true needs TWILIO_API_BASE_URL on this machine"):
        load_settings({"DEV_MODE": "true"})
    with pytest.raises(ConfigError, match="DEV_MODE"):
        load_settings({"DEV_MODE": "true", "TWILIO_API_BASE_URL": "https://api.twilio.com"})
    assert load_settings({"DEV_MODE": "true", "TWILIO_API_BASE_URL": "http://127.0.0.1:8011"}).dev_mode


def test_the_stand_in_answers_the_rest_client_as_twilio_does_and_logs_each_sms_and_call(tmp_path: Path) -> None:
    log = tmp_path / "twilio.jsonl"
    standin = TwilioStandIn(log_path=log, echo=False).start()
    try:
        settings = Settings(
            twilio_account_sid=DEV_ACCOUNT_SID, twilio_auth_token=DEV_AUTH_TOKEN, twilio_api_base_url=standin.base_url
        )
        client = twilio_rest.make_twilio_client(settings)
        sid = twilio_rest.send_sms(client, from_="+18055922500", to="+18055550160", body="P1 CRITICAL: ticket #400127")
        call = twilio_rest.place_call(client, from_="+18055922500", to="+18055550160", url="http://x/twilio/page/call")
        assert sid.startswith("SM") and len(sid) == 34 and call.startswith("CA")
        entries = [json.loads(line) for line in log.read_text().splitlines()]
        assert [(e["kind"], e["to"]) for e in entries] == [("sms", "+18055550160"), ("call", "+18055550160")]
        assert entries[0]["body"] == "P1 CRITICAL: ticket #400127" and entries[0]["sid"] == sid
        assert [e["kind"] for e in read_log(log)] == ["call", "sms"]  # newest first
        # Another account's token is refused, as Twilio would.
        wrong = twilio_rest.make_twilio_client(settings.with_overrides(twilio_auth_token="not-the-token"))
        with pytest.raises(twilio_rest.TwilioSendError):
            twilio_rest.send_sms(wrong, from_="+18055922500", to="+18055550160", body="x")
        assert len(log.read_text().splitlines()) == 2
    finally:
        standin.stop()


def test_the_console_shows_the_development_banner_and_what_the_stand_in_sent(
    runtime: Runtime, users: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "twilio.jsonl"
    log.write_text(
        json.dumps({"at": "2026-11-18T18:00:00+00:00", "kind": "sms", "to": "+18055550160", "body": "P1 CRITICAL #4"})
        + "\n"
    )
    runtime.settings = runtime.settings.with_overrides(
        dev_mode=True, dev_twilio_log=log, dev_mailbox_dir=tmp_path / "mail", dispatch_after_response=False
    )
    console = Console(create_app(runtime=runtime).test_client())
    console.login()
    queue = console.get("/queue").get_data(as_text=True)
    assert "Development mode:" in queue and 'href="/dev/outbox"' in queue
    page = console.get("/dev/outbox").get_data(as_text=True)
    assert "P1 CRITICAL #4" in page and "(805) 555-0160" in page


def test_without_development_mode_there_is_no_banner_and_no_outbox_page(console: Console) -> None:
    console.login()
    assert "Development mode:" not in console.get("/queue").get_data(as_text=True)
    response = console.get("/dev/outbox")
    assert response.status_code == 404 and "Development mode is off" in response.get_data(as_text=True)


def test_one_simulated_clock_for_every_process(redis_url: str) -> None:
    real = datetime(2026, 11, 18, 18, 0, tzinfo=UTC)
    web = SharedOffsetClock(lambda: real, redis_url)
    worker = SharedOffsetClock(lambda: real + timedelta(seconds=2), redis_url)
    assert worker() == real + timedelta(seconds=2)  # no simulated call yet: the real time
    web.move_to(real + timedelta(hours=9))  # a call "at" 03:00 the next day
    assert worker() == real + timedelta(hours=9, seconds=2)
    assert float(Redis.from_url(redis_url).get(OFFSET_KEY) or 0) == 9 * 3600
    # Redis gone: the last known offset holds, nothing raises.
    worker.redis = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.1)
    assert worker() == real + timedelta(hours=9, seconds=2)


def test_the_simulator_says_what_is_wrong_with_its_audio_file(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"no such file: .*missing\.wav"):
        simulate.read_wav(tmp_path / "missing.wav")
    text = tmp_path / "notes.wav"
    text.write_text("not audio")
    with pytest.raises(SystemExit, match="is not a WAV file"):
        simulate.read_wav(text)
    assert simulate.read_wav(Path("samples/voicemail.wav"))[:4] == b"RIFF"


def test_the_simulator_takes_the_development_settings_make_run_wrote(tmp_path: Path) -> None:
    env = tmp_path / "run.env"
    env.write_text("# comment\nTWILIO_AUTH_TOKEN=devtoken\nPUBLIC_BASE_URL=http://127.0.0.1:8000\n")
    assert simulate.dev_environment(env) == {
        "TWILIO_AUTH_TOKEN": "devtoken",
        "PUBLIC_BASE_URL": "http://127.0.0.1:8000",
    }
    assert simulate.dev_environment(tmp_path / "absent.env") == {}
