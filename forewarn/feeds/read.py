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

from forewarn.cleantext import without_credentials
from forewarn.feeds import alertmanager, jsonl
from forewarn.feeds.inbox import mark_processed, quarantine_rejects, unprocessed
from forewarn.feeds.signal import FeedBatch, Reject
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


@dataclass(slots=True)
class Fetched:
    """What the feeds over HTTP said, fetched before the store's lock is taken (each has a
    30 s timeout: a slow Alertmanager must not hold up the receiver and other writers)."""

    alerts: FeedBatch | None = None  # Alertmanager's active alerts; None: not polled
    url_feed: FeedBatch = field(default_factory=FeedBatch)
    errors: list[str] = field(default_factory=list)


def fetch_remote(config: FeedConfig, client: httpx.Client) -> Fetched:
    """Poll Alertmanager and fetch a JSON lines URL; needs nothing from the store."""
    fetched = Fetched()
    if config.alertmanager_url:
        try:
            fetched.alerts = alertmanager.fetch_active(
                client, config.alertmanager_url, config.element_labels
            )
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as err:
            fetched.errors.append(
                without_credentials(f"alertmanager poll of {config.alertmanager_url} failed: {err}")
            )
    if config.jsonl_feed and _is_url(config.jsonl_feed):
        try:
            fetched.url_feed = jsonl.read_url(client, config.jsonl_feed)
        except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as err:
            fetched.errors.append(
                without_credentials(f"JSON lines feed {config.jsonl_feed} failed: {err}")
            )
    return fetched


def read_all(
    conn: Connection,
    config: FeedConfig,
    fetched: Fetched,
    alertmanager_down: Iterable[str],
    now: datetime,
) -> FeedRead:
    """Read every feed, inside the transaction that applies them: the webhook inbox and
    the file feed from the store's positions, the rest from what `fetch_remote` got
    before the lock; one failing feed is reported and the others still count."""
    read = FeedRead()
    must_poll = False
    for inbox_id, body in unprocessed(conn, alertmanager.SOURCE):
        read.inbox_ids.append(inbox_id)  # read once, whatever it holds: never retried for ever
        try:
            result = alertmanager.parse_webhook(body, config.element_labels)
        except Exception as err:  # poison must cost only itself, never a later cycle
            reason = f"inbox #{inbox_id} failed: {type(err).__name__}: {str(err)[:200]}"
            read.batch.rejects.append(Reject.of(alertmanager.SOURCE, reason, body))
            continue
        read.batch.extend(result.batch)
        must_poll |= result.truncated
    if fetched.alerts is not None:
        # Webhooks stored since the poll count as news too: no `up` for what they name.
        heard = FeedBatch(signals=fetched.alerts.signals + read.batch.signals)
        read.batch.extend(fetched.alerts)
        read.batch.signals.extend(alertmanager.recoveries(heard, alertmanager_down, now))
    elif must_poll and not config.alertmanager_url:
        read.errors.append(
            "a webhook was truncated; set FOREWARN_ALERTMANAGER_URL to fetch the rest"
        )
    read.errors.extend(fetched.errors)
    read.batch.extend(fetched.url_feed)
    if config.jsonl_feed and not _is_url(config.jsonl_feed):
        _read_file(conn, config.jsonl_feed, read)
    return read


def _is_url(feed: str) -> bool:
    return feed.startswith(("http://", "https://"))


def _read_file(conn: Connection, feed: str, read: FeedRead) -> None:
    try:
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
    except (OSError, ValueError) as err:
        read.errors.append(f"JSON lines feed {feed} failed: {err}")


def acknowledge(conn: Connection, read: FeedRead, now: datetime) -> None:
    """Mark what was read as done, keep the rejects, and note when feeds were last read."""
    mark_processed(conn, read.inbox_ids, now)
    upsert(conn, feed_cursors, [{"source": s, "position": p} for s, p in read.cursors.items()])
    quarantine_rejects(conn, read.batch.rejects, now)
    set_meta(conn, "last_feed_read", now.isoformat())
