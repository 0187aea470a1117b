"""The PSA bridge: PSA twins of tickets, operations to send, the audit cursor

Revision ID: 0021
Revises: 0020
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | Sequence[str] | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "psa_links",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("ticket_id", sa.Integer(), sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("psa", sa.String(32), nullable=False),
        sa.Column("external_id", sa.String(64), nullable=False),
        sa.Column("external_status", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("psa", "ticket_id"),
        sa.UniqueConstraint("psa", "external_id"),
    )
    op.create_table(
        "psa_operations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("psa", sa.String(32), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("ticket_id", sa.Integer(), sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("op", sa.String(16), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("psa", "key"),
    )
    op.create_index("ix_psa_operations_ticket_id", "psa_operations", ["ticket_id"])
    op.create_index("ix_psa_operations_state", "psa_operations", ["state"])
    op.create_table(
        "psa_cursors",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("high", sa.Integer(), nullable=False),
        sa.Column("seen", sa.JSON(), nullable=False),
        sa.Column("polled_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("psa_cursors")
    op.drop_index("ix_psa_operations_state", "psa_operations")
    op.drop_index("ix_psa_operations_ticket_id", "psa_operations")
    op.drop_table("psa_operations")
    op.drop_table("psa_links")
