"""Pages record delivery reports and answers in paging's own words, not Twilio's: existing rows translated

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A frozen copy of providers/twilio_status.py's mapping as it stood: a migration never imports the app.
_MACHINE = ("machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax")
_PHONE = "channel IN ('sms', 'call', 'follow-up')"  # email pages' "accepted" is paging's word already

_UPGRADE = [
    f"UPDATE pages SET delivery_status = 'delivered' WHERE {_PHONE} AND (delivery_status IN ('delivered', 'read') "
    "OR (channel = 'call' AND delivery_status IN ('in-progress', 'completed', 'answered')))",
    "UPDATE pages SET delivery_status = 'not answered' "
    "WHERE channel = 'call' AND delivery_status IN ('busy', 'no-answer', 'canceled')",
    f"UPDATE pages SET delivery_status = CASE WHEN state = 'failed' THEN 'unreachable' ELSE 'provider failed' END "
    f"WHERE {_PHONE} AND delivery_status IN ('failed', 'undelivered')",
    # Queued, sent, ringing...: no news, which the page's own state already says.
    f"UPDATE pages SET delivery_status = NULL WHERE {_PHONE} "
    "AND delivery_status NOT IN ('delivered', 'not answered', 'unreachable', 'provider failed')",
    "UPDATE pages SET answered_by = 'answered by a person' WHERE answered_by = 'human'",
    "UPDATE pages SET answered_by = 'answered by a machine' WHERE answered_by IN ("
    + ", ".join(f"'{m}'" for m in _MACHINE)
    + ")",
    "UPDATE pages SET answered_by = 'answered, undecided' WHERE answered_by IS NOT NULL "
    "AND answered_by NOT IN ('answered by a person', 'answered by a machine')",
]

_DOWNGRADE = [
    "UPDATE pages SET delivery_status = CASE WHEN channel = 'call' THEN 'completed' ELSE 'delivered' END "
    "WHERE delivery_status = 'delivered' AND channel <> 'email'",
    "UPDATE pages SET delivery_status = 'no-answer' WHERE delivery_status = 'not answered'",
    "UPDATE pages SET delivery_status = CASE WHEN channel = 'call' THEN 'failed' ELSE 'undelivered' END "
    "WHERE delivery_status IN ('unreachable', 'provider failed')",
    "UPDATE pages SET answered_by = 'human' WHERE answered_by = 'answered by a person'",
    "UPDATE pages SET answered_by = 'machine_start' WHERE answered_by = 'answered by a machine'",
    "UPDATE pages SET answered_by = 'unknown' WHERE answered_by = 'answered, undecided'",
]


def upgrade() -> None:
    """Translate the pages' Twilio delivery statuses and AnsweredBy values into paging's words."""
    for statement in _UPGRADE:
        op.execute(sa.text(statement))


def downgrade() -> None:
    """Back to Twilio's words (the nearest one where several mapped to one)."""
    for statement in _DOWNGRADE:
        op.execute(sa.text(statement))
