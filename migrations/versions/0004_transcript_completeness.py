"""transcript completeness: missing speech spans, the passes kept and which one is shown

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the transcript completeness and pass columns."""
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("transcript_missing", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("transcript_passes", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("transcript_pass", sa.String(length=16), nullable=True))


def downgrade() -> None:
    """Drop them again."""
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_column("transcript_pass")
        batch_op.drop_column("transcript_passes")
        batch_op.drop_column("transcript_missing")
