"""Portal sign-in by emailed link: single use, ~15 minutes, a confirm button, no enumeration, rate limits, audit,
and portal sessions that are separate from the console's."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from sqlalchemy import select

from runtime import Runtime
from tests.conftest import FixedClock
from tests.web.conftest import PASSWORD, Console
from tests.web.portal.conftest import (
    CONFIRM,
    EMAILS,
    PortalClient,
    last_link,
    link_path,
    mails,
    run_link_jobs,
    tokens_in,
)
from ticketing.models import OutboxMessage, PortalLink, PortalSession, PortalSignInEvent

Make = Callable[[str | None], PortalClient]


def events(runtime: Runtime) -> list[tuple[str, str | None]]:
    with runtime.sessions() as s:
        return [(e.event, e.email) for e in s.scalars(select(PortalSignInEvent).order_by(PortalSignInEvent.id))]


def test_known_and_unknown_addresses_get_the_same_answer_and_only_a_contact_gets_mail(
    portal_client: Make, portal_runtime: Runtime
) -> None:
    c = portal_client(None)
    known = c.ask_link("  DANA@acme-dental.example ")
    unknown = c.ask_link("nobody@elsewhere.example")
    assert known.status_code == unknown.status_code == 200

    def strip(html: str) -> str:
        return html.replace("dana@acme-dental.example", "X").replace("nobody@elsewhere.example", "X")

    assert strip(known.get_data(as_text=True)) == strip(unknown.get_data(as_text=True))
    with portal_runtime.sessions() as s:
        # The web request does the same work for both (so its timing tells nothing): an event and a queued job.
        assert s.scalars(select(PortalLink)).all() == []
        asked = list(s.scalars(select(PortalSignInEvent).order_by(PortalSignInEvent.id)))
        assert [e.detail["known"] for e in asked] == [True, False]
        outbox = s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        assert [(m.kind, m.payload) for m in outbox] == [("portal-link", {"request": e.id}) for e in asked]
    assert run_link_jobs(portal_runtime) == ["sent", "nothing to send"]
    with portal_runtime.sessions() as s:
        links = s.scalars(select(PortalLink)).all()
        assert [link.email for link in links] == [EMAILS["dana"]]
        assert links[0].created_at == asked[0].at  # it counts from when it was asked for
    sent = mails(portal_runtime)
    assert len(sent) == 1 and "dana@acme-dental.example" in sent[0]["To"].lower()
    assert "Sign in" in sent[0]["Subject"] or "sign-in" in sent[0]["Subject"]
    token = tokens_in(sent[0])[0]
    assert sent[0]["From"] == portal_runtime.settings.mail_from
    assert f"https://support.example.com/portal/sign-in/link?token={token}" in sent[0].get_payload(decode=True).decode()
    with portal_runtime.sessions() as s:
        link = s.scalars(select(PortalLink)).one()
        assert link.token_hash == hashlib.sha256(token.encode()).hexdigest()  # only the hash is stored
        assert link.sent_at is not None
        assert token not in str([m.payload for m in s.scalars(select(OutboxMessage))])
    assert run_link_jobs(portal_runtime) == []  # a sent link is never sent again
    assert ("sent", EMAILS["dana"]) in events(portal_runtime)


def test_opening_the_link_only_shows_a_button_and_pressing_it_signs_in_once(
    portal_client: Make, portal_runtime: Runtime
) -> None:
    c = portal_client(None)
    c.ask_link(EMAILS["luis"])
    run_link_jobs(portal_runtime)
    token = last_link(portal_runtime, EMAILS["luis"])
    # A mail scanner opening the link (twice) signs nobody in and spends nothing.
    for _ in range(2):
        page = c.get(link_path(token))
        assert page.status_code == 200 and "Welcome, Luis Ortega" in page.get_data(as_text=True)
    assert c.get("/portal/").status_code == 302
    with portal_runtime.sessions() as s:
        assert s.scalars(select(PortalLink)).one().used_at is None
        assert s.scalars(select(PortalSession)).all() == []
    # Without the form's CSRF token the button does nothing.
    assert c.client.post(CONFIRM, data={"token": token}).status_code == 400
    response = c.client.post(CONFIRM, data={"csrf_token": c.csrf(link_path(token)), "token": token})
    assert response.status_code == 303 and response.headers["Location"].endswith("/portal/")
    cookie = response.headers.getlist("Set-Cookie")
    portal_cookie = next(h for h in cookie if h.startswith("__Host-portal="))
    assert "HttpOnly" in portal_cookie and "Secure" in portal_cookie and "SameSite=Lax" in portal_cookie
    assert "Path=/" in portal_cookie and "Domain" not in portal_cookie
    assert f"Max-Age={8 * 3600}" in portal_cookie  # shorter than the console's 12 hours
    value = portal_cookie.split(";")[0].split("=", 1)[1]
    with portal_runtime.sessions() as s:
        row = s.scalars(select(PortalSession)).one()
        assert row.token_hash == hashlib.sha256(value.encode()).hexdigest()  # stored hashed, like console sessions
    assert "My tickets" in c.get("/portal/").get_data(as_text=True)
    # Used once: a second press, from anywhere, is refused.
    other = portal_client(None)
    again = other.client.post(CONFIRM, data={"csrf_token": other.csrf(), "token": token})
    assert again.status_code == 400 and "already used" in again.get_data(as_text=True)
    assert [e for e, _ in events(portal_runtime)] == ["requested", "sent", "signed in", "refused"]


def test_a_link_expires_after_fifteen_minutes(portal_client: Make, portal_runtime: Runtime, clock: FixedClock) -> None:
    c = portal_client(None)
    c.ask_link(EMAILS["dana"])
    run_link_jobs(portal_runtime)
    token = last_link(portal_runtime, EMAILS["dana"])
    clock.advance(minutes=15, seconds=1)
    page = c.get(link_path(token))
    assert page.status_code == 400 and "expired" in page.get_data(as_text=True)
    assert c.client.post(CONFIRM, data={"csrf_token": c.csrf(), "token": token}).status_code == 400
    assert c.get("/portal/").status_code == 302
    # A forged token is refused the same way.
    assert c.get(link_path("not-a-real-token")).status_code == 400


def test_a_job_for_an_expired_link_sends_nothing(
    portal_client: Make, portal_runtime: Runtime, clock: FixedClock
) -> None:
    portal_client(None).ask_link(EMAILS["dana"])
    clock.advance(minutes=20)  # the worker was down all that time
    assert run_link_jobs(portal_runtime) == ["nothing to send"]
    assert mails(portal_runtime) == []


def test_links_are_rate_limited_per_address_and_per_source_whether_or_not_the_address_is_known(
    portal_client: Make, portal_runtime: Runtime, clock: FixedClock
) -> None:
    c = portal_client(None)
    for _ in range(5):
        assert c.ask_link(EMAILS["dana"]).status_code == 200
        assert c.ask_link("ghost@nowhere.example").status_code == 200
    known, unknown = c.ask_link(EMAILS["dana"]), c.ask_link("ghost@nowhere.example")
    assert known.status_code == unknown.status_code == 429
    assert "Too many sign-in links" in known.get_data(as_text=True)
    assert run_link_jobs(portal_runtime).count("sent") == 5
    with portal_runtime.sessions() as s:
        assert len(s.scalars(select(PortalLink)).all()) == 5
    assert [e for e, _ in events(portal_runtime)].count("rate limited") == 2
    # Per source: 20 requests from one address, any emails, then refused.
    clock.advance(minutes=16)
    for i in range(20):
        assert c.ask_link(f"person{i}@nowhere.example").status_code == 200
    assert c.ask_link(EMAILS["luis"]).status_code == 429
    # Another source is not held up.
    other = portal_client(None)
    other.client.environ_base["REMOTE_ADDR"] = "10.0.0.7"
    assert other.ask_link(EMAILS["luis"]).status_code == 200


def test_bad_input_gets_a_clear_error_and_changes_nothing(portal_client: Make, portal_runtime: Runtime) -> None:
    c = portal_client(None)
    response = c.ask_link("not an email")
    assert response.status_code == 400 and "email address" in response.get_data(as_text=True)
    assert c.client.post("/portal/sign-in", data={"email": EMAILS["dana"]}).status_code == 400  # no CSRF token
    with portal_runtime.sessions() as s:
        assert s.scalars(select(PortalLink)).all() == []
        assert s.scalars(select(PortalSignInEvent)).all() == []


def test_portal_sessions_never_reach_the_console_or_the_api_and_console_sessions_never_reach_the_portal(
    portal_client: Make, console: Console
) -> None:
    dana = portal_client("dana")
    for path in ("/queue", "/tickets/new", "/oncall", "/contacts"):
        response = dana.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"], path
    assert dana.get("/api/tickets").status_code == 401
    assert dana.get("/queue/rows").status_code == 401
    # The coordinator's console session is no portal session.
    response = console.get("/portal/")
    assert response.status_code == 302 and "/portal/sign-in" in response.headers["Location"]
    assert console.get("/portal/triage?risk=yes").status_code == 401


def test_idle_and_old_sessions_end_and_signing_out_ends_the_session_on_the_server(
    portal_client: Make, portal_runtime: Runtime, clock: FixedClock
) -> None:
    dana = portal_client("dana")
    clock.advance(minutes=31)
    response = dana.get("/portal/")
    assert response.status_code == 302 and "ended=idle" in response.headers["Location"]
    dana = portal_client("dana")
    for _ in range(16):  # active all along, but no session lives past 8 hours
        clock.advance(minutes=29)
        assert dana.get("/portal/").status_code == 200
    clock.advance(minutes=29)
    assert "ended=expired" in dana.get("/portal/").headers["Location"]
    dana = portal_client("dana")
    copied = dana.client.get_cookie("__Host-portal").value
    assert dana.post("/portal/sign-out").status_code == 303
    thief = portal_client(None)
    thief.client.set_cookie("__Host-portal", copied, secure=True)
    assert thief.get("/portal/").status_code == 302
    assert [e for e, _ in events(portal_runtime)][-1] == "signed out"


def test_portal_pages_carry_the_consoles_security_headers(portal_client: Make) -> None:
    dana = portal_client("dana")
    for path in ("/portal/", "/portal/tickets/new", "/portal/sign-in"):
        response = dana.get(path)
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
        assert response.headers["Cache-Control"] == "no-store"


def test_a_coordinator_invites_a_contact_from_the_console(
    console: Console, portal_client: Make, portal_runtime: Runtime, directory: object
) -> None:
    from tests.web.portal.conftest import Directory

    assert isinstance(directory, Directory)
    page = console.get("/contacts").get_data(as_text=True)
    assert "Invite to the portal" in page and "Luis Ortega" in page
    response = console.post(f"/contacts/{directory.luis}/portal-invite")
    assert response.status_code == 303
    with portal_runtime.sessions() as s:
        link = s.scalars(select(PortalLink)).one()
        assert (link.email, link.requested_by) == (EMAILS["luis"], "Dana Reyes")
    assert run_link_jobs(portal_runtime) == ["sent"]
    token = last_link(portal_runtime, EMAILS["luis"])
    luis = portal_client(None)
    assert "Welcome, Luis Ortega" in luis.get(link_path(token)).get_data(as_text=True)
    # An engineer cannot send invitations.
    eli = Console(console.client.application.test_client())
    eli.login("eli", PASSWORD)
    assert eli.post(f"/contacts/{directory.luis}/portal-invite").status_code == 403


def test_the_invite_command_queues_a_link_for_a_known_contact_only(
    app: object, portal_runtime: Runtime, directory: object
) -> None:
    from flask import Flask

    assert isinstance(app, Flask)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["portal", "invite", "PRIYA@harbor.example", "--by", "Dana Reyes"])
    assert result.exit_code == 0, result.output
    assert "Priya Raman" in result.output
    with portal_runtime.sessions() as s:
        assert [(link.email, link.requested_by) for link in s.scalars(select(PortalLink))] == [
            (EMAILS["priya"], "Dana Reyes")
        ]
    result = runner.invoke(args=["portal", "invite", "ghost@nowhere.example"])
    assert result.exit_code != 0 and "no single contact" in result.output
    assert run_link_jobs(portal_runtime) == ["sent"]


def test_a_link_that_cannot_be_mailed_is_recorded_and_logged_not_lost_silently(
    portal_client: Make, portal_runtime: Runtime, caplog: object
) -> None:
    from testing.twilio_server import free_port

    portal_runtime.settings = portal_runtime.settings.with_overrides(
        smtp_url=f"smtp+insecure://127.0.0.1:{free_port()}"
    )
    portal_client(None).ask_link(EMAILS["dana"])
    assert run_link_jobs(portal_runtime) == ["failed"]  # the last try: RQ retries before this (JOB_RETRY_INTERVALS)
    assert ("send failed", EMAILS["dana"]) in events(portal_runtime)
    assert "could not be sent" in str(getattr(caplog, "text", ""))
    with portal_runtime.sessions() as s:
        assert s.scalars(select(OutboxMessage)).one().completed_at is not None


def test_a_form_sent_after_the_session_ended_says_so_and_changes_nothing(
    portal_client: Make, portal_runtime: Runtime, clock: FixedClock
) -> None:
    dana = portal_client("dana")
    token = dana.csrf("/portal/tickets/new")
    clock.advance(minutes=45)
    response = dana.client.post(
        "/portal/tickets/new", data={"csrf_token": token, "summary": "x", "risk": "yes", "step": "submit"}
    )
    assert response.status_code == 401
    assert "Please sign in again" in response.get_data(as_text=True)
    from ticketing.models import Ticket

    with portal_runtime.sessions() as s:
        assert s.scalars(select(Ticket)).all() == []


def test_the_directory_import_takes_the_primary_flag(app: object, portal_runtime: Runtime, tmp_path: object) -> None:
    from pathlib import Path

    from flask import Flask

    from ticketing.models import Contact

    assert isinstance(app, Flask) and isinstance(tmp_path, Path)
    file = tmp_path / "directory.toml"
    file.write_text(
        '[[clients]]\nname = "Mesa Law"\ncontacts = [\n'
        '  { name = "Ana", email = "ana@mesa.example", primary = true },\n'
        '  { name = "Bo", email = "bo@mesa.example" },\n]\n'
    )
    result = app.test_cli_runner().invoke(args=["directory", "import", str(file)])
    assert result.exit_code == 0, result.output
    with portal_runtime.sessions() as s:
        assert [(c.name, c.primary) for c in s.scalars(select(Contact).order_by(Contact.name))] == [
            ("Ana", True),
            ("Bo", False),
        ]
    file.write_text('[[clients]]\nname = "Mesa Law"\ncontacts = [{ name = "Cy", primary = "yes" }]\n')
    result = app.test_cli_runner().invoke(args=["directory", "import", str(file)])
    assert result.exit_code != 0 and "primary: expected true or false" in result.output


def test_portal_settings_are_read_and_checked() -> None:
    import pytest

    from settings import ConfigError, load_settings

    s = load_settings({"PUBLIC_BASE_URL": "https://support.example.com"})
    assert s.portal_base_url == "https://support.example.com" and s.portal_link_minutes == 15
    s = load_settings({"PORTAL_BASE_URL": "https://portal.example.com/", "PORTAL_SESSION_HOURS": "4"})
    assert s.portal_base_url == "https://portal.example.com" and s.portal_session_hours == 4
    with pytest.raises(ConfigError, match="PORTAL_BASE_URL"):
        load_settings({"PORTAL_BASE_URL": "portal.example.com"})
    with pytest.raises(ConfigError, match="PORTAL_LINK_MINUTES"):
        load_settings({"PORTAL_LINK_MINUTES": "0"})
