"""Element states in the store: loaded whole (they are few: only elements not simply up)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from forewarn.detection.damping import ElementState
from forewarn.store import element_states, upsert


def load(conn: Connection) -> dict[str, ElementState]:
    """Every remembered element state."""
    return {
        row.element_id: ElementState(
            row.element_id,
            row.state,
            row.since,
            row.observed_at,
            row.source,
            row.confirmed,
            row.down_since,
        )
        for row in conn.execute(select(element_states))
    }


def save(
    conn: Connection,
    states: dict[str, ElementState],
    changed: Iterable[str],
    forgettable: Iterable[str],
) -> None:
    """Write changed states and forget elements that are simply up."""
    forget = set(forgettable)
    rows = [
        {
            "element_id": s.element,
            "state": s.state,
            "since": s.since,
            "observed_at": s.observed_at,
            "source": s.source,
            "confirmed": s.confirmed,
            "down_since": s.down_since,
        }
        for element in set(changed) - forget
        if (s := states[element])
    ]
    upsert(conn, element_states, rows)
    forget_list = sorted(forget)
    for start in range(0, len(forget_list), 5000):
        chunk = forget_list[start : start + 5000]
        conn.execute(delete(element_states).where(element_states.c.element_id.in_(chunk)))
