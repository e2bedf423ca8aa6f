"""What the ledger holds back and why, read in one grouped query each: the deliveries
waiting (held for quiet hours, retrying after a failure, due), and the channels failing
now. Every command that sends, and `forewarn status`, print these."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import and_, func, select
from sqlalchemy.engine import Connection

from forewarn.store import customers, deliveries

# Why a queued delivery has not gone: inside its customer's quiet hours (deferred rows
# keep no error), after a failure worth retrying (the row keeps the provider's reason),
# or due and not yet claimed.
WaitKind = Literal["quiet hours", "retrying", "due"]


@dataclass(frozen=True, slots=True)
class Waiting:
    """Queued deliveries of one channel waiting for one reason, and the earliest next try.

    `zone` is the customers' time zone for quiet hours; `reason` the most common
    provider's reason for retries (`others`: how many rows gave another)."""

    channel: str
    kind: WaitKind
    count: int
    next_at: datetime
    zone: str | None = None
    reason: str | None = None
    others: int = 0


def waiting(conn: Connection, now: datetime) -> list[Waiting]:
    """Every queued delivery, grouped by channel and why it waits, in one query."""
    d = deliveries.c
    # One labelled expression, grouped by its label: PostgreSQL would not match two copies.
    later = (d.next_attempt_at > now).label("later")
    rows = conn.execute(
        select(
            d.channel, d.error, customers.c.timezone, later, func.count(),
            func.min(d.next_attempt_at),
        )
        .select_from(deliveries.outerjoin(customers, customers.c.customer_id == d.customer_id))
        .where(d.status == "queued")
        .group_by(d.channel, d.error, customers.c.timezone, later)
    ).all()  # fmt: skip
    groups: dict[tuple[str, WaitKind, str | None], list[tuple[str | None, int, datetime]]]
    groups = defaultdict(list)
    for channel, error, zone, later, n, first in rows:
        kind: WaitKind = "retrying" if error else ("quiet hours" if later else "due")
        key = (str(channel), kind, str(zone or "UTC") if kind == "quiet hours" else None)
        groups[key].append((error, int(n), first))
    found = []
    for (channel, kind, zone), parts in groups.items():
        total = sum(n for _, n, _ in parts)
        reasons: dict[str, int] = defaultdict(int)
        for error, n, _ in parts:
            if error:
                reasons[str(error)] += n
        reason = max(reasons, key=lambda r: (reasons[r], r)) if reasons else None
        others = total - reasons[reason] if reason is not None else 0
        first = min(at for _, _, at in parts)
        found.append(Waiting(channel, kind, total, first, zone, reason, others))
    order = {"retrying": 0, "quiet hours": 1, "due": 2}
    return sorted(found, key=lambda w: (order[w.kind], w.channel, w.zone or ""))


@dataclass(frozen=True, slots=True)
class Failing:
    """A channel failing now: rows waiting to retry, rows failed for good since `since`,
    and the latest reason the provider gave."""

    channel: str
    retrying: int
    failed: int
    latest: str
    latest_at: datetime | None


def failing_channels(conn: Connection, since: datetime) -> list[Failing]:
    """Channels with deliveries retrying now or failed for good since `since` (by the
    time of their last attempt), the worst first; one grouped query."""
    d = deliveries.c
    retrying = and_(d.status == "queued", d.error.is_not(None))
    recent_failure = and_(d.status == "failed", d.claimed_at >= since)
    rows = conn.execute(
        select(d.channel, d.status, d.error, func.count(), func.max(d.claimed_at))
        .where(retrying | recent_failure)
        .group_by(d.channel, d.status, d.error)
    ).all()
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"queued": 0, "failed": 0})
    latest: dict[str, tuple[datetime | None, str]] = {}
    for channel, status, error, n, at in rows:
        counts[channel][status] += int(n)
        known = latest.get(channel)
        if known is None or (at is not None and (known[0] is None or at > known[0])):
            latest[channel] = (at, str(error or "no reason recorded"))
    found = [
        Failing(channel, c["queued"], c["failed"], latest[channel][1], latest[channel][0])
        for channel, c in counts.items()
    ]
    return sorted(found, key=lambda f: (-(f.retrying + f.failed), f.channel))
