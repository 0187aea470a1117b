"""The schema of a test or benchmark database, brought up by the project's own migrations."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from settings import ROOT


def migrate(url: str) -> None:
    """Bring the schema at ``url`` to the newest migration."""
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # configparser interpolation
    command.upgrade(config, "head")
