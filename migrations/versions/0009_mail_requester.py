"""mail requester: the address that opened a ticket with no directory contact (where its mail goes)

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("requester_email", sa.String(length=320), nullable=True))
    # Email tickets opened by a sender with no directory contact: the address of the message that opened them
    # (until now, the first client message's address stood in for it).
    op.execute(
        """
        UPDATE tickets SET requester_email = (
            SELECT m.from_address FROM ticket_messages m
            WHERE m.ticket_id = tickets.id AND m.direction = 'in' AND m.channel = 'email'
              AND m.from_address IS NOT NULL
            ORDER BY m.id LIMIT 1
        )
        WHERE contact_id IS NULL AND source = 'email'
        """
    )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_column("requester_email")
