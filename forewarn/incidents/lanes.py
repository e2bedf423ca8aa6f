"""Priority lanes: how the provider's rate is shared when it is the bottleneck.

Three lanes, in a fixed order, each a range of the ledger's `rank`: an at-risk customer's
messages (their line may keep them safe); "restored" and "it will be later than we
said" (news that must not arrive after what it is about); then openings and routine
updates, in queue order (highest priority first, the longest down first). Each batch a
worker claims gives every lane its share of the batch, then what a lane leaves goes to
the others in lane order: a lane never starves, and no capacity is left unused. Within a
batch the lanes go in order, so the first seconds of a fan-out are the at-risk lane's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import ColumnElement

from forewarn.store import deliveries

# Where each lane's ranks start; a row's rank within its lane is its channel's order.
AT_RISK = -1000
URGENT = -500
ROUTINE = 0
# The news that goes in the urgent lane.
URGENT_EVENTS = frozenset({"restored", "etr_missed"})


@dataclass(frozen=True, slots=True)
class Lane:
    """A lane: its name, its ranks [low, high), and its share of each batch."""

    name: str
    low: int | None
    high: int | None
    share: float


LANES = (
    Lane("at risk", None, URGENT, 0.5),
    Lane("restored and late", URGENT, ROUTINE, 0.3),
    Lane("openings and updates", ROUTINE, None, 0.2),
)


def rank_of(channel_rank: int, event: str, at_risk: bool) -> int:
    """A ledger row's rank: its lane's start plus its channel's place in the customer's
    order."""
    if at_risk:
        return AT_RISK + channel_rank
    if event in URGENT_EVENTS:
        return URGENT + channel_rank
    return ROUTINE + channel_rank


def lane_of(rank: int) -> str:
    """The name of the lane a rank is in."""
    return next(
        lane.name
        for lane in LANES
        if (lane.low is None or rank >= lane.low) and (lane.high is None or rank < lane.high)
    )


def choose(conn: Connection, where: ColumnElement[bool], limit: int) -> list[int]:
    """Up to `limit` ids of the rows `where` selects, shared by the lanes: each its share
    first, then the room left to whichever lanes have more, in lane order. Index scans
    (status, rank, id) that lock, on PostgreSQL, only what they take (skipping locked rows)."""
    quotas = [max(1, math.ceil(lane.share * limit)) for lane in LANES]
    found = [_scan(conn, where, lane, quota, []) for lane, quota in zip(LANES, quotas, strict=True)]
    room = limit - sum(len(ids) for ids in found)
    for i, lane in enumerate(LANES):  # what a lane leaves, to the others in order
        if room <= 0:
            break
        if len(found[i]) == quotas[i]:  # it may have more
            more = _scan(conn, where, lane, room, found[i])
            found[i] += more
            room -= len(more)
    return [id_ for ids in found for id_ in ids][:limit]


def _scan(
    conn: Connection, where: ColumnElement[bool], lane: Lane, limit: int, besides: list[int]
) -> list[int]:
    """Up to `limit` ids of one lane's rows in queue order, leaving out `besides`."""
    ranks = deliveries.c.rank
    query = select(deliveries.c.id).where(where)
    if lane.low is not None:
        query = query.where(ranks >= lane.low)
    if lane.high is not None:
        query = query.where(ranks < lane.high)
    if besides:
        query = query.where(deliveries.c.id.not_in(besides))
    query = query.order_by(ranks, deliveries.c.id).limit(limit)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(conn.execute(query).scalars())


__all__ = ["AT_RISK", "LANES", "URGENT", "URGENT_EVENTS", "Lane", "choose", "lane_of", "rank_of"]
