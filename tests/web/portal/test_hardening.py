"""The portal probed as an attacker would: tokens in logs and Referers, racing rate limits, a contact whose
directory record changes under a live session, tickets merged away, files that are not what they say."""

from __future__ import annotations

import io
import re
import shlex
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

from flask import Flask
from gunicorn.config import Config
from gunicorn.glogging import Logger
from sqlalchemy import select
from werkzeug.test import EnvironBuilder

from runtime import Runtime
from tests.web.portal.conftest import CONFIRM, EMAILS, Directory, PortalClient, last_link, link_path, run_link_jobs
from ticketing import lifecycle, portal
from ticketing.db import transaction
from ticketing.models import Contact, OutboxMessage, PortalLink, PortalSession, PortalSignInEvent, Status, Ticket

Make = Callable[[str | None], PortalClient]
ROOT = Path(__file__).resolve().parents[3]


def access_log_line(method: str, url: str, status: int = 200) -> str:
    """The line gunicorn writes for this request with the Procfile's --access-logformat."""
    args = shlex.split(next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:")))
    fmt = args[args.index("--access-logformat") + 1]
    cfg = Config()
    cfg.set("accesslog", "-")
    cfg.set("access_log_format", fmt)
    environ = EnvironBuilder(method=method, path=url, headers={"Referer": "https://mail.example/"}).get_environ()
    environ["RAW_URI"] = url
    logger = Logger(cfg)
    atoms = logger.atoms_wrapper_class(
        logger.atoms(SimpleNamespace(status=str(status), sent=10, headers=[]), {}, environ, timedelta(milliseconds=5))
    )
    return fmt % atoms


def test_the_sign_in_token_never_reaches_the_access_log_or_a_referer(
    portal_client: Make, portal_runtime: Runtime
) -> None:
    c = portal_client(None)
    c.ask_link(EMAILS["luis"])
    run_link_jobs(portal_runtime)
    token = last_link(portal_runtime, EMAILS["luis"])
    opened = c.get(link_path(token))
    assert opened.status_code == 200
    assert opened.headers["Referrer-Policy"] == "no-referrer"
    assert token not in access_log_line("GET", link_path(token))
    form = opened.get_data(as_text=True)
    action = re.search(r'<form method="post" action="([^"]+)"', form)
    assert action is not None and token not in action.group(1)  # the button posts the token in its body
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert csrf is not None
    pressed = c.client.post(action.group(1), data={"csrf_token": csrf.group(1), "token": token})
    assert pressed.status_code == 303 and pressed.headers["Referrer-Policy"] == "no-referrer"
    assert token not in access_log_line("POST", action.group(1), 303)
    # A used or forged link's page does not pass its address on either.
    again = portal_client(None).get(link_path(token))
    assert again.status_code == 400 and again.headers["Referrer-Policy"] == "no-referrer"
    assert CONFIRM in access_log_line("GET", link_path(token))  # the line is still there, without the token


def test_the_per_address_limit_holds_exactly_when_requests_race(portal_client: Make, portal_runtime: Runtime) -> None:
    limit = portal_runtime.settings.portal_link_limit_per_address
    clients = [portal_client(None) for _ in range(limit + 6)]
    tokens = [c.csrf() for c in clients]
    start = threading.Barrier(len(clients))

    def ask(i: int) -> int:
        start.wait()
        response = clients[i].client.post("/portal/sign-in", data={"csrf_token": tokens[i], "email": EMAILS["dana"]})
        return response.status_code

    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        codes = sorted(pool.map(ask, range(len(clients))))
    assert codes == [200] * limit + [429] * 6
    assert run_link_jobs(portal_runtime) == ["sent"] * limit
    with portal_runtime.sessions() as s:
        assert len(s.scalars(select(PortalLink)).all()) == limit
        kinds = [e.event for e in s.scalars(select(PortalSignInEvent))]
    assert kinds.count("requested") == limit and kinds.count("rate limited") == 6


def _set_email(runtime: Runtime, contact_id: int, email: str | None) -> None:
    with transaction(runtime.sessions) as s:
        s.get(Contact, contact_id).email = email


def test_a_session_ends_when_the_directory_changes_or_removes_the_contacts_address(
    portal_client: Make, portal_runtime: Runtime, directory: Directory
) -> None:
    luis, dana = portal_client("luis"), portal_client("dana")
    assert luis.get("/portal/").status_code == dana.get("/portal/").status_code == 200
    # Only the case changes: still the same address, still signed in.
    _set_email(portal_runtime, directory.luis, EMAILS["luis"].upper())
    assert luis.get("/portal/").status_code == 200
    # The record now belongs to someone else's address: whoever proved the old one is out.
    _set_email(portal_runtime, directory.luis, "maria@acme-dental.example")
    out = luis.get("/portal/")
    assert out.status_code == 302 and "ended=contact+changed" in out.headers["Location"]
    assert "Your contact record changed" in luis.get(out.headers["Location"]).get_data(as_text=True)
    assert luis.get("/portal/").status_code == 302  # and stays out
    _set_email(portal_runtime, directory.dana, None)
    assert dana.get("/portal/").status_code == 302
    with portal_runtime.sessions() as s:
        ended = sorted((r.contact_id, r.ended_why) for r in s.scalars(select(PortalSession)))
    assert ended == sorted([(directory.luis, "contact changed"), (directory.dana, "contact removed")])


def test_a_session_ends_when_the_contact_is_deleted(
    portal_client: Make, portal_runtime: Runtime, directory: Directory
) -> None:
    luis = portal_client("luis")
    with transaction(portal_runtime.sessions) as s:
        s.delete(s.get(Contact, directory.luis))
    assert luis.get("/portal/").status_code == 302
    assert luis.post("/portal/tickets/new", {"step": "submit", "summary": "x"}).status_code == 401


def test_the_link_opened_again_in_the_browser_it_signed_in_says_so_plainly(
    portal_client: Make, portal_runtime: Runtime
) -> None:
    luis = portal_client("luis")
    token = last_link(portal_runtime, EMAILS["luis"])
    again = luis.get(link_path(token))
    page = again.get_data(as_text=True)
    assert again.status_code == 200 and "You are already signed in" in page and "Luis Ortega" in page
    assert 'href="/portal/"' in page and again.headers["Referrer-Policy"] == "no-referrer"
    # Anywhere else the used link is refused as before.
    elsewhere = portal_client(None).get(link_path(token))
    assert elsewhere.status_code == 400 and "already used" in elsewhere.get_data(as_text=True)


def test_a_ticket_merged_into_another_stays_listed_and_says_where_the_work_goes_on(
    portal_client: Make, portal_runtime: Runtime, client_ticket: Callable[..., int]
) -> None:
    surviving = client_ticket("dana", "Nobody can print")
    repeat = client_ticket("luis", "Front desk printer is dead")
    with transaction(portal_runtime.sessions) as s:
        lifecycle.merge_ticket(
            s,
            lifecycle.get_ticket(s, repeat),
            lifecycle.get_ticket(s, surviving),
            actor="tests",
            now=portal_runtime.now(),
        )
    luis = portal_client("luis")
    listing = luis.get("/portal/").get_data(as_text=True)
    assert f'data-number="{repeat}"' in listing and "Combined with another ticket" in listing
    assert f"continued in ticket #{surviving}" in listing
    page = luis.get(f"/portal/tickets/{repeat}").get_data(as_text=True)
    assert f"Combined with ticket #{surviving}: we carry on there" in page
    assert f"ticket #{surviving} (a colleague" in page
    assert f'href="/portal/tickets/{surviving}"' not in page  # Luis may not open Dana's ticket
    assert luis.get(f"/portal/tickets/{surviving}").status_code == 404
    dana = portal_client("dana")
    assert f'href="/portal/tickets/{surviving}"' in dana.get(f"/portal/tickets/{repeat}").get_data(as_text=True)


def test_a_retried_mail_job_makes_the_asked_for_link_once(portal_client: Make, portal_runtime: Runtime) -> None:
    portal_client(None).ask_link(EMAILS["dana"])
    with portal_runtime.sessions() as s:
        (message,) = s.scalars(select(OutboxMessage)).all()
    made = []
    for _ in range(2):
        with transaction(portal_runtime.sessions) as s:
            made.append(portal.link_for_request(s, message.payload["request"], lifetime=timedelta(minutes=15)))
    assert made[0] is not None and made == [made[0], made[0]]
    with portal_runtime.sessions() as s:
        assert len(s.scalars(select(PortalLink)).all()) == 1


def test_the_timeline_shows_the_clients_own_status_changes_as_theirs(
    portal_client: Make, portal_runtime: Runtime, client_ticket: Callable[..., int]
) -> None:
    number = client_ticket("luis", "Scanner offline")
    with transaction(portal_runtime.sessions) as s:
        t = lifecycle.get_ticket(s, number)
        lifecycle.set_status(
            s, t, Status.RESOLVED, actor="Sam (engineer)", now=portal_runtime.now(), policy=portal_runtime.policy
        )
    luis = portal_client("luis")
    assert luis.post(f"/portal/tickets/{number}/still-broken", {"text": "Still offline"}).status_code == 303
    page = luis.get(f"/portal/tickets/{number}").get_data(as_text=True)
    pairs = re.findall(r'<span class="who">([^<]*)</span>\s*<strong>(Status: [^<]*)</strong>', page)
    assert pairs == [("Support team", "Status: Resolved"), ("Luis Ortega", "Status: In progress")]


def test_every_portal_form_without_its_csrf_token_is_refused_and_changes_nothing(
    app: Flask, portal_client: Make, portal_runtime: Runtime, client_ticket: Callable[..., int]
) -> None:
    number = client_ticket("luis", "Scanner offline")
    with transaction(portal_runtime.sessions) as s:
        t = lifecycle.get_ticket(s, number)
        lifecycle.set_status(
            s, t, Status.RESOLVED, actor="tests", now=portal_runtime.now(), policy=portal_runtime.policy
        )
    luis = portal_client("luis")
    data = {"text": "x", "email": EMAILS["luis"], "summary": "x", "risk": "yes", "step": "submit", "token": "x"}

    def state() -> tuple[int, int, int, int]:
        with portal_runtime.sessions() as s:
            return (
                len(s.scalars(select(Ticket)).all()),
                len(lifecycle.get_ticket(s, number).audit),
                len(s.scalars(select(PortalSignInEvent)).all()),
                len(s.scalars(select(PortalSession).where(PortalSession.ended_at.is_(None))).all()),
            )

    before = state()
    posts = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("portal.") and "POST" in (r.methods or ())]
    assert len(posts) >= 7
    for rule in posts:
        url = rule.rule.replace("<int:number>", str(number))
        response = luis.client.post(url, data=data)
        assert response.status_code == 400, url
        assert "This form has expired or did not come from the portal" in response.get_data(as_text=True), url
    assert state() == before
    assert luis.get("/portal/").status_code == 200  # still signed in: sign-out needed its token too


