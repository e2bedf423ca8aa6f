"""Read every configured feed once: the webhook inbox, Alertmanager's API, the JSON lines
feed. What was read is acknowledged (`acknowledge`) in the same transaction that applies it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
from sqlalchemy import select
from sqlalchemy.engine import Connection

from forewarn.feeds import alertmanager, jsonl
from forewarn.feeds.inbox import mark_processed, quarantine_rejects, unprocessed
from forewarn.feeds.signal import FeedBatch
from forewarn.store import feed_cursors, set_meta, upsert


@dataclass(slots=True)
class FeedRead:
    """Signals and rejects from one read, plus what to acknowledge once they are applied."""

    batch: FeedBatch = field(default_factory=FeedBatch)
    inbox_ids: list[int] = field(default_factory=list)
    cursors: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class FeedConfig:
    """Which feeds to read and how elements are named in alerts."""

    alertmanager_url: str | None
    jsonl_feed: str | None
    element_labels: Sequence[str]


def read_all(
    conn: Connection,
    config: FeedConfig,
    client: httpx.Client,
    alertmanager_down: Iterable[str],
    now: datetime,
) -> FeedRead:
    """Read every feed; one failing feed is reported and the others still count."""
    read = FeedRead()
    must_poll = False
    for inbox_id, body in unprocessed(conn, alertmanager.SOURCE):
        result = alertmanager.parse_webhook(body, config.element_labels)
        read.batch.extend(result.batch)
        read.inbox_ids.append(inbox_id)
        must_poll |= result.truncated
    if config.alertmanager_url:
        try:
            read.batch.extend(
                alertmanager.poll(
                    client, config.alertmanager_url, config.element_labels, alertmanager_down, now
                )
            )
        except (httpx.HTTPError, ValueError) as err:
            read.errors.append(f"alertmanager poll failed: {err}")
    elif must_poll:
        read.errors.append(
            "a webhook was truncated; set FOREWARN_ALERTMANAGER_URL to fetch the rest"
        )
    if config.jsonl_feed:
        _read_jsonl(conn, config.jsonl_feed, client, read)
    return read


def _read_jsonl(conn: Connection, feed: str, client: httpx.Client, read: FeedRead) -> None:
    try:
        if feed.startswith(("http://", "https://")):
            read.batch.extend(jsonl.read_url(client, feed))
            return
        path = Path(feed)
        if not path.exists():
            read.errors.append(f"JSON lines feed {feed} does not exist")
            return
        position = conn.execute(
            select(feed_cursors.c.position).where(feed_cursors.c.source == feed)
        ).scalar()
        result = jsonl.read_file(path, int(position or 0))
        read.batch.extend(result.batch)
        read.cursors[feed] = result.position
    except (httpx.HTTPError, OSError, ValueError) as err:
        read.errors.append(f"JSON lines feed failed: {err}")


def acknowledge(conn: Connection, read: FeedRead, now: datetime) -> None:
    """Mark what was read as done, keep the rejects, and note when feeds were last read."""
    mark_processed(conn, read.inbox_ids, now)
    upsert(conn, feed_cursors, [{"source": s, "position": p} for s, p in read.cursors.items()])
    quarantine_rejects(conn, read.batch.rejects, now)
    set_meta(conn, "last_feed_read", now.isoformat())
