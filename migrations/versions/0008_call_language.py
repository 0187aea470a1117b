"""call language: the language the caller chose on the call, and the English translation of a transcript

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(length=8), server_default="en", nullable=False))
        batch_op.add_column(sa.Column("transcript_translation", sa.Text(), nullable=True))
        batch_op.create_index(batch_op.f("ix_tickets_language"), ["language"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tickets_language"))
        batch_op.drop_column("transcript_translation")
        batch_op.drop_column("language")
