"""Console sign-in: the blueprint's session guard, sign-in and sign-out, role checks.

The Flask session cookie (signed, HTTP-only, Secure, SameSite=Lax) carries only
a random token; the ``console_sessions`` row behind it decides whether it still
counts, so signing out, the idle timeout and disabling a user end it for every
copy of the cookie.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, flash, g, redirect, render_template, request, session, url_for

from runtime import Runtime
from runtime.web import rt
from ticketing import accounts
from ticketing.db import transaction

blueprint = Blueprint(
    "console",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/console/static",
)

SESSION_KEY = "sid"
PUBLIC_ENDPOINTS = frozenset({"console.login", "console.static"})
# Answered with 401 instead of a redirect to the sign-in page: fetched by scripts or media elements.
NON_PAGE_ENDPOINTS = frozenset({"console.queue_rows", "console.ticket_audio"})
IDLE_MESSAGES = {
    "idle": "You were signed out after a period of inactivity.",
    "expired": "Your session reached its maximum length: please sign in again.",
    "disabled": "This account was disabled.",
    "password changed": "The password was changed: please sign in again.",
}


@dataclass(frozen=True)
class Viewer:
    """The signed-in user, detached from the database."""

    id: int
    username: str
    display_name: str
    role: str

    @property
    def can_triage(self) -> bool:
        """Coordinators and admins route and re-prioritise tickets; engineers work them."""
        return self.role in (accounts.COORDINATOR, accounts.ADMIN)


def viewer() -> Viewer:
    """The signed-in user of this request (set by the guard)."""
    return g.viewer  # type: ignore[no-any-return]


def _limits(runtime: Runtime) -> dict[str, timedelta]:
    s = runtime.settings
    return {"idle": timedelta(minutes=s.console_idle_minutes), "lifetime": timedelta(hours=s.console_session_hours)}


def _load_viewer(*, touch: bool) -> Viewer | None:
    token = session.get(SESSION_KEY)
    if not token:
        return None
    runtime = rt()
    with transaction(runtime.sessions) as s:
        check = accounts.check_session(s, token, now=runtime.now(), touch=touch, **_limits(runtime))
        user = check.user
        found = None if user is None else Viewer(user.id, user.username, user.display_name, user.role)
    if found is None:
        session.clear()
        if check.ended_why in IDLE_MESSAGES:
            flash(IDLE_MESSAGES[check.ended_why], "info")
    return found


@blueprint.before_request
def require_session() -> Response | tuple[str, int] | None:
    """Every console URL but the sign-in page and static files needs a live session."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    # A page polling by itself is not activity; the script says when the user did something.
    touch = request.endpoint != "console.queue_rows" or request.args.get("active") == "1"
    found = _load_viewer(touch=touch)
    if found is None:
        if request.endpoint in NON_PAGE_ENDPOINTS or request.method != "GET":
            return "sign in first\n", 401
        return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
    g.viewer = found
    return None


def role_required(*roles: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Refuse (403) users whose role is not one of ``roles``."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if viewer().role not in roles:
                return (
                    render_template(
                        "console/error.html",
                        title="Not allowed",
                        message=f"Your role ({viewer().role}) cannot do this: ask a coordinator.",
                    ),
                    403,
                )
            return view(*args, **kwargs)

        return wrapper

    return decorate


def safe_next(target: str | None) -> str:
    """A same-site path to go to after signing in (never another host)."""
    if not target:
        return url_for("console.queue")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return url_for("console.queue")
    if _has_control_characters(target):
        return url_for("console.queue")
    return target


def _has_control_characters(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int]:
    """Sign in; the session is rotated (a fresh token and CSRF secret) on success."""
    runtime = rt()
    if _has_control_characters(request.values.get("next", "")):
        # CR/LF in a redirect target is a header-injection attempt, never a link we made.
        return render_template(
            "console/error.html", title="Bad link", message="This sign-in link is damaged: open the console again."
        ), 400
    if request.method == "GET":
        if session.get(SESSION_KEY) and _load_viewer(touch=False) is not None:
            return redirect(safe_next(request.args.get("next")))
        return render_template("console/login.html", next=request.args.get("next", ""), username="")
    username = request.form.get("username", "")
    password = request.form.get("password", "")
    settings = runtime.settings
    error = None
    with transaction(runtime.sessions) as s:
        now = runtime.now()
        try:
            user = accounts.authenticate(
                s,
                username,
                password,
                now=now,
                address=request.remote_addr,
                limits=accounts.SignInLimits(
                    account_failures=settings.console_lockout_failures,
                    account_lockout=timedelta(minutes=settings.console_lockout_minutes),
                    address_failures=settings.console_signin_attempts_per_address,
                    address_window=timedelta(minutes=settings.console_signin_window_minutes),
                ),
            )
        except accounts.LoginRefused as exc:
            error = str(exc)  # the failure count above is committed with this transaction
        else:
            accounts.end_session(s, session.get(SESSION_KEY), now=now, why="replaced")
            token = accounts.start_session(
                s, user, now=now, remote_addr=request.remote_addr, user_agent=request.headers.get("User-Agent")
            )
    if error is not None:
        return render_template(
            "console/login.html", error=error, next=request.form.get("next", ""), username=username
        ), 401
    session.clear()  # rotation: nothing of the anonymous session survives, the CSRF secret included
    session[SESSION_KEY] = token
    session.permanent = True
    return redirect(safe_next(request.form.get("next")), code=303)


@blueprint.post("/logout")
def logout() -> Response:
    """Sign out: the session ends on the server, so a copied cookie is worthless."""
    runtime = rt()
    with transaction(runtime.sessions) as s:
        accounts.end_session(s, session.get(SESSION_KEY), now=runtime.now())
    session.clear()
    flash("Signed out.", "info")
    return redirect(url_for("console.login"), code=303)
