"""The customer conversation: split cases, ETR warnings, planned work, which estimates
were announced, and which update last changed each premise's state.

Revision ID: 0003
Revises: 0002
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"

INCIDENT_COLUMNS: list[tuple[str, Any]] = [
    ("parent_id", sa.Integer()),
    ("etr_warned", sa.DateTime()),
    ("scheduled_for", sa.DateTime()),
    ("scheduled_until", sa.DateTime()),
]


def upgrade() -> None:
    """Add the columns; existing rows read as before (estimates so far were announced)."""
    for name, kind in INCIDENT_COLUMNS:
        op.add_column("incidents", sa.Column(name, kind, nullable=True))
    op.add_column("incident_premises", sa.Column("changed_seq", sa.Integer(), nullable=True))
    op.add_column(
        "etr_history",
        sa.Column("announced", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    with op.batch_alter_table("etr_history") as batch:
        batch.alter_column("announced", server_default=None)


def downgrade() -> None:
    """Back to 0002 (the new columns' values are lost)."""
    with op.batch_alter_table("etr_history") as batch:
        batch.drop_column("announced")
    with op.batch_alter_table("incident_premises") as batch:
        batch.drop_column("changed_seq")
    with op.batch_alter_table("incidents") as batch:
        for name, _ in reversed(INCIDENT_COLUMNS):
            batch.drop_column(name)
