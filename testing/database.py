"""The schema of a test or benchmark database, brought up by the project's own migrations."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from settings import ROOT


def alembic_config(url: str) -> Config:
    """The project's Alembic configuration, pointed at the database at ``url``."""
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # configparser interpolation
    return config


def migrate(url: str, revision: str = "head") -> None:
    """Bring the schema at ``url`` to ``revision`` (the newest migration unless told)."""
    command.upgrade(alembic_config(url), revision)
