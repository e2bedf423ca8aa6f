"""Reports: an outage reported by anyone (the site's form, an OUT text naming an
address), with where it came from and what it came to.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    """Add the reports table (empty: nobody has reported anything yet)."""
    op.create_table(
        "reports",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("origin", sa.String(128), nullable=False),
        sa.Column("place", sa.String(200), nullable=False),
        sa.Column("premise_id", sa.String(128), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("follower_id", sa.String(128), nullable=True),
    )
    op.create_index("ix_reports_premise_id", "reports", ["premise_id"])
    op.create_index("ix_reports_incident_id", "reports", ["incident_id"])
    op.create_index("ix_reports_origin_received", "reports", ["origin", "received_at"])


def downgrade() -> None:
    """Back to 0007: the reports go."""
    op.drop_table("reports")
