"""Paging keeps its promise: provider failures vs unreachable people, repeating until someone is reached, email pages."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from providers.twilio_rest import TwilioSendError, _as_send_error
from providers.twilio_status import person_unreachable
from settings import Settings
from testing.twilio_server import TwilioTestServer, free_port
from tests.conftest import FixedClock, SmtpInbox
from tests.ivr.conftest import BEN, CAT, ONCALL, PUBLIC, Desk
from ticketing import paging
from ticketing.models import Ticket
from workers import paging as jobs

AFTER_HOURS = "2026-11-18 22:00"  # cat on call, then ben; fay the fallback
EMAILS = {"cat": "cat@itech.example", "ben": "ben@itech.example", "fay": "fay@itech.example"}


@pytest.fixture
def mailbox(smtp_server: tuple[Controller, SmtpInbox]) -> tuple[Controller, SmtpInbox]:
    """The on-call people's mail server."""
    return smtp_server


@pytest.fixture
def oncall_file(tmp_path: Path) -> Path:
    text = ONCALL
    for key, address in EMAILS.items():
        line = f'mobile = "{ {"cat": "+18055550173", "ben": "+18055550172", "fay": "+18055550175"}[key] }"'
        text = text.replace(line, f'{line}\nemail = "{address}"')
    path = tmp_path / "oncall.toml"
    path.write_text(text)
    return path


@pytest.fixture
def paging_settings(
    settings: Settings,
    twilio_api: TwilioTestServer,
    paging_redis: str,
    oncall_file: Path,
    mailbox: tuple[Controller, SmtpInbox],
) -> Settings:
    return settings.with_overrides(
        **twilio_api.settings_overrides(),
        redis_url=paging_redis,
        oncall_file=oncall_file,
        public_base_url=PUBLIC,
        dispatch_after_response=False,
        smtp_url=f"smtp+insecure://127.0.0.1:{mailbox[0].port}",
    )


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "RETRY_PAUSES", (0.01, 0.01, 0.01))


def twilio_down(desk: Desk) -> str:
    """Point the service at a port nobody listens on: every Twilio request is refused."""
    real = desk.runtime.settings.twilio_api_base_url
    desk.runtime.settings = desk.runtime.settings.with_overrides(twilio_api_base_url=f"http://127.0.0.1:{free_port()}")
    return real


def twilio_back(desk: Desk, real: str) -> None:
    desk.runtime.settings = desk.runtime.settings.with_overrides(twilio_api_base_url=real)


def p1(desk: Desk, clock: FixedClock) -> int:
    clock.set(AFTER_HOURS)
    number = desk.ticket_of(desk.p1_call())
    desk.work()
    return number


def states(desk: Desk, number: int, channel: str) -> list[tuple[str, str]]:
    return [(p.person, p.state) for p in desk.pages(number) if p.channel == channel]


# --- classification ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [21211, 21214, 21217, 21610, 21614, 30003, 30004, 30005, 30006, 13224])
def test_error_codes_about_the_number_mean_the_person_cannot_be_reached(code: int) -> None:
    assert person_unreachable(code) and person_unreachable(str(code))


@pytest.mark.parametrize("code", [None, "", 20003, 20429, 30001, 30002, 30007, 30008, 20500, "abc"])
def test_other_codes_say_nothing_about_the_number(code: object) -> None:
    assert not person_unreachable(code)  # type: ignore[arg-type]


def test_twilio_errors_are_classified(twilio_api: TwilioTestServer) -> None:
    from twilio.base.exceptions import TwilioRestException

    number = _as_send_error(TwilioRestException(400, "uri", msg="not a mobile", code=21614))
    assert number.person_unreachable and not number.retryable
    for status, code in ((500, 20500), (503, None), (429, 20429), (400, 21601), (401, 20003)):
        error = _as_send_error(TwilioRestException(status, "uri", msg="x", code=code))
        assert isinstance(error, TwilioSendError) and not error.person_unreachable, (status, code)


# --- provider failures -------------------------------------------------------------------------------------


def test_twilio_refusing_connections_never_speeds_the_escalation_up(desk: Desk, clock: FixedClock) -> None:
    real = twilio_down(desk)
    number = p1(desk, clock)

    assert states(desk, number, "sms") == [("cat", "retrying")] and states(desk, number, "call") == [
        ("cat", "retrying")
    ]
    actions = desk.actions(number)
    assert "escalated early" not in actions and "page retrying" in actions
    assert desk.escalation(number).next_position == 1  # round 1 step 2 still waits its five minutes
    clock.advance(minutes=4)
    desk.sweep()  # retries (still refused) but no step
    assert desk.escalation(number).next_position == 1
    assert desk.pages(number)[0].tries > 3

    twilio_back(desk, real)
    clock.advance(seconds=59)
    desk.sweep()  # the retry goes out now that Twilio answers
    assert sorted(desk.sent()) == [("cat", "call"), ("cat", "sms")]
    assert states(desk, number, "sms") == [("cat", "sent")]
    assert desk.escalation(number).next_position == 1


