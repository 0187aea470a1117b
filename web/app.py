"""The Flask application factory."""

from __future__ import annotations

import json
import logging
from datetime import datetime

from flask import Flask, Response, abort, jsonify, request
from sqlalchemy.exc import DataError
from werkzeug.middleware.proxy_fix import ProxyFix

from runtime import Clock, Runtime, build_runtime
from settings import Settings, load_settings

log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None, *, runtime: Runtime | None = None, clock: Clock | None = None
) -> Flask:
    """Build the web app; broken configuration raises before it serves anything."""
    if runtime is None:
        # Web requests must never hang on Redis: fail fast and let the outbox catch up.
        runtime = build_runtime(settings or load_settings(), clock=clock, redis_timeout=0.5)
    if runtime.settings.allow_simulated_time:
        runtime.clock = simulated_clock(runtime.clock)
    app = Flask(__name__)
    limit = runtime.settings.max_request_bytes
    # Werkzeug enforces both while reading a body without Content-Length (chunked); the hook below
    # answers a declared oversized body before anything reads it. A blueprint that takes files (the portal,
    # the inbound-mail webhooks) raises request.max_content_length for its own routes in a
    # url_value_preprocessor, which runs before this hook.
    app.config.update(SECRET_KEY=runtime.settings.secret_key, MAX_CONTENT_LENGTH=limit, MAX_FORM_MEMORY_SIZE=limit)

    @app.before_request
    def refuse_oversized_bodies() -> Response | None:
        allowed = request.max_content_length or limit
        if request.content_length is not None and request.content_length > allowed:
            abort(413)  # through the error handlers, so a blueprint's own 413 page (the portal's) is used
        return None

    @app.errorhandler(413)
    def too_large(_error: Exception | None = None) -> Response:
        # Twilio's webhooks are a few KiB, so no caller is behind a 413; the console and API get plain words.
        body = {"error": f"request body larger than {request.max_content_length or limit} bytes"}
        if request.path.startswith("/api/"):
            return Response(json.dumps(body), status=413, mimetype="application/json")
        return Response(body["error"] + "\n", status=413, mimetype="text/plain")

    app.extensions["supportline"] = runtime
    if runtime.settings.trusted_proxy_hops:
        # The client's address (sign-in and API throttling, session records) from X-Forwarded-For, and
        # whether it came over HTTPS (HSTS) from X-Forwarded-Proto; nothing else the proxy says.
        hops = runtime.settings.trusted_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=0, x_port=0, x_prefix=0)  # type: ignore[method-assign]
    from web.security import strict_transport_security

    app.after_request(strict_transport_security)

    from ivr import paging, voice
    from web import alerts, commands, console, health, inbound_mail, metrics, portal, status

    app.register_blueprint(health.blueprint)
    app.register_blueprint(metrics.blueprint)
    app.register_blueprint(voice.blueprint)
    app.register_blueprint(paging.blueprint)
    app.register_blueprint(inbound_mail.blueprint)
    app.register_blueprint(alerts.blueprint)  # monitoring tools' alerts (the PagerDuty Events API v2)
    app.register_blueprint(paging.ack_blueprint)  # the acknowledge link of email pages
    app.register_blueprint(status.blueprint)  # the public status page: known incidents, no sign-in
    console.init_app(app, runtime)  # coordinator console, JSON API, CSRF
    console.csrf.exempt(inbound_mail.blueprint)  # provider webhooks: signature-checked, never cookies
    console.csrf.exempt(alerts.blueprint)  # monitoring tools: a routing key in the body, never cookies
    portal.init_app(app)  # client portal (its own cookie and sessions; CSRF as above)
    commands.register(app)  # the ``flask --app wsgi ...`` command groups

    @app.errorhandler(OverflowError)
    @app.errorhandler(DataError)
    def number_out_of_range(_error: Exception) -> Response:
        # A number in the URL or form too big for the database column: bad input, not a server error.
        log.info("refused out-of-range input on %s: %s", request.path, type(_error).__name__)
        message = "a number in the request is out of range"
        if request.path.startswith("/api/"):
            return Response(json.dumps({"error": message}), status=400, mimetype="application/json")
        return Response(message + "\n", status=400, mimetype="text/plain")

    @app.errorhandler(404)
    def not_found(_error: Exception) -> tuple[object, int]:
        return jsonify(error="not found"), 404

    return app


def simulated_clock(real: Clock) -> Clock:
    """A clock that takes the call simulator's time header when a request carries one (demos only)."""
    from flask import has_request_context, request

    from ivr.simulate import SIMULATED_TIME_HEADER
    from runtime.devclock import SharedOffsetClock

    def now() -> datetime:
        if has_request_context():
            header = request.headers.get(SIMULATED_TIME_HEADER)
            if header:
                try:
                    at = datetime.fromisoformat(header)
                except ValueError:
                    at = None
                if at is not None and at.tzinfo is not None:
                    if isinstance(real, SharedOffsetClock):
                        real.move_to(at)  # development mode: every process follows the simulated call's time
                    return at
        return real()

    return now
