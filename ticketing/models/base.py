"""The declarative base, the UTC column type and the enumerations the tables store as text."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC and always returns timezone-aware datetimes, on SQLite too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes cannot be stored: attach a time zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every table."""

    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON}


class Status(str, enum.Enum):
    """Where a ticket stands in its life."""

    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in progress"
    WAITING_ON_CLIENT = "waiting on client"
    RESOLVED = "resolved"
    CLOSED = "closed"

    @property
    def is_open(self) -> bool:
        """True until the ticket is resolved or closed."""
        return self not in (Status.RESOLVED, Status.CLOSED)


OPEN_STATUSES = tuple(s.value for s in Status if s.is_open)


class Source(str, enum.Enum):
    """How the request reached the helpdesk."""

    VOICEMAIL = "voicemail"
    PHONE = "phone"
    EMAIL = "email"
    PORTAL = "portal"
    MANUAL = "manual"
    SMS = "sms"  # a text message to the support number
    ALERT = "alert"  # a monitoring or RMM tool's alert (the Events API v2 endpoint)


class TranscriptionState(str, enum.Enum):
    """Progress of a voicemail's transcription."""

    NONE = "none"  # no recording (missed call, manual ticket)
    PENDING = "pending"
    DONE = "done"
    NO_SPEECH = "no speech"
    FAILED = "failed"
