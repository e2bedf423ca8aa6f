"""Claims that cannot outlive their worker: each `sending` row names who holds it
(claimed_by), until when (lease_until, renewed while the sends run) and the claim's
token (claim_token), so a dead worker's rows are taken over within seconds and a stale
claim's outcome is refused.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    """Add the columns; rows already `sending` have none (their claim time and the lease
    decide, as before)."""
    op.add_column("deliveries", sa.Column("claimed_by", sa.String(128), nullable=True))
    op.add_column("deliveries", sa.Column("lease_until", sa.DateTime(), nullable=True))
    op.add_column("deliveries", sa.Column("claim_token", sa.String(32), nullable=True))


def downgrade() -> None:
    """Back to 0004 (claims are then judged by their claim time alone)."""
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("claim_token")
        batch.drop_column("lease_until")
        batch.drop_column("claimed_by")