def test_a_status_callback_failure_that_is_not_about_the_number_is_resent_not_escalated(
    desk: Desk, clock: FixedClock
) -> None:
    number = p1(desk, clock)
    sms = desk.twilio.messages(to=CAT)[0]
    assert desk.status_callback(sms, "undelivered", ErrorCode="30008") == 204  # unknown carrier error
    assert desk.status_callback(desk.call_to(CAT), "failed", ErrorCode="30008") == 204
    assert "escalated early" not in desk.actions(number)
    assert {s for _p, s in states(desk, number, "sms")} == {"retrying"}

    clock.advance(minutes=2)
    desk.sweep()
    assert [p for p, _c in desk.sent()].count("cat") == 4  # both sent again
    assert desk.escalation(number).next_position == 1


# --- never "exhausted" while nobody was reached ------------------------------------------------------------


def test_with_twilio_down_the_escalation_repeats_and_the_ticket_says_nobody_reached(
    desk: Desk, clock: FixedClock, mailbox: tuple[Controller, SmtpInbox]
) -> None:
    from web.console.present import paging_view

    twilio_down(desk)
    desk.runtime.settings = desk.runtime.settings.with_overrides(paging_email=False)
    number = p1(desk, clock)
    for _ in range(4):  # r1s1 done; r1s2, r2s1, r2s2, fallback
        clock.advance(minutes=5)
        desk.work()
        desk.sweep()
    actions = desk.actions(number)
    assert actions.count("paged") == 5 and "nobody reached" in actions
    assert "escalation exhausted" not in actions
    with desk.runtime.sessions() as s:
        ticket = s.scalars(select(Ticket).where(Ticket.number == number)).one()
        view = paging_view(ticket, paging.escalation_of(s, ticket), True)
    assert view.state == "unreached" and view.delivered == 0  # no "fallback Fay" label: nothing was sent

    clock.advance(minutes=5)  # the fallback's wait: nobody reached, so round 1 again
    desk.work()
    actions = desk.actions(number)
    assert "paging repeated" in actions and actions.count("paged") == 6
    escalation = desk.escalation(number)
    assert (escalation.cycle, escalation.state) == (1, "paging")

    # ... until the horizon (first response 12 min + 60 min after the call): then exhausted, still "nobody reached".
    for _ in range(20):
        clock.advance(minutes=5)
        desk.work()
        desk.sweep()
    escalation = desk.escalation(number)
    assert escalation.state == "exhausted" and escalation.unreached_since is not None
    assert desk.actions(number)[-1] in ("escalation exhausted", "page retrying")


# --- email pages -------------------------------------------------------------------------------------------


def test_with_twilio_down_email_pages_go_out_and_their_link_acknowledges(
    desk: Desk, clock: FixedClock, mailbox: tuple[Controller, SmtpInbox]
) -> None:
    _controller, inbox = mailbox
    twilio_down(desk)
    number = p1(desk, clock)

    (mail,) = inbox.messages
    assert mail["To"] == EMAILS["cat"] and f"[#{number}]" in mail["Subject"]
    body = mail.get_content()
    assert f"{PUBLIC}/tickets/{number}" in body and f"ACK {number}" in body
    assert states(desk, number, "email") == [("cat", "sent")]

    link = next(line for line in body.splitlines() if line.startswith(f"{PUBLIC}/ack"))
    # The token rides in the query string, never the path: the access log records paths only.
    url = urlsplit(link)
    assert url.path == "/ack" and list(parse_qs(url.query)) == ["token"]
    token = parse_qs(url.query)["token"][0]
    path = f"{url.path}?{url.query}"
    client = desk.app.test_client()
    page = client.get(path)
    assert page.status_code == 200 and b"Acknowledge ticket" in page.data
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert desk.escalation(number).acknowledged_at is None  # opening the link is not an ack
    # The page's console link is the console's real ticket page.
    console_link = re.search(r'href="([^"]+)">Open the ticket in the console', page.get_data(as_text=True))
    assert console_link is not None and console_link.group(1).startswith(PUBLIC)
    endpoint, args = desk.app.url_map.bind("support.example.com").match(urlsplit(console_link.group(1)).path)
    assert (endpoint, args) == ("console.ticket", {"number": number})
    # The button posts the token in the form, to a path without it.
    form = re.search(r'<form method="post" action="([^"]+)">', page.get_data(as_text=True))
    assert form is not None and form.group(1) == "/ack"
    csrf = re.search(rb'name="csrf_token" value="([^"]+)"', page.data)
    assert csrf is not None
    done = client.post("/ack", data={"csrf_token": csrf.group(1).decode(), "token": token})
    assert b"Acknowledged by Cat Nguyen" in done.data
    escalation = desk.escalation(number)
    assert (escalation.acknowledged_by, escalation.acknowledged_via) == ("Cat Nguyen", "email")
    assert client.get("/ack?token=not-a-token").status_code == 400
    assert client.post("/ack", data={"csrf_token": csrf.group(1).decode(), "token": ""}).status_code == 400


