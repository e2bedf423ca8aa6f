"""Durable inbox for pushed monitoring payloads (webhooks), and the quarantine for bad items."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from forewarn.feeds.signal import Reject
from forewarn.store import inbox, quarantine


def store_payload(conn: Connection, source: str, body: bytes, now: datetime) -> int:
    """Keep a received payload until a cycle has read it; returns its inbox id."""
    result = conn.execute(inbox.insert().values(source=source, received_at=now, body=body))
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def unprocessed(conn: Connection, source: str, limit: int = 1000) -> list[tuple[int, bytes]]:
    """The oldest payloads from `source` not yet read by a cycle."""
    rows = conn.execute(
        select(inbox.c.id, inbox.c.body)
        .where(inbox.c.source == source, inbox.c.processed_at.is_(None))
        .order_by(inbox.c.id)
        .limit(limit)
    )
    return [(int(row.id), bytes(row.body)) for row in rows]


def mark_processed(conn: Connection, ids: Sequence[int], now: datetime) -> None:
    """Record that these payloads have been read."""
    if ids:
        conn.execute(update(inbox).where(inbox.c.id.in_(ids)).values(processed_at=now))


def quarantine_rejects(conn: Connection, rejects: Sequence[Reject], now: datetime) -> None:
    """Keep every rejected item with its reason, so an operator can see what was dropped."""
    if rejects:
        conn.execute(
            quarantine.insert(),
            [{"source": r.source, "at": now, "reason": r.reason, "raw": r.raw} for r in rejects],
        )
