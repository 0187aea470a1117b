"""Liveness and readiness probes for load balancers, process managers and monitoring."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from flask import Blueprint, jsonify
from redis.exceptions import RedisError
from sqlalchemy import Engine, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from runtime import Runtime
from runtime.web import rt
from ticketing.models import Heartbeat

blueprint = Blueprint("health", __name__)
log = logging.getLogger(__name__)

WRITE_TIMEOUT_MS = 2000  # a database that cannot commit one row in 2 s is not taking tickets either
# SQLite in WAL mode reuses the space of its write-ahead log after a checkpoint, so on a full disk a one-row
# write may still commit while a new ticket (which grows the file) fails: the free space decides instead.
SQLITE_MIN_FREE_BYTES = 1024 * 1024


def database_write_failure(runtime: Runtime) -> str | None:
    """None when the database commits a tiny real write (the ``readiness`` heartbeat row); else why not, for logs.

    A write rolled back never reaches the disk on PostgreSQL (nor, in WAL mode, on SQLite), so the row is
    committed: on PostgreSQL a full disk, a read-only server or a revoked privilege fail it, on SQLite a full disk.
    """
    engine = runtime.engine
    dialect = engine.dialect.name
    if dialect == "sqlite":
        short = _sqlite_free_space(engine)
        if short is not None:
            return short
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    upsert = insert(Heartbeat).values(name="readiness", at=runtime.now())
    upsert = upsert.on_conflict_do_update(index_elements=[Heartbeat.name], set_={"at": upsert.excluded.at})
    try:
        with engine.begin() as conn:
            if dialect == "postgresql":
                conn.execute(text(f"SET LOCAL statement_timeout = {WRITE_TIMEOUT_MS}"))
                conn.execute(text(f"SET LOCAL lock_timeout = {WRITE_TIMEOUT_MS}"))
            elif dialect == "sqlite":
                conn.exec_driver_sql(f"PRAGMA busy_timeout={WRITE_TIMEOUT_MS}")
            try:
                conn.execute(upsert)
            finally:
                if dialect == "sqlite":
                    conn.exec_driver_sql("PRAGMA busy_timeout=15000")  # the pool's connections keep make_engine's
    except SQLAlchemyError as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
    return None


def _sqlite_free_space(engine: Engine) -> str | None:
    database = engine.url.database
    if not database or database == ":memory:":
        return None
    try:
        stat = os.statvfs(Path(database).resolve().parent)
    except OSError as exc:
        return f"cannot check the free space beside {database}: {exc}"
    free = stat.f_bavail * stat.f_frsize
    if free < SQLITE_MIN_FREE_BYTES:
        return f"only {free} bytes free on the disk of {database}"
    return None


@blueprint.get("/healthz")
def healthz() -> tuple[object, int]:
    """The process is up."""
    return jsonify(status="ok"), 200


@blueprint.get("/readyz")
def readyz() -> tuple[object, int]:
    """The database commits a write, Redis answers, a worker has its model loaded and Twilio's REST API takes pages.

    503 names each failing part in a word or two; the details (error texts, which can name accounts and
    internal hosts) go to the log only, since the probe answers anyone who can reach it.
    """
    runtime = rt()
    failing: dict[str, str] = {}
    try:
        with runtime.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        failing["database"] = "unreachable"
        log.warning("readiness: the database is unreachable: %s", exc)
    else:
        refused = database_write_failure(runtime)
        if refused is not None:
            failing["database"] = "refuses writes"
            log.warning("readiness: the database refuses writes: %s", refused)
    try:
        runtime.redis.ping()
        from runtime.heartbeat import live_models

        if not live_models(runtime.redis):
            failing["model"] = "no live worker has a transcription model loaded"
    except (RedisError, OSError) as exc:
        failing["redis"] = "unreachable"
        log.warning("readiness: Redis is unreachable: %s", exc)
    if "database" not in failing or failing["database"] == "refuses writes":
        twilio = _twilio_failing(runtime)
        if twilio:
            failing["twilio_rest"] = "failing"
            log.warning("readiness: Twilio's REST API is failing: %s", twilio)
    if failing:
        return jsonify(status="unavailable", failing=failing), 503
    return jsonify(status="ready"), 200


def _twilio_failing(runtime: Runtime) -> str | None:
    """Twilio's REST API counts as failing once pages wait for it after repeated provider errors."""
    from ticketing.paging import provider_failing

    try:
        with runtime.sessions() as s:
            waiting, error = provider_failing(s, channels=("sms", "call", "follow-up"))
    except SQLAlchemyError:
        return None
    if waiting == 0:
        return None
    return f"{waiting} page(s) waiting after repeated provider errors: {(error or '')[:200]}"
