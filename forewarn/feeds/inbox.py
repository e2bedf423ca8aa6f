"""Durable inbox for pushed monitoring payloads (webhooks), and the quarantine for bad items."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from forewarn.feeds.signal import Reject
from forewarn.store import get_meta, inbox, quarantine, set_meta

# The quarantine is for an operator to read, so it is bounded: of one batch, the first
# rejects of each source are kept and the rest counted in one line; of all, the newest
# per source and in total. What is dropped is counted (`forewarn status` shows it).
KEPT_PER_BATCH = 200
KEPT_PER_SOURCE = 10_000
KEPT_IN_ALL = 50_000
DROPPED_KEY = "quarantine_dropped"


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
    """Keep rejected items with their reasons, so an operator can see what was refused;
    within the bounds above, oldest dropped first."""
    if not rejects:
        return
    kept: dict[str, list[Reject]] = defaultdict(list)
    over: Counter[str] = Counter()
    for reject in rejects:
        if len(kept[reject.source]) < KEPT_PER_BATCH:
            kept[reject.source].append(reject)
        else:
            over[reject.source] += 1
    rows = [
        {"source": r.source, "at": now, "reason": r.reason, "raw": r.raw}
        for source_rejects in kept.values()
        for r in source_rejects
    ]
    rows += [
        {"source": source, "at": now, "raw": "",
         "reason": f"and {count:,} more rejects in the same read (not kept)"}
        for source, count in over.items()
    ]  # fmt: skip
    conn.execute(quarantine.insert(), rows)
    dropped = sum(over.values())
    for source in kept:
        dropped += _keep_newest(conn, KEPT_PER_SOURCE, quarantine.c.source == source)
    dropped += _keep_newest(conn, KEPT_IN_ALL)
    if dropped:
        set_meta(conn, DROPPED_KEY, str(dropped_count(conn) + dropped))


def dropped_count(conn: Connection) -> int:
    """How many rejects the quarantine's bounds have dropped, ever."""
    return int(get_meta(conn, DROPPED_KEY) or 0)


def _keep_newest(conn: Connection, most: int, *where: ColumnElement[bool]) -> int:
    """Delete all but the newest `most` rows (matching `where`); how many went."""
    q = quarantine.c
    # The newest row past the bound, if there is one: it and everything older go.
    cutoff = conn.execute(
        select(q.id).where(*where).order_by(q.id.desc()).offset(most).limit(1)
    ).scalar()
    if cutoff is None:
        return 0
    return conn.execute(delete(quarantine).where(q.id <= cutoff, *where)).rowcount or 0
