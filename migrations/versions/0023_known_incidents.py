"""Known incidents: an outage's public message, its parent ticket and affected clients, the callers who joined it

Revision ID: 0023
Revises: 0022
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | Sequence[str] | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "known_incidents",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("message", sa.String(200), nullable=False),
        sa.Column("message_es", sa.String(200), nullable=True),
        sa.Column("parent_ticket_id", sa.Integer(), sa.ForeignKey("tickets.id"), nullable=False),
        sa.Column("client_ids", sa.JSON(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("declared_by", sa.String(120), nullable=False),
        sa.Column("ended_by", sa.String(120), nullable=True),
        sa.Column("end_note", sa.Text(), nullable=True),
    )
    op.create_table(
        "incident_calls",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("incident_id", sa.Integer(), sa.ForeignKey("known_incidents.id"), nullable=False),
        sa.Column("ticket_id", sa.Integer(), sa.ForeignKey("tickets.id"), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("ticket_id"),
    )
    op.create_index("ix_incident_calls_incident_id", "incident_calls", ["incident_id"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_incident_calls_incident_id", table_name="incident_calls")
    op.drop_table("incident_calls")
    op.drop_table("known_incidents")
