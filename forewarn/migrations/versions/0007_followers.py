"""Followers: people without an account who follow a postcode, a premise or an incident,
with their consent (when asked, how and from where; when and how confirmed).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    """Add the followers table (empty: nobody follows anything yet)."""
    op.create_table(
        "followers",
        sa.Column("follower_id", sa.String(128), primary_key=True),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("contact", sa.String(320), nullable=False),
        sa.Column("place_kind", sa.String(16), nullable=False),
        sa.Column("place", sa.String(128), nullable=False),
        sa.Column("label", sa.String(256), nullable=False),
        sa.Column("locale", sa.String(16), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
        sa.Column("requested_via", sa.String(16), nullable=False),
        sa.Column("requested_from", sa.String(128), nullable=False),
        sa.Column("confirm_sent_at", sa.DateTime(), nullable=True),
        sa.Column("confirm_error", sa.Text(), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(), nullable=True),
        sa.Column("confirmed_by", sa.String(32), nullable=True),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("end_reason", sa.String(64), nullable=True),
        sa.UniqueConstraint("channel", "contact", "place_kind", "place", name="uq_follow"),
    )
    op.create_index("ix_followers_contact", "followers", ["contact"])
    op.create_index("ix_followers_place", "followers", ["place"])
    op.create_index("ix_followers_state_kind", "followers", ["state", "place_kind"])


def downgrade() -> None:
    """Back to 0006: the followers go."""
    op.drop_table("followers")
