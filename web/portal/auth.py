"""Portal sign-in state: the blueprint, the portal cookie, the session guard every page but sign-in passes.

Separate from the console in everything that grants access: its own cookie and its own
server-side sessions; a console session never opens the portal.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Response, g, redirect, render_template, request, url_for

from runtime import Runtime
from runtime.web import rt
from ticketing import portal
from ticketing.db import transaction
from ticketing.portal import PortalViewer

blueprint = Blueprint(
    "portal",
    __name__,
    url_prefix="/portal",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

PUBLIC_ENDPOINTS = frozenset({"portal.sign_in", "portal.confirm_link", "portal.static"})
ENDED = {
    "idle": "You were signed out after a period of inactivity. Ask for a new sign-in link below.",
    "expired": "Your session reached its maximum length. Ask for a new sign-in link below.",
    "contact removed": "Your contact record changed. Ask for a new sign-in link below.",
    "contact changed": "Your contact record changed. Ask for a new sign-in link below.",
    "signed out": "You are signed out.",
}


def cookie_name(runtime: Runtime) -> str:
    """``__Host-portal`` where HTTPS allows it (Secure, Path=/, no Domain), ``portal`` on plain-HTTP development."""
    return "__Host-portal" if runtime.settings.console_secure_cookies else "portal"


def viewer() -> PortalViewer:
    """The signed-in contact of this request (set by the guard)."""
    return g.portal_viewer  # type: ignore[no-any-return]


def _limits(runtime: Runtime) -> dict[str, timedelta]:
    s = runtime.settings
    return {"idle": timedelta(minutes=s.portal_idle_minutes), "lifetime": timedelta(hours=s.portal_session_hours)}


def link_limits(runtime: Runtime) -> portal.LinkLimits:
    """The sign-in link settings as the domain takes them."""
    s = runtime.settings
    return portal.LinkLimits(
        lifetime=timedelta(minutes=s.portal_link_minutes),
        per_address=s.portal_link_limit_per_address,
        per_source=s.portal_link_limit_per_source,
        window=timedelta(minutes=s.portal_link_window_minutes),
    )


@blueprint.before_request
def require_portal_session() -> Response | tuple[str, int] | None:
    """Every portal URL but sign-in and static files needs a live portal session (never a console one)."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    runtime = rt()
    token, found, why = _current_session(runtime)
    if found is None:
        if request.endpoint in ("portal.triage_preview", "portal.attachment"):
            return "sign in to the portal first\n", 401
        if request.method != "GET":
            # A form sent after the session ended: say so (nothing was changed) rather than lose it silently.
            html = render_template(
                "portal/message.html",
                title="Please sign in again",
                message=ENDED.get(why or "", "You are not signed in.")
                + " Nothing was sent: copy anything you wrote before you sign in again.",
            )
            return html, 401
        response = redirect(url_for("portal.sign_in", ended=why) if why in ENDED else url_for("portal.sign_in"))
        if token:
            response.delete_cookie(cookie_name(runtime), path="/", secure=runtime.settings.console_secure_cookies)
        return response
    g.portal_viewer = found
    return None


def _current_session(runtime: Runtime) -> tuple[str | None, PortalViewer | None, str | None]:
    """This browser's portal cookie, the contact it signs in (if still live), and why it ended (if it did)."""
    token = request.cookies.get(cookie_name(runtime))
    if not token:
        return None, None, None
    with transaction(runtime.sessions) as s:
        check = portal.check_session(s, token, now=runtime.now(), **_limits(runtime))
    return token, check.viewer, check.ended_why
