"""Retention: recordings and transcripts older than the configured age are purged, and the purge audited."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

from sqlalchemy import or_, select

from runtime import Runtime
from ticketing.audit import audit
from ticketing.models import Ticket

log = logging.getLogger(__name__)
BATCH = 200


def purge_expired(runtime: Runtime) -> int:
    """Delete stored audio and transcripts of tickets opened more than RETENTION_DAYS ago; returns how many."""
    days = runtime.settings.retention_days
    if days <= 0:
        return 0
    now = runtime.now()
    cutoff = now - timedelta(days=days)
    root = runtime.settings.recordings_dir.resolve()
    purged = 0
    with runtime.sessions.begin() as s:
        tickets = s.scalars(
            select(Ticket)
            .where(Ticket.opened_at < cutoff, or_(Ticket.audio_path.is_not(None), Ticket.transcript.is_not(None)))
            .order_by(Ticket.id)
            .limit(BATCH)
        ).all()
        for t in tickets:
            removed = False
            if t.audio_path:
                path = Path(t.audio_path).resolve()
                # Only ever delete inside our own recordings directory.
                if path.is_relative_to(root) and path.exists():
                    path.unlink()
                    removed = True
            t.audio_path = None
            t.transcript = None
            t.transcript_segments = None
            t.hints = None
            audit(
                s,
                t,
                actor="retention",
                action="recording and transcript purged",
                now=now,
                detail={"older_than_days": days, "audio_deleted": removed},
            )
            purged += 1
    if purged:
        log.info("retention: purged %d tickets' recordings and transcripts", purged)
    return purged
