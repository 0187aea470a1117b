"""Development mode's one clock seen from everywhere: `time show|reset`, the console's SIMULATED banner, the
stand-in's /dev/outbox stamps, the simulator's relative --at; and /dev/outbox's decoded mail bodies."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from redis import Redis

from ivr import simulate
from ivr.twilio_standin import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN, TwilioStandIn
from providers import twilio_rest
from runtime import Runtime, system_clock
from runtime.devclock import OFFSET_KEY, SharedOffsetClock
from settings import Settings
from tests.web.conftest import Console
from web.app import create_app

LA = ZoneInfo("America/Los_Angeles")


@pytest.fixture
def dev_runtime(runtime: Runtime, redis_url: str, tmp_path: Path) -> Runtime:
    """The test runtime in development mode with simulated time, on the test's Redis database."""
    runtime.settings = runtime.settings.with_overrides(
        dev_mode=True,
        allow_simulated_time=True,
        redis_url=redis_url,
        dev_twilio_log=tmp_path / "twilio.jsonl",
        dev_mailbox_dir=tmp_path / "mail",
        dispatch_after_response=False,
    )
    return runtime


def test_time_show_and_reset_read_and_clear_the_offset_every_process_shares(
    dev_runtime: Runtime, redis_url: str
) -> None:
    cli = create_app(runtime=dev_runtime).test_cli_runner()
    shown = cli.invoke(args=["time", "show"])
    assert shown.exit_code == 0 and "no simulated time set" in shown.output
    SharedOffsetClock(system_clock, redis_url).move_to(system_clock() + timedelta(days=3))
    shown = cli.invoke(args=["time", "show"])
    assert shown.exit_code == 0 and shown.output.startswith("SIMULATED ") and "+72.00 h" in shown.output
    reset = cli.invoke(args=["time", "reset"])
    assert reset.exit_code == 0 and "the real clock again" in reset.output
    assert Redis.from_url(redis_url).get(OFFSET_KEY) is None
    again = cli.invoke(args=["time", "reset"])
    assert again.exit_code == 0 and "no simulated time was set" in again.output


def test_time_commands_refuse_outside_development_mode(runtime: Runtime) -> None:
    result = create_app(runtime=runtime).test_cli_runner().invoke(args=["time", "reset"])
    assert result.exit_code != 0 and "simulated time is off here" in result.output


def test_the_console_shows_the_simulated_time_while_an_offset_is_set(
    dev_runtime: Runtime, users: dict[str, str], redis_url: str
) -> None:
    console = Console(create_app(runtime=dev_runtime).test_client())
    assert console.login().status_code == 303
    assert "SIMULATED" not in console.get("/queue").get_data(as_text=True)
    at = datetime(2031, 1, 15, 19, 0, tzinfo=LA)
    SharedOffsetClock(system_clock, redis_url).move_to(at)
    page = console.get("/queue").get_data(as_text=True)
    assert "SIMULATED Wed Jan 15 19:0" in page and "bin/supportline time reset" in page
    SharedOffsetClock(system_clock, redis_url).reset()
    assert "SIMULATED" not in console.get("/queue").get_data(as_text=True)


def test_the_stand_in_stamps_what_it_was_sent_with_the_service_clock(tmp_path: Path, redis_url: str) -> None:
    clock = SharedOffsetClock(system_clock, redis_url)
    clock.move_to(datetime(2031, 1, 15, 19, 0, tzinfo=LA))
    log = tmp_path / "twilio.jsonl"
    standin = TwilioStandIn(log_path=log, echo=False, clock=clock).start()
    try:
        settings = Settings(
            twilio_account_sid=DEV_ACCOUNT_SID, twilio_auth_token=DEV_AUTH_TOKEN, twilio_api_base_url=standin.base_url
        )
        twilio_rest.send_sms(
            twilio_rest.make_twilio_client(settings), from_="+18055922500", to="+18055550160", body="P1"
        )
    finally:
        standin.stop()
    at = datetime.fromisoformat(json.loads(log.read_text().splitlines()[0])["at"])
    assert abs(at - datetime(2031, 1, 15, 19, 0, tzinfo=LA)) < timedelta(minutes=1)


def test_dev_outbox_shows_each_mail_body_decoded_with_whole_links(dev_runtime: Runtime, users: dict[str, str]) -> None:
    link = "https://support.example.com/portal/sign-in/" + "x" * 90 + "?next=%2Ftickets%2F400001"
    msg = EmailMessage()
    msg["To"] = "dana@acme-dental.example"
    msg["From"] = "help@example.com"
    msg["Subject"] = "Your sign-in link"
    msg.set_content(f"Hello Dana =, café.\n\nSign in: {link}.\n", cte="quoted-printable")
    maildir = dev_runtime.settings.dev_mailbox_dir / "new"
    maildir.mkdir(parents=True)
    raw = msg.as_bytes()
    assert link.encode() not in raw  # quoted-printable breaks it across lines in the file
    (maildir / "1.eml").write_bytes(raw)
    (maildir / "2.eml").write_bytes(b"To: x@example.com\r\nSubject: empty\r\n\r\n")
    console = Console(create_app(runtime=dev_runtime).test_client())
    console.login()
    page = console.get("/dev/outbox").get_data(as_text=True)
    assert f'<a href="{link.replace("&", "&amp;")}">' in page
    assert "Hello Dana =, café." in page and "Sign in: <a" in page and "</a>." in page
    assert "=3D" not in page and "=\n" not in page
    assert "<b>empty</b>" in page


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tomorrow 19:00", datetime(2031, 1, 16, 19, 0, tzinfo=LA)),
        ("today 18:30", datetime(2031, 1, 15, 18, 30, tzinfo=LA)),
        ("Wed 19:00", datetime(2031, 1, 22, 19, 0, tzinfo=LA)),  # the next Wednesday, not today
        ("friday 07:05", datetime(2031, 1, 17, 7, 5, tzinfo=LA)),
        ("2026-11-18T19:00:00-08:00", datetime(2026, 11, 18, 19, 0, tzinfo=LA)),
    ],
)
def test_the_simulator_counts_a_relative_time_from_the_service_clock(text: str, expected: datetime) -> None:
    present = datetime(2031, 1, 15, 12, 0, tzinfo=LA)  # a Wednesday noon, simulated
    at = simulate._simulated_time(text, present.astimezone(UTC), LA)
    assert at == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tomorrow 25:00", "no such time of day"),
        ("yesterday 19:00", "is not a time"),
        ("2026-11-18T19:00:00", "needs a UTC offset"),
        ("tomorrow 19:00\r\nwed 08:00", "is not a time"),
    ],
)
def test_the_simulator_refuses_a_time_it_cannot_read(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        simulate._simulated_time(text, datetime(2031, 1, 15, 20, 0, tzinfo=UTC), LA)
