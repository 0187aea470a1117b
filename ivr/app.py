"""The Flask application factory."""

from __future__ import annotations

from datetime import datetime

from flask import Flask, current_app, jsonify

from settings import Settings, load_settings
from workers.runtime import Clock, Runtime, build_runtime


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
    app.config.update(SECRET_KEY=runtime.settings.secret_key)
    app.extensions["supportline"] = runtime

    from ivr import cli, health, metrics, oncall_cli, paging, voice

    app.register_blueprint(health.blueprint)
    app.register_blueprint(metrics.blueprint)
    app.register_blueprint(voice.blueprint)
    app.register_blueprint(paging.blueprint)
    app.register_blueprint(paging.ack_blueprint)  # the acknowledge link of email pages
    cli.register(app)
    oncall_cli.register(app)

    from ivr import console

    console.init_app(app, runtime)  # coordinator console, JSON API, users/api-token commands, CSRF

    @app.errorhandler(404)
    def not_found(_error: Exception) -> tuple[object, int]:
        return jsonify(error="not found"), 404

    return app


def rt() -> Runtime:
    """The runtime of the app serving the current request."""
    return current_app.extensions["supportline"]  # type: ignore[no-any-return]


def simulated_clock(real: Clock) -> Clock:
    """A clock that takes the call simulator's time header when a request carries one (demos only)."""
    from flask import has_request_context, request

    from ivr.simulate import SIMULATED_TIME_HEADER

    def now() -> datetime:
        if has_request_context():
            header = request.headers.get(SIMULATED_TIME_HEADER)
            if header:
                try:
                    at = datetime.fromisoformat(header)
                except ValueError:
                    at = None
                if at is not None and at.tzinfo is not None:
                    return at
        return real()

    return now
