"""paging that keeps its promise: repeat cycles, provider retries, email pages, joined escalations

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cycle", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("repeat_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("unreached_since", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("withheld_caller", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("pages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_try_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("to_address", sa.String(length=254), nullable=True))
        batch_op.create_index(batch_op.f("ix_pages_next_try_at"), ["next_try_at"], unique=False)
    op.create_table(
        "escalation_joins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("escalation_id", sa.Integer(), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("why", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["escalation_id"], ["escalations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ticket_id"),
    )
    with op.batch_alter_table("escalation_joins", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_escalation_joins_escalation_id"), ["escalation_id"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("escalation_joins", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_escalation_joins_escalation_id"))
    op.drop_table("escalation_joins")
    with op.batch_alter_table("pages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pages_next_try_at"))
        batch_op.drop_column("to_address")
        batch_op.drop_column("next_try_at")
    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.drop_column("withheld_caller")
        batch_op.drop_column("unreached_since")
        batch_op.drop_column("repeat_until")
        batch_op.drop_column("cycle")
