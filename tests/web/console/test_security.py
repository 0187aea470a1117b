"""Sign-in, sessions, CSRF and the audio route: what a stranger, a stolen cookie or a forged form gets."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from flask import Flask

from runtime import Runtime
from tests.conftest import FixedClock
from tests.web.conftest import PASSWORD, Console, attach_voicemail, ticket


def _session_cookie(console: Console) -> str:
    cookie = console.client.get_cookie("__Host-supportline")
    assert cookie is not None
    return cookie.value


def test_every_console_page_redirects_a_stranger_to_the_sign_in_page(
    anonymous: Console, open_ticket: Callable[..., int]
) -> None:
    number = open_ticket()
    for path in ("/", "/queue", f"/tickets/{number}", "/tickets/new", "/oncall", "/events"):
        response = anonymous.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/login"), path


def test_a_form_post_without_a_csrf_token_is_refused_and_changes_nothing(
    console: Console, runtime: Runtime, open_ticket: Callable[..., int]
) -> None:
    number = open_ticket()
    response = console.client.post(f"/tickets/{number}/note", data={"text": "forged"})
    assert response.status_code == 400
    assert "Form refused" in response.get_data(as_text=True)
    forged = console.client.post(f"/tickets/{number}/note", data={"text": "forged", "csrf_token": "not-a-token"})
    assert forged.status_code == 400
    assert [a.action for a in ticket(runtime, number).audit] == ["created"]
    # The same form with the page's token goes through.
    assert console.post(f"/tickets/{number}/note", {"text": "called back"}).status_code == 303


def test_a_sign_in_form_without_a_csrf_token_is_refused(anonymous: Console, users: dict[str, str]) -> None:
    response = anonymous.client.post("/login", data={"username": "dana", "password": PASSWORD})
    assert response.status_code == 400
    assert anonymous.client.get_cookie("__Host-supportline") is None or anonymous.get("/queue").status_code == 302


def test_twilio_webhooks_need_no_csrf_token_but_a_valid_signature(app: Flask) -> None:
    client = app.test_client()
    response = client.post("/twilio/voice", data={"CallSid": "CA" + "0" * 32, "From": "+18055550142"})
    assert response.status_code == 403  # refused by the signature check, not by CSRF (400)
    assert "invalid Twilio signature" in response.get_data(as_text=True)


def test_the_session_cookie_is_secure_http_only_same_site_and_host_bound(app: Flask, users: dict[str, str]) -> None:
    c = Console(app.test_client())
    response = c.login()
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("__Host-supportline="))
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Domain" not in cookie


def test_signing_in_rotates_the_session(app: Flask, users: dict[str, str]) -> None:
    c = Console(app.test_client())
    c.csrf()
    anonymous_cookie = _session_cookie(c)
    c.login()
    first = _session_cookie(c)
    assert first != anonymous_cookie
    c.login()  # signing in again hands out a new session, and the old one stops counting
    second = _session_cookie(c)
    assert second != first
    replay = Console(app.test_client())
    replay.client.set_cookie("__Host-supportline", first)
    assert replay.get("/queue").status_code == 302


def test_a_session_copied_before_sign_out_cannot_be_reused_after_it(app: Flask, console: Console) -> None:
    stolen = _session_cookie(console)
    thief = Console(app.test_client())
    thief.client.set_cookie("__Host-supportline", stolen)
    assert thief.get("/queue").status_code == 200  # the copy works while the owner is signed in
    assert console.logout().status_code == 303
    assert thief.get("/queue").status_code == 302
    assert thief.get("/queue/rows").status_code == 401


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(
    anonymous: Console, users: dict[str, str]
) -> None:
    for username in ("dana", "nobody"):
        response = anonymous.login(username, "wrong password")
        assert response.status_code == 401
        assert "Wrong username or password" in response.get_data(as_text=True)


def test_repeated_failures_lock_the_account_until_the_lockout_ends(
    anonymous: Console, users: dict[str, str], clock: FixedClock
) -> None:
    for _ in range(5):
        assert "Wrong username or password" in anonymous.login("dana", "guess").get_data(as_text=True)
    still = anonymous.login("dana", PASSWORD)  # even the right password, while locked
    assert still.status_code == 401
    assert "too many failed sign-ins" in still.get_data(as_text=True)
    clock.advance(minutes=15, seconds=1)
    assert anonymous.login("dana", PASSWORD).status_code == 303


def test_an_idle_session_ends(console: Console, clock: FixedClock) -> None:
    clock.advance(minutes=29)
    assert console.get("/queue").status_code == 200
    clock.advance(minutes=31)
    response = console.get("/queue")
    assert response.status_code == 302
    follow = console.get(response.headers["Location"])
    assert "signed out after a period of inactivity" in follow.get_data(as_text=True)


def test_the_queue_polling_by_itself_does_not_keep_a_session_alive(console: Console, clock: FixedClock) -> None:
    for _ in range(3):
        clock.advance(minutes=10)
        assert console.get("/queue/rows?active=0").status_code == 200
    clock.advance(minutes=1)  # 31 minutes since the last thing the user did
    assert console.get("/queue/rows?active=0").status_code == 401
    assert console.get("/queue").status_code == 302


def test_sign_in_never_redirects_to_another_site(anonymous: Console, users: dict[str, str]) -> None:
    for target in ("//evil.example/queue", "https://evil.example/", "/\\evil.example"):
        response = anonymous.login(next=target)
        assert response.headers["Location"] == "/queue"


def test_the_audio_route_refuses_anonymous_requests(
    anonymous: Console, runtime: Runtime, open_ticket: Callable[..., int], voicemail_wav: Path
) -> None:
    number = open_ticket(source="voicemail")
    attach_voicemail(runtime, number, voicemail_wav)
    response = anonymous.get(f"/tickets/{number}/audio")
    assert response.status_code == 401
    assert not response.get_data().startswith(b"RIFF")


def test_the_audio_route_streams_ranges_so_the_player_can_seek(
    console: Console, runtime: Runtime, open_ticket: Callable[..., int], voicemail_wav: Path
) -> None:
    number = open_ticket(source="voicemail")
    attach_voicemail(runtime, number, voicemail_wav)
    with console.get(f"/tickets/{number}/audio") as whole:
        assert whole.status_code == 200
        assert whole.mimetype == "audio/wav"
        assert whole.headers["Accept-Ranges"] == "bytes"
        assert whole.get_data() == voicemail_wav.read_bytes()
    with console.get(f"/tickets/{number}/audio", headers={"Range": "bytes=1000-1999"}) as part:
        assert part.status_code == 206
        assert part.headers["Content-Range"] == f"bytes 1000-1999/{voicemail_wav.stat().st_size}"
        assert part.get_data() == voicemail_wav.read_bytes()[1000:2000]


def test_the_audio_route_refuses_paths_outside_the_recordings_folder(
    console: Console, runtime: Runtime, open_ticket: Callable[..., int], voicemail_wav: Path, tmp_path: Path
) -> None:
    number = open_ticket(source="voicemail")
    attach_voicemail(runtime, number, voicemail_wav)
    secret = tmp_path / "secret.wav"
    secret.write_bytes(b"RIFF secret")
    recordings = Path(runtime.settings.recordings_dir)
    link = recordings / "link.wav"
    os.symlink(secret, link)
    from ticketing import lifecycle
    from ticketing.db import transaction

    for stored in (
        str(recordings / ".." / "secret.wav"),
        str(secret),
        "../secret.wav",
        "/etc/passwd",
        str(link),
        str(recordings),
    ):
        with transaction(runtime.sessions) as s:
            lifecycle.get_ticket(s, number).audio_path = stored
        response = console.get(f"/tickets/{number}/audio")
        assert response.status_code == 404, stored
        assert b"secret" not in response.get_data() and b"root:" not in response.get_data()
    for path in (
        f"/tickets/{number}/../../etc/passwd",
        f"/tickets/{number}/audio/../../../etc/passwd",
        "/tickets/..%2F..%2Fetc%2Fpasswd/audio",
    ):
        response = console.get(path)
        assert response.status_code in (302, 404, 405), path
        assert b"root:" not in response.get_data()


def test_an_engineer_cannot_re_triage_or_declare_events(
    app: Flask, users: dict[str, str], runtime: Runtime, open_ticket: Callable[..., int]
) -> None:
    number = open_ticket()
    eli = Console(app.test_client())
    eli.login("eli")
    response = eli.post(f"/tickets/{number}/priority", {"priority": "P1", "reason": "urgent"})
    assert response.status_code == 403
    assert ticket(runtime, number).priority == "P3"
    assert eli.post("/events", {"reason": "storm", "hours": "4"}).status_code == 403
    assert eli.post(f"/tickets/{number}/note", {"text": "on it"}).status_code == 303


def test_pages_carry_security_headers(console: Console) -> None:
    response = console.get("/queue")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"
    assert re.search(r"script-src 'self'", response.headers["Content-Security-Policy"])