def test_an_acknowledge_link_mailed_before_the_token_moved_to_the_query_still_acknowledges(
    desk: Desk, clock: FixedClock, mailbox: tuple[Controller, SmtpInbox]
) -> None:
    twilio_down(desk)
    number = p1(desk, clock)
    (page_row,) = [p for p in desk.pages(number) if p.channel == "email"]
    old_path = f"/ack/{jobs.ack_token(desk.runtime.settings.secret_key, page_row.id)}"  # as mailed until now
    client = desk.app.test_client()
    page = client.get(old_path)
    assert page.status_code == 200 and b"Acknowledge ticket" in page.data
    csrf = re.search(rb'name="csrf_token" value="([^"]+)"', page.data)
    hidden = re.search(rb'name="token" value="([^"]+)"', page.data)
    assert csrf is not None and hidden is not None
    done = client.post("/ack", data={"csrf_token": csrf.group(1).decode(), "token": hidden.group(1).decode()})
    assert b"Acknowledged by Cat Nguyen" in done.data
    assert desk.escalation(number).acknowledged_via == "email"
    assert client.get("/ack/not-a-token").status_code == 400  # the old form of the link, while it is kept


def test_an_email_page_to_each_person_paged_alongside_sms_and_call(
    desk: Desk, clock: FixedClock, mailbox: tuple[Controller, SmtpInbox]
) -> None:
    number = p1(desk, clock)
    clock.advance(minutes=5)
    desk.work()
    assert sorted(m["To"] for m in mailbox[1].messages) == [EMAILS["ben"], EMAILS["cat"]]
    assert sorted(desk.sent()) == [("ben", "call"), ("ben", "sms"), ("cat", "call"), ("cat", "sms")]
    assert desk.pages(number)[-1].channel == "email"


def test_a_retrying_page_is_superseded_when_the_same_person_is_paged_again(desk: Desk, clock: FixedClock) -> None:
    twilio_down(desk)
    desk.runtime.settings = desk.runtime.settings.with_overrides(paging_email=False)
    number = p1(desk, clock)
    for _ in range(2):
        clock.advance(minutes=5)
        desk.work()
    cat = [(p.round, p.state) for p in desk.pages(number) if p.person == "cat" and p.channel == "sms"]
    assert cat == [(1, "cancelled"), (2, "retrying")]
    assert BEN  # ben's round-1 page still retrying


def test_twilio_down_for_an_hour_email_pages_go_out_and_ticket_and_metrics_say_nobody_reached(
    desk: Desk, clock: FixedClock, mailbox: tuple[Controller, SmtpInbox]
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from web.console.present import paging_view

    twilio_down(desk)
    number = p1(desk, clock)
    for _ in range(12):  # an hour on the simulated clock
        clock.advance(minutes=5)
        desk.work()
        desk.sweep()

    escalation = desk.escalation(number)
    assert escalation.state == "paging" and escalation.cycle >= 2  # still going
    assert len(mailbox[1].messages) >= 6  # every step mailed the people it paged
    assert {m["To"] for m in mailbox[1].messages} == set(EMAILS.values())
    assert not desk.twilio.requests  # Twilio never answered
    client = desk.app.test_client()
    text = client.get("/metrics").get_data(as_text=True)
    samples = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples["supportline_p1_unreached"] == 1
    assert samples["supportline_p1_nobody_reached_total"] == 1
    assert samples["supportline_pages_retrying"] >= 2
    with desk.runtime.sessions() as s:
        ticket = s.scalars(select(Ticket).where(Ticket.number == number)).one()
        pv = paging_view(ticket, paging.escalation_of(s, ticket), True)
    assert pv.state == "unreached" and pv.emails >= 6 and pv.delivered == 0 and pv.total >= 20
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.get_json()["failing"]["twilio_rest"] == "failing"
    # Anyone who can reach the probe reads it: the provider's error (the Account SID, the API host) stays in the log.
    assert desk.runtime.settings.twilio_account_sid not in ready.get_data(as_text=True)
    assert "127.0.0.1" not in ready.get_data(as_text=True) and "Accounts" not in ready.get_data(as_text=True)
