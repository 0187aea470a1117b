"""Monitoring alerts: routing keys per client, and each alert's ticket (one per open dedup key)

Revision ID: 0020
Revises: 0019
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | Sequence[str] | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "alert_keys",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("client_id", sa.Integer(), sa.ForeignKey("clients.id"), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(120), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("client_id", sa.Integer(), sa.ForeignKey("clients.id"), nullable=False),
        sa.Column("key_id", sa.Integer(), sa.ForeignKey("alert_keys.id"), nullable=False),
        sa.Column("dedup_key", sa.String(255), nullable=False),
        sa.Column("open_dedup_key", sa.String(255), nullable=True),
        sa.Column("ticket_id", sa.Integer(), sa.ForeignKey("tickets.id"), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("triggers", sa.Integer(), nullable=False),
        sa.Column("triggered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("client_id", "open_dedup_key", name="uq_alerts_open_dedup_key"),
    )
    op.create_index("ix_alerts_dedup_key", "alerts", ["dedup_key"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_alerts_dedup_key", table_name="alerts")
    op.drop_table("alerts")
    op.drop_table("alert_keys")
