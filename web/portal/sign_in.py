"""Signing in to the portal by emailed link, and signing out."""

from __future__ import annotations

from flask import Response, g, make_response, redirect, render_template, request, url_for

from runtime.web import rt
from ticketing import portal
from ticketing.db import transaction
from ticketing.errors import DomainError, InvalidTransition
from web.portal.auth import ENDED, _current_session, blueprint, cookie_name, link_limits
from workers.dispatch import hand_off_after_response


@blueprint.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Response | str | tuple[str, int]:
    """Enter an email address; a link is emailed when it is a contact's. The same answer either way."""
    runtime = rt()
    if request.method == "GET":
        return render_template("portal/sign_in.html", email="", ended=ENDED.get(request.args.get("ended") or ""))
    email = request.form.get("email", "")
    try:
        with transaction(runtime.sessions) as s:
            portal.request_link(
                s, email, now=runtime.now(), limits=link_limits(runtime), remote_addr=request.remote_addr
            )
    except portal.RateLimited as exc:
        with transaction(runtime.sessions) as s:  # the refusal itself is audited (the failed transaction rolled back)
            portal.log_event(
                s,
                "rate limited",
                now=runtime.now(),
                email=portal.normalize_email(email),
                remote_addr=request.remote_addr,
            )
        return render_template("portal/sign_in.html", email=email, error=str(exc)), 429
    except DomainError as exc:
        return render_template("portal/sign_in.html", email=email, error=str(exc)), 400
    response = Response(
        render_template(
            "portal/link_sent.html", email=portal.normalize_email(email), minutes=runtime.settings.portal_link_minutes
        )
    )
    hand_off_after_response(response, runtime)
    return response


@blueprint.route("/sign-in/link", methods=["GET", "POST"])
def confirm_link() -> Response | str | tuple[str, int]:
    """The emailed link opens a page; only pressing its button signs in (mail scanners open links by themselves).

    The token rides in the query string of the link and in the form of the button, never in a path, so the
    access log (which records paths only, see the Procfile) never holds it; no page sends it on as a Referer.
    """
    runtime = rt()
    if request.method == "GET":
        token = request.args.get("token", "")
        with runtime.sessions() as s:
            check = portal.check_link(s, token, now=runtime.now())
            name = check.contact.name if check.contact else None
        if check.contact is None:
            _token, found, _why = _current_session(runtime)
            if found is not None:
                # The link clicked a second time, in the browser it already signed in: nothing is wrong.
                g.portal_viewer = found
                return _no_referrer(
                    render_template(
                        "portal/message.html",
                        title="You are already signed in",
                        message=f"This sign-in link was used already, and you are still signed in as {found.name}.",
                    )
                )
            return _no_referrer(_link_problem(check.why))
        return _no_referrer(render_template("portal/confirm.html", token=token, name=name))
    token = request.form.get("token", "")
    try:
        with transaction(runtime.sessions) as s:
            # A browser signed in as someone else (a shared front-desk PC): that session ends on the server too.
            portal.end_session(
                s, request.cookies.get(cookie_name(runtime)), now=runtime.now(), remote_addr=request.remote_addr
            )
            _contact, session_token = portal.sign_in(
                s,
                token,
                now=runtime.now(),
                remote_addr=request.remote_addr,
                user_agent=request.headers.get("User-Agent"),
            )
    except InvalidTransition as exc:
        with transaction(runtime.sessions) as s:  # audited outside the rolled-back transaction
            portal.log_event(s, "refused", now=runtime.now(), remote_addr=request.remote_addr, why=str(exc))
        return _no_referrer(_link_problem(str(exc)))
    response = redirect(url_for("portal.tickets"), code=303)
    response.set_cookie(
        cookie_name(runtime),
        session_token,
        max_age=runtime.settings.portal_session_hours * 3600,
        path="/",
        secure=runtime.settings.console_secure_cookies,
        httponly=True,
        samesite="Lax",
    )
    return _no_referrer(response)


def _no_referrer(answer: Response | str | tuple[str, int]) -> Response:
    """A sign-in link's page tells no other page (its stylesheet, a link on it) the address it was opened at."""
    response = make_response(answer)
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _link_problem(why: str | None) -> tuple[str, int]:
    messages = {
        "used": "This sign-in link was already used. Each link works once: ask for a new one below.",
        "expired": "This sign-in link has expired. Links work for a short time: ask for a new one below.",
    }
    message = messages.get(why or "", "This sign-in link is not valid. Ask for a new one below.")
    return render_template("portal/sign_in.html", email="", error=message), 400


@blueprint.post("/sign-out")
def sign_out() -> Response:
    """Sign out: the session ends on the server, so a copied cookie is worthless."""
    runtime = rt()
    with transaction(runtime.sessions) as s:
        portal.end_session(
            s, request.cookies.get(cookie_name(runtime)), now=runtime.now(), remote_addr=request.remote_addr
        )
    response = redirect(url_for("portal.sign_in", ended="signed out"), code=303)
    response.delete_cookie(cookie_name(runtime), path="/", secure=runtime.settings.console_secure_cookies)
    return response
