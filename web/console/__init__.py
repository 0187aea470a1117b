"""The coordinator console: server-rendered pages for the queue, tickets, on-call and exceptional events.

``init_app`` wires it into the app: session cookie settings, CSRF protection
for every form (the Twilio webhooks are exempt, they are signature-checked; the
JSON API is exempt, it takes bearer tokens and never cookies), security headers,
the console and API blueprints and their CLI commands.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from flask import Flask, Response, render_template, request, send_from_directory
from flask_wtf.csrf import CSRFError, CSRFProtect

from runtime import Runtime
from web.security import page_headers

csrf = CSRFProtect()


def init_app(app: Flask, runtime: Runtime) -> None:
    """Configure cookies and CSRF, and register the console, the JSON API and their commands."""
    from web import api

    # Each page module adds its routes to the one console blueprint when imported.
    from web.console import (  # noqa: F401
        auth,
        callbacks,
        client_summary,
        conversation,
        dev,
        events,
        integrations,
        integrations_alerts,
        integrations_connectwise,
        integrations_webhooks,
        layout,
        mail,
        new_ticket,
        oncall,
        portal_invite,
        queue,
        ticket,
    )

    settings = runtime.settings
    secure = settings.console_secure_cookies
    app.config.update(
        # __Host- binds the cookie to this exact origin (Secure, Path=/, no Domain) where HTTPS allows it.
        SESSION_COOKIE_NAME="__Host-supportline" if secure else "supportline",
        SESSION_COOKIE_SECURE=secure,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.console_session_hours),
        # The token lives as long as the server-side session (idle timeout, sign-out), not a fixed hour.
        WTF_CSRF_TIME_LIMIT=None,
    )
    app.register_blueprint(auth.blueprint)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(integrations_connectwise.callbacks)
    csrf.init_app(app)
    for blueprint in app.blueprints.values():
        # Twilio cannot send a CSRF token: its webhooks are checked by X-Twilio-Signature instead.
        if (
            (blueprint.url_prefix or "").startswith("/twilio")
            or blueprint is api.blueprint
            or blueprint is integrations_connectwise.callbacks  # ConnectWise proves itself by the URL's secret
        ):
            csrf.exempt(blueprint)

    @app.get("/favicon.ico")
    def favicon() -> Response:
        # Browsers ask for /favicon.ico before reading the page's <link rel="icon">.
        return send_from_directory(
            Path(__file__).parent / "static", "favicon.svg", mimetype="image/svg+xml", max_age=86400
        )

    @app.errorhandler(CSRFError)
    def csrf_failed(error: CSRFError) -> tuple[str, int]:
        return (
            render_template(
                "console/error.html",
                title="Form refused",
                message="This form was not sent by a signed-in console page, or it has expired. "
                "Go back, reload the page and try again.",
                detail=error.description,
            ),
            400,
        )

    @app.after_request
    def security_headers(response: Response) -> Response:
        if request.blueprint in (auth.blueprint.name, api.blueprint.name) or response.mimetype == "text/html":
            return page_headers(response, "console.static")
        return response
