"""One open case per line: a partial unique index on incidents (root_element) over open
single-premise incidents of the detection cycle or of OUT replies. Two writers at once
(an OUT reply and the cycle) could each open a case for the same line; the incidents API
now takes its lock itself, and the store refuses a second open case whatever the caller.

Update numbers were already unique per incident (the primary key of incident_updates).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"

ONE_OPEN_CASE = "scope = 'premise' AND status <> 'resolved' AND source IN ('detected', 'reply')"


def upgrade() -> None:
    """Close the younger duplicates a race left (the oldest case of a line stays open and
    keeps the conversation), then add the index."""
    op.execute(
        sa.text(
            "UPDATE incidents SET status = 'resolved', resolved_at = updated_at,"
            " next_update_at = NULL"
            f" WHERE {ONE_OPEN_CASE} AND id > ("
            "   SELECT MIN(o.id) FROM incidents AS o"
            "   WHERE o.root_element = incidents.root_element AND o.scope = 'premise'"
            "   AND o.status <> 'resolved' AND o.source IN ('detected', 'reply'))"
        )
    )
    op.create_index(
        "uq_incidents_one_open_case",
        "incidents",
        ["root_element"],
        unique=True,
        sqlite_where=sa.text(ONE_OPEN_CASE),
        postgresql_where=sa.text(ONE_OPEN_CASE),
    )


def downgrade() -> None:
    """Back to 0004: the index goes (the cases closed on the way up stay closed)."""
    op.drop_index("uq_incidents_one_open_case", table_name="incidents")
