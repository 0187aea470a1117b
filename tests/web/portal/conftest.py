"""Portal fixtures: two clients with contacts (a primary and a plain one), a portal test client that signs in by link."""

from __future__ import annotations

import mailbox
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

import runtime as rt
from runtime import Runtime
from tests.web.conftest import (  # noqa: F401 - fixtures shared with the console tests
    Console,
    artifacts,
    browser_database,
    browser_runtime,
    console,
    password_hash,
    users,
)
from ticketing import lifecycle
from ticketing.db import transaction
from ticketing.models import Client, Contact
from web.app import create_app

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
LINK = re.compile(r"https?://\S+/portal/sign-in/link\?token=([A-Za-z0-9_-]+)")
CONFIRM = "/portal/sign-in/link"


def link_path(token: str) -> str:
    """Where the emailed link points on this site."""
    return f"{CONFIRM}?token={token}"


@dataclass(frozen=True)
class Directory:
    """Who is who in the seeded directory."""

    acme: int
    harbor: int
    dana: int  # Acme's primary contact
    luis: int  # Acme, plain contact
    priya: int  # Harbor's primary contact


EMAILS = {"dana": "dana@acme-dental.example", "luis": "luis@acme-dental.example", "priya": "priya@harbor.example"}


def seed_directory(runtime: Runtime) -> Directory:
    """Acme Dental (Dana, primary; Luis) and Harbor Logistics (Priya, primary)."""
    with transaction(runtime.sessions) as s:
        acme = Client(name="Acme Dental", main_number="+18055550100")
        harbor = Client(name="Harbor Logistics", main_number="+18055550200")
        s.add_all([acme, harbor])
        s.flush()
        dana = Contact(
            client=acme, name="Dana Whitfield", phone="+18055550142", email="Dana@Acme-Dental.example", primary=True
        )
        luis = Contact(client=acme, name="Luis Ortega", phone="+18055550143", email=EMAILS["luis"], primary=False)
        priya = Contact(client=harbor, name="Priya Raman", phone="+18055550211", email=EMAILS["priya"], primary=True)
        s.add_all([dana, luis, priya])
        s.flush()
        return Directory(acme.id, harbor.id, dana.id, luis.id, priya.id)


@pytest.fixture
def portal_runtime(runtime: Runtime, tmp_path: Path) -> Runtime:
    """The test runtime with mail to a Maildir of this test, and no hand-off to Redis after responses."""
    runtime.settings = runtime.settings.with_overrides(
        dispatch_after_response=False, dev_mailbox_dir=tmp_path / "mail", smtp_url=""
    )
    return runtime


@pytest.fixture
def app(portal_runtime: Runtime) -> Flask:
    """The web app (portal, console, API) on the test database."""
    return create_app(runtime=portal_runtime)


@pytest.fixture
def directory(portal_runtime: Runtime) -> Directory:
    """The seeded directory."""
    return seed_directory(portal_runtime)


def run_link_jobs(runtime: Runtime) -> list[str]:
    """Run every pending sign-in mail job of the outbox (as the worker would), in order."""
    from sqlalchemy import select

    from ticketing.models import OutboxMessage
    from ticketing.outbox import PORTAL_LINK
    from workers.portal import send_sign_in_link

    with runtime.sessions() as s:
        payloads = list(
            s.scalars(
                select(OutboxMessage.payload)
                .where(OutboxMessage.kind == PORTAL_LINK, OutboxMessage.completed_at.is_(None))
                .order_by(OutboxMessage.id)
            )
        )
    rt.install(runtime)
    try:
        return [send_sign_in_link(**payload) for payload in payloads]
    finally:
        rt.install(None)


def mails(runtime: Runtime) -> list[Any]:
    """Every message in the development Maildir."""
    return list(mailbox.Maildir(runtime.settings.dev_mailbox_dir, create=True))


def tokens_in(message: Any) -> list[str]:
    """The sign-in tokens in a message's text."""
    return LINK.findall(message.get_payload(decode=True).decode())


def last_link(runtime: Runtime, to: str) -> str:
    """The token of the newest sign-in link mailed to ``to`` (the one whose hash the newest link row holds)."""
    import hashlib

    from sqlalchemy import select

    from ticketing.models import PortalLink

    with runtime.sessions() as s:
        newest = s.scalars(
            select(PortalLink)
            .where(PortalLink.email == to.lower(), PortalLink.sent_at.is_not(None))
            .order_by(PortalLink.id.desc())
        ).first()
    assert newest is not None, f"no link sent to {to}"
    for message in mails(runtime):
        if to.lower() in str(message["To"]).lower():
            for token in tokens_in(message):
                if hashlib.sha256(token.encode()).hexdigest() == newest.token_hash:
                    return token
    raise AssertionError(f"no mail to {to} carries the newest link")


@dataclass
class PortalClient:
    """A browser-like client of the portal: takes CSRF tokens from the forms it posts."""

    client: FlaskClient
    runtime: Runtime
    token: str | None = field(default=None)

    def csrf(self, path: str = "/portal/sign-in") -> str:
        """The CSRF token of the form at ``path``."""
        match = _CSRF.search(self.client.get(path, follow_redirects=True).get_data(as_text=True))
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def ask_link(self, email: str, **kwargs: Any) -> TestResponse:
        """Ask for a sign-in link."""
        return self.client.post("/portal/sign-in", data={"csrf_token": self.csrf(), "email": email}, **kwargs)

    def sign_in(self, who: str) -> None:
        """The whole flow: ask, the job mails the link, open it, press the button."""
        assert self.ask_link(EMAILS[who]).status_code == 200
        assert run_link_jobs(self.runtime)[-1] == "sent"
        token = last_link(self.runtime, EMAILS[who])
        page = self.client.get(link_path(token))
        assert page.status_code == 200
        match = _CSRF.search(page.get_data(as_text=True))
        assert match
        response = self.client.post(CONFIRM, data={"csrf_token": match.group(1), "token": token})
        assert response.status_code == 303, response.get_data(as_text=True)
        self.token = None

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> TestResponse:
        """Post a portal form with this session's CSRF token."""
        if self.token is None:
            self.token = self.csrf("/portal/")
        return self.client.post(path, data={"csrf_token": self.token, **(data or {})}, **kwargs)

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        """GET a portal page."""
        return self.client.get(path, **kwargs)


@pytest.fixture
def portal_client(app: Flask, portal_runtime: Runtime, directory: Directory) -> Callable[[str | None], PortalClient]:
    """A new portal client, signed in as ``who`` (dana, luis, priya) or nobody."""

    def make(who: str | None = None) -> PortalClient:
        c = PortalClient(app.test_client(), portal_runtime)
        if who:
            c.sign_in(who)
        return c

    return make


@pytest.fixture
def client_ticket(portal_runtime: Runtime, directory: Directory) -> Callable[..., int]:
    """Open a ticket for a contact (by key) at the fixed clock; returns its number."""
    ids = {"dana": directory.dana, "luis": directory.luis, "priya": directory.priya}

    def make(
        who: str, summary: str = "Printer jammed", priority: str = "P3", source: str = "phone", **extra: Any
    ) -> int:
        with transaction(portal_runtime.sessions) as s:
            contact = s.get(Contact, ids[who])
            t = lifecycle.open_ticket(
                s,
                policy=portal_runtime.policy,
                now=portal_runtime.now(),
                priority=priority,
                source=source,
                actor="tests",
                caller_number=contact.phone,
                summary=summary,
                client_id=contact.client_id,
            )
            t.contact = contact
            for key, value in extra.items():
                setattr(t, key, value)
            return int(t.number or 0)

    return make
