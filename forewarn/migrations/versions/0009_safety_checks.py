"""At-risk customers: what a customer's line keeps alive (customers.needs), and each
at-risk customer's confirmation in an outage, its call and its visit (safety_checks); the
replies of one number by time (a flood of texts goes unanswered).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    """Add customers.needs (empty: nobody is known at risk until the next import) and the
    safety_checks table."""
    op.add_column("customers", sa.Column("needs", sa.String(128), nullable=True))
    op.create_table(
        "safety_checks",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("customer_id", sa.String(128), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("needs", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("call_seq", sa.Integer(), nullable=True),
        sa.Column("asked_at", sa.DateTime(), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(), nullable=True),
        sa.Column("confirmed_by", sa.String(32), nullable=True),
        sa.Column("called_at", sa.DateTime(), nullable=True),
        sa.Column("visit_at", sa.DateTime(), nullable=True),
        sa.Column("reached_at", sa.DateTime(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("customer_id", "incident_id", name="uq_safety_checks"),
    )
    op.create_index("ix_safety_checks_state", "safety_checks", ["state"])
    # A flood of texts from one number goes unanswered: its answers of the hour, counted.
    op.create_index("ix_replies_sender", "replies", ["sender", "received_at"])


def downgrade() -> None:
    """Back to 0008: the checks and the needs go."""
    op.drop_index("ix_replies_sender", "replies")
    op.drop_table("safety_checks")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("needs")
