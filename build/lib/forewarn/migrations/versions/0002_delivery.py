"""Real delivery: what was sent and the provider's id on each ledger row, replies, the
webhook requests already handled, and the indexes dispatch reads by.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def new_delivery_columns() -> list[sa.Column[object]]:
    """The ledger's new columns, all nullable, so existing rows need no value."""
    return [
        sa.Column("claimed_at", sa.DateTime(), nullable=True),
        sa.Column("recipient", sa.String(length=512), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("provider_ref", sa.String(length=256), nullable=True),
        sa.Column("provider_status", sa.String(length=32), nullable=True),
    ]


def upgrade() -> None:
    """Add the columns, tables and indexes; existing rows keep everything they had."""
    op.create_table(
        "replies",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("sender", sa.String(length=512), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("provider_ref", sa.String(length=256), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_replies_customer_id", "replies", ["customer_id"])
    op.create_table(
        "seen_requests",
        sa.Column("token", sa.String(length=256), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("token"),
    )
    for column in new_delivery_columns():
        op.add_column("deliveries", column)
    op.drop_index("ix_deliveries_due", table_name="deliveries")
    op.create_index("ix_deliveries_queue", "deliveries", ["status", "rank", "id"])
    op.create_index("ix_deliveries_customer", "deliveries", ["customer_id", "incident_id"])
    op.create_index("ix_deliveries_provider_ref", "deliveries", ["provider_ref"])


def downgrade() -> None:
    """Back to 0001 (what was sent and the replies are lost)."""
    op.drop_index("ix_deliveries_provider_ref", table_name="deliveries")
    op.drop_index("ix_deliveries_customer", table_name="deliveries")
    op.drop_index("ix_deliveries_queue", table_name="deliveries")
    op.create_index("ix_deliveries_due", "deliveries", ["status", "next_attempt_at"])
    with op.batch_alter_table("deliveries") as batch:
        for column in reversed(new_delivery_columns()):
            batch.drop_column(column.name)
    op.drop_table("seen_requests")
    op.drop_index("ix_replies_customer_id", table_name="replies")
    op.drop_table("replies")
