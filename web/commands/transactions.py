"""A command's changes in one transaction, its domain errors shown as the command's error message."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlalchemy.orm import Session, sessionmaker

from ticketing.db import transaction
from ticketing.errors import DomainError


@contextmanager
def changing(sessions: sessionmaker[Session], *, also: tuple[type[Exception], ...] = ()) -> Iterator[Session]:
    """A transaction; a DomainError (or one of ``also``) rolls it back and ends the command with its message."""
    try:
        with transaction(sessions) as session:
            yield session
    except (DomainError, *also) as exc:
        raise click.ClickException(str(exc)) from None
