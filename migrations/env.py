"""Alembic environment: migrates the database that settings point at."""

from __future__ import annotations

from alembic import context

from settings import load_settings
from ticketing.db import make_engine, normalize_url
from ticketing.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    # An explicit -x url=... or sqlalchemy.url (tests) wins over the environment.
    override = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    return normalize_url(override or load_settings().database_url)


def run_migrations_offline() -> None:
    """Emit SQL without a connection."""
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate through a live connection."""
    engine = make_engine(_url())
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
