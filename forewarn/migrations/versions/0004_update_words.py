"""Incident updates and titles remember what they say (kind and values), so the page
renders each in its own locale from templates/words/; older rows keep their English.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    """Add the columns; existing rows have none (their body is shown as written)."""
    op.add_column("incident_updates", sa.Column("kind", sa.String(48), nullable=True))
    op.add_column("incident_updates", sa.Column("params", sa.Text(), nullable=True))
    op.add_column("incidents", sa.Column("title_kind", sa.String(48), nullable=True))
    op.add_column("incidents", sa.Column("title_params", sa.Text(), nullable=True))


def downgrade() -> None:
    """Back to 0003 (the kinds and values are lost; the English words stay)."""
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("title_params")
        batch.drop_column("title_kind")
    with op.batch_alter_table("incident_updates") as batch:
        batch.drop_column("params")
        batch.drop_column("kind")
