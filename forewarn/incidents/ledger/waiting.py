"""What the ledger holds back and why, read in one grouped query each: the deliveries
waiting (held for the night, retrying after a failure, due), and the channels failing
now. Every command that sends, and `forewarn status`, print these."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import and_, case, func, select
from sqlalchemy.engine import Connection

from forewarn.store import customers, deliveries

# Why a queued delivery has not gone: held for its customer's night or over their daily
# ceiling of routine messages (deferred rows keep no error), after a failure worth
# retrying (the row keeps the provider's reason), or due and not yet claimed.
WaitKind = Literal["held", "retrying", "due"]


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
    """Every queued delivery, grouped by channel and why it waits: two grouped reads of
    the ledger's queued rows, and one lookup of a customer per held group for its zone."""
    d = deliveries.c
    queued = d.status == "queued"
    found = [
        Waiting(str(channel), "retrying", int(n), first, None, str(error))
        for channel, error, n, first in conn.execute(
            select(d.channel, d.error, func.count(), func.min(d.next_attempt_at))
            .where(queued, d.error.is_not(None))
            .group_by(d.channel, d.error)
        )
    ]
    found = _one_per_channel(found)
    # Deferred rows keep no error and wait until their customer's quiet hours end: one
    # moment per time zone, so grouping by it finds the zones without joining customers.
    until = case((d.next_attempt_at > now, d.next_attempt_at)).label("held_until")
    groups = conn.execute(
        select(d.channel, until, func.count(), func.min(d.next_attempt_at), func.min(d.customer_id))
        .where(queued, d.error.is_(None))
        .group_by(d.channel, until)
    ).all()
    samples = {str(sample) for _, later, _, _, sample in groups if later is not None}
    zones = dict(
        conn.execute(
            select(customers.c.customer_id, customers.c.timezone).where(
                customers.c.customer_id.in_(samples)
            )
        ).all()
    ) if samples else {}  # fmt: skip
    held: dict[tuple[str, str], Waiting] = {}
    for channel, later, n, first, sample in groups:
        if later is None:
            found.append(Waiting(str(channel), "due", int(n), first))
            continue
        zone = str(zones.get(sample) or "UTC")
        known = held.get((channel, zone))
        if known is not None:
            n, first = known.count + n, min(known.next_at, first)
        held[(channel, zone)] = Waiting(str(channel), "held", int(n), first, zone)
    found += held.values()
    order = {"retrying": 0, "held": 1, "due": 2}
    return sorted(found, key=lambda w: (order[w.kind], w.channel, w.zone or ""))


def _one_per_channel(retries: list[Waiting]) -> list[Waiting]:
    """A channel's retries as one group: the most common reason, and how many gave another."""
    by_channel: dict[str, list[Waiting]] = defaultdict(list)
    for w in retries:
        by_channel[w.channel].append(w)
    merged = []
    for channel, groups in by_channel.items():
        top = max(groups, key=lambda w: (w.count, w.reason or ""))
        total = sum(w.count for w in groups)
        first = min(w.next_at for w in groups)
        merged.append(
            Waiting(channel, "retrying", total, first, None, top.reason, total - top.count)
        )
    return merged


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