def test_signing_in_as_someone_else_in_the_same_browser_ends_the_first_session(
    portal_client: Make, portal_runtime: Runtime
) -> None:
    desk = portal_client("luis")
    first = desk.client.get_cookie("__Host-portal")
    assert first is not None
    desk.sign_in("dana")
    with portal_runtime.sessions() as s:
        rows = {r.contact.name: r for r in s.scalars(select(PortalSession))}
    assert rows["Luis Ortega"].ended_why == "signed out" and rows["Dana Whitfield"].ended_at is None
    assert "Dana Whitfield" in desk.get("/portal/").get_data(as_text=True)
    # A copy of Luis's cookie no longer works.
    copy = portal_client(None)
    copy.client.set_cookie("__Host-portal", first.value, path="/")
    assert copy.get("/portal/").status_code == 302
    live = desk.client.get_cookie("__Host-portal")
    assert live is not None
    copy.client.set_cookie("__Host-portal", live.value, path="/")
    assert copy.get("/portal/").status_code == 200  # (the same way in, with the live cookie, works)


def test_a_finished_ticket_does_not_say_its_status_twice(
    portal_client: Make, portal_runtime: Runtime, client_ticket: Callable[..., int]
) -> None:
    number = client_ticket("luis", "Scanner offline")
    with transaction(portal_runtime.sessions) as s:
        t = lifecycle.get_ticket(s, number)
        lifecycle.set_status(
            s, t, Status.RESOLVED, actor="tests", now=portal_runtime.now(), policy=portal_runtime.policy
        )
    luis = portal_client("luis")
    for _ in ("resolved", "closed"):
        listing = luis.get("/portal/").get_data(as_text=True)
        page = luis.get(f"/portal/tickets/{number}").get_data(as_text=True)
        assert "data-commitment" not in listing and "data-commitment" not in page and "<dt>Next</dt>" not in page
        luis.post(f"/portal/tickets/{number}/resolved")
    assert "Closed" in luis.get("/portal/").get_data(as_text=True)


def test_a_refused_or_reloaded_form_says_the_chosen_files_must_be_chosen_again(
    portal_client: Make, client_ticket: Callable[..., int]
) -> None:
    number = client_ticket("luis", "Scanner offline")
    luis = portal_client("luis")
    refused = luis.post(
        f"/portal/tickets/{number}/reply",
        {"text": "see the log", "attachments": (io.BytesIO(b""), "scan.log")},
        content_type="multipart/form-data",
    )
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert "scan.log is empty (0 bytes): leave it out or attach another. Nothing was sent: please choose" in page
    assert "see the log</textarea>" in page
    answers = {"summary": "Scanner offline", "affected": "me", "workaround": "yes", "deadline": "no"}
    checked = luis.post(
        "/portal/tickets/new",
        {**answers, "step": "preview", "attachments": (io.BytesIO(b"log"), "scan.log")},
        content_type="multipart/form-data",
    )
    assert checked.status_code == 200 and "data-files-dropped" in checked.get_data(as_text=True)
    plain = luis.post("/portal/tickets/new", {**answers, "step": "preview"})
    assert plain.status_code == 200 and "data-files-dropped" not in plain.get_data(as_text=True)
