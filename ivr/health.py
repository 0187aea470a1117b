"""Liveness and readiness probes for load balancers and process managers."""

from __future__ import annotations

from flask import Blueprint, jsonify
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ivr.app import rt

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> tuple[object, int]:
    """The process is up."""
    return jsonify(status="ok"), 200


@blueprint.get("/readyz")
def readyz() -> tuple[object, int]:
    """The database and Redis answer, a worker has its model loaded and Twilio's REST API takes pages;
    503 names the failing part."""
    runtime = rt()
    failing: dict[str, str] = {}
    try:
        with runtime.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        failing["database"] = type(exc).__name__
    try:
        runtime.redis.ping()
        from workers.worker import live_models

        if not live_models(runtime.redis):
            failing["model"] = "no live worker has a transcription model loaded"
    except (RedisError, OSError) as exc:
        failing["redis"] = type(exc).__name__
    if "database" not in failing:
        twilio = _twilio_failing(runtime)
        if twilio:
            failing["twilio_rest"] = twilio
    if failing:
        return jsonify(status="unavailable", failing=failing), 503
    return jsonify(status="ready"), 200


def _twilio_failing(runtime: object) -> str | None:
    """Twilio's REST API counts as failing once pages wait for it after repeated provider errors."""
    from ticketing.paging import provider_failing

    try:
        with runtime.sessions() as s:  # type: ignore[attr-defined]
            waiting, error = provider_failing(s, channels=("sms", "call", "follow-up"))
    except SQLAlchemyError:
        return None
    if waiting == 0:
        return None
    return f"{waiting} page(s) waiting after repeated provider errors: {(error or '')[:200]}"
