"""The ledger's state machine: claim due deliveries, reclaim stale claims, record what
the channels report.

A batch is claimed in one transaction (rows to `sending`, with the composed text, the
recipient, the claim time, who holds the claim, until when, and the claim's token
written down) and recorded in another, which only records rows still carrying its token.
The holder renews its lease while it sends. A worker killed between the two leaves rows
in `sending`; once their lease has passed without renewal, or at once when the holder
was a process of this host that is gone, they are reclaimed: what the journal or the
provider already knows is recorded, the rest go again with the same text. Before anything
is claimed, the customer's state decides: opted out (cancelled), superseded by a later
update (cancelled: several changes due together become one message), held by the night
(deferred to the morning), or over the day's ceiling of routine messages (deferred, but
never past the update or the estimate warning the customer was promised). No limit
cancels a message: what was promised is always said.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, true, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import ColumnElement

from forewarn.channels import CHANNELS, contact_of
from forewarn.incidents.ledger.due import Attempt, DueDelivery, due_rows
from forewarn.incidents.ledger.holders import is_dead
from forewarn.incidents.ledger.told import Told, held_until, routine_sent
from forewarn.incidents.ledger.told import told as told_of
from forewarn.incidents.safety import SAFETY
from forewarn.quiet import NIGHT, Night
from forewarn.store import deliveries

MAX_ATTEMPTS = 8
BACKOFF_BASE = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class Rules:
    """The night policy, the day's ceiling of routine messages, and the claim lease."""

    night: Night = NIGHT
    # Routine messages per customer and channel in any 24 hours, unless a promise is due.
    routine_per_day: int = 4
    # Customers hear this long before an estimate passes that it will be missed: a held
    # routine message never waits past the warning of the estimate the customer holds.
    etr_warning: timedelta = timedelta(minutes=30)
    lease: timedelta = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Recorded:
    """How many recorded attempts were sent, will be retried, or failed for good."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0
    # Outcomes of a stale claim, whose rows another worker has taken over: not recorded.
    refused: int = 0

    def __add__(self, other: Recorded) -> Recorded:
        return Recorded(
            self.sent + other.sent,
            self.retrying + other.retrying,
            self.failed + other.failed,
            self.refused + other.refused,
        )


@dataclass(frozen=True, slots=True)
class Holder:
    """Who claims (`by`, "host:pid:start") and the claim's token."""

    by: str | None = None
    token: str | None = None


@dataclass(frozen=True, slots=True)
class Claimed:
    """A claim: the deliveries to send now, and how many were cancelled or deferred."""

    due: list[DueDelivery]
    cancelled: int = 0
    deferred: int = 0


@dataclass(frozen=True, slots=True)
class Reclaimed:
    """Stale claims: those to send again, those found settled, and what was recorded."""

    resend: list[DueDelivery]
    reconciled: int = 0
    recorded: Recorded = Recorded()


# Composes a delivery's (body, subject), written down with the claim.
Compose = Callable[[DueDelivery], tuple[str, str | None]]
# For stale claims: each one's known attempt (recorded), None (ask again after another
# lease); a claim left out is sent again.
Check = Callable[[Sequence[DueDelivery]], Mapping[int, Attempt | None]]


# Jitter from the system's entropy: no shared generator state touched from many threads.
_JITTER = random.SystemRandom()


def backoff(attempts: int, rng: Callable[[], float] = _JITTER.random) -> timedelta:
    """Exponential backoff (30 s, 60 s, 120 s, ...) with up to 50% jitter."""
    delay: timedelta = BACKOFF_BASE * (2 ** max(attempts - 1, 0))
    return delay * (1 + 0.5 * float(rng()))


def _only(channels: Collection[str] | None) -> ColumnElement[bool]:
    return deliveries.c.channel.in_(channels) if channels is not None else true()


def claim(
    conn: Connection,
    now: datetime,
    limit: int,
    rules: Rules,
    compose: Compose,
    channels: Collection[str] | None = None,
    holder: Holder = Holder(),
) -> Claimed:
    """Claim up to `limit` due deliveries (on `channels` only, if given): cancel those
    that must not go, defer those inside the customer's quiet hours, and mark the rest
    `sending` with their recipient and composed text, held by `holder` for a lease."""
    due = and_(
        deliveries.c.status == "queued", deliveries.c.next_attempt_at <= now, _only(channels)
    )
    rows = due_rows(conn, due, limit)
    claims: list[dict[str, Any]] = []
    cancels: list[dict[str, Any]] = []
    defers: list[dict[str, Any]] = []
    claimed: list[DueDelivery] = []
    personal = [r for r in rows if not r.public and contact_of(r.channel) is not None]
    history = told_of(conn, personal)
    today = routine_sent(conn, personal, now)
    for row in rows:
        told = history.get((row.incident_id, row.customer_id))
        reason = _cancel_reason(row, told) if told is not None else None
        if reason is not None:
            cancels.append({"b_id": row.delivery_id, "b_error": reason})
            continue
        if told is not None and not (row.needs and row.event in SAFETY):
            sent_today = today.get((row.customer_id, row.channel), [])
            resume = held_until(
                row, told, sent_today, now, rules.night, rules.routine_per_day, rules.etr_warning
            )
            if resume is not None:
                defers.append({"b_id": row.delivery_id, "b_next": resume})
                continue
        to = _address(row)
        if to is None:
            cancels.append({"b_id": row.delivery_id, "b_error": f"no {row.channel} address"})
            continue
        body, subject = compose(row)
        claims.append({"b_id": row.delivery_id, "b_to": to, "b_body": body, "b_subject": subject})
        claimed.append(
            replace(
                row,
                recipient=to,
                sent_body=body,
                sent_subject=subject,
                claimed_at=now,
                attempts=row.attempts + 1,
            )
        )
    by_id = deliveries.c.id == bindparam("b_id")
    if claims:
        conn.execute(
            update(deliveries)
            .where(by_id)
            .values(
                status="sending",
                attempts=deliveries.c.attempts + 1,
                claimed_at=now,
                claimed_by=holder.by,
                claim_token=holder.token,
                lease_until=now + rules.lease,
                recipient=bindparam("b_to"),
                body=bindparam("b_body"),
                subject=bindparam("b_subject"),
            ),
            claims,
        )
    if cancels:
        conn.execute(
            update(deliveries).where(by_id).values(status="cancelled", error=bindparam("b_error")),
            cancels,
        )
    if defers:
        conn.execute(
            update(deliveries).where(by_id).values(next_attempt_at=bindparam("b_next")), defers
        )
    return Claimed(claimed, len(cancels), len(defers))


def reclaim_stale(
    conn: Connection,
    now: datetime,
    rules: Rules,
    check: Check,
    channels: Collection[str] | None = None,
    holder: Holder = Holder(),
) -> Reclaimed:
    """Lost claims: those whose lease passed without renewal, and at once those held by a
    process of this host that is gone. Record what `check` (the journal, the providers)
    knows of them, look again after another lease at those it cannot say yet, and claim
    the rest again for `holder` (their text and recipient unchanged)."""
    d = deliveries.c
    expired = or_(
        d.lease_until < now,
        and_(d.lease_until.is_(None), d.claimed_at < now - rules.lease),
    )
    dead = _dead_holders(conn, channels)
    lost = or_(expired, d.claimed_by.in_(dead)) if dead else expired
    rows = due_rows(conn, and_(d.status == "sending", lost, _only(channels)), 10_000)
    if not rows:
        return Reclaimed([])
    verdicts = check(rows)
    known = [attempt for attempt in verdicts.values() if attempt is not None]
    recorded = record(conn, known, now)
    waiting = [i for i, attempt in verdicts.items() if attempt is None]
    resend = [r for r in rows if r.delivery_id not in verdicts]
    if waiting:
        # Nobody sends these now: asked again once this lease has passed.
        conn.execute(
            update(deliveries)
            .where(d.id.in_(waiting))
            .values(claimed_at=now, claimed_by=None, claim_token=None)
            .values(lease_until=now + rules.lease)
        )
    if resend:
        conn.execute(
            update(deliveries)
            .where(d.id.in_([r.delivery_id for r in resend]))
            .values(
                claimed_at=now,
                claimed_by=holder.by,
                claim_token=holder.token,
                lease_until=now + rules.lease,
                attempts=d.attempts + 1,
            )
        )
    resend = [replace(r, claimed_at=now, attempts=r.attempts + 1) for r in resend]
    return Reclaimed(resend, len(known), recorded)


def renew(conn: Connection, token: str, until: datetime) -> int:
    """Extend the lease of the rows a claim still holds (its sends are running); how many."""
    held = and_(deliveries.c.claim_token == token, deliveries.c.status == "sending")
    return int(conn.execute(update(deliveries).where(held).values(lease_until=until)).rowcount)


def release(conn: Connection, ids: Sequence[int], token: str) -> int:
    """Put back in the queue the rows this claim still holds but never handed to a
    provider (its lease lapsed first), their attempt not counted; how many."""
    if not ids:
        return 0
    d = deliveries.c
    held = and_(d.id.in_(ids), d.claim_token == token, d.status == "sending")
    back = update(deliveries).where(held).values(status="queued", attempts=d.attempts - 1)
    return int(conn.execute(back).rowcount)


def _dead_holders(conn: Connection, channels: Collection[str] | None) -> list[str]:
    """Holders of `sending` rows that are processes of this host no longer running."""
    d = deliveries.c
    holders = conn.execute(
        select(d.claimed_by)
        .where(d.status == "sending", d.claimed_by.is_not(None), _only(channels))
        .distinct()
    ).scalars()
    return [h for h in holders if is_dead(h)]


def record(
    conn: Connection, attempts: Sequence[Attempt], now: datetime, token: str | None = None
) -> Recorded:
    """Record how sends ended: sent; retryable (queued again after a backoff, until the
    attempt cap); or failed for good. With the claim's `token`, only rows that claim still
    holds are recorded: the others (taken over by another worker) are refused."""
    if not attempts:
        return Recorded()
    ids = [a.delivery_id for a in attempts]
    held = (
        and_(deliveries.c.claim_token == token, deliveries.c.status == "sending")
        if token is not None
        else true()
    )
    tries_by_id = {
        int(row[0]): int(row[1])
        for row in conn.execute(
            select(deliveries.c.id, deliveries.c.attempts).where(deliveries.c.id.in_(ids), held)
        )
    }
    refused = 0
    if token is not None:
        refused = sum(1 for a in attempts if a.delivery_id not in tries_by_id)
        attempts = [a for a in attempts if a.delivery_id in tries_by_id]
    sent, retry, failed = [], [], []
    for attempt in attempts:
        detail = attempt.detail[:500]
        if attempt.verdict == "delivered":
            sent.append({"b_id": attempt.delivery_id, "b_ref": attempt.ref, "b_detail": detail})
            continue
        tries = tries_by_id.get(attempt.delivery_id, MAX_ATTEMPTS)
        if attempt.verdict == "retryable" and tries < MAX_ATTEMPTS:
            retry.append(
                {"b_id": attempt.delivery_id, "b_next": now + backoff(tries), "b_detail": detail}
            )
        else:
            failed.append({"b_id": attempt.delivery_id, "b_ref": attempt.ref, "b_detail": detail})
    by_id = and_(deliveries.c.id == bindparam("b_id"), held)
    if sent:
        conn.execute(
            update(deliveries)
            .where(by_id, deliveries.c.status == "sending")
            .values(status="sent", sent_at=now, provider_ref=bindparam("b_ref"), error=None),
            sent,
        )
    if retry:
        conn.execute(
            update(deliveries)
            .where(by_id)
            .values(
                status="queued", next_attempt_at=bindparam("b_next"), error=bindparam("b_detail")
            ),
            retry,
        )
    if failed:
        conn.execute(
            update(deliveries)
            .where(by_id)
            .values(status="failed", provider_ref=bindparam("b_ref"), error=bindparam("b_detail")),
            failed,
        )
    return Recorded(len(sent), len(retry), len(failed), refused)


def _cancel_reason(row: DueDelivery, told: Told) -> str | None:
    """Why a customer's queued message must not go at all, or None."""
    if row.opted_out is None:
        return "customer no longer exists"
    if row.opted_out:
        return "customer opted out"
    if told.later_than(row.channel, row.update_seq) and row.event != "restored":
        return "superseded by a later update"
    return None


def _address(row: DueDelivery) -> str | None:
    """Where the message goes: the partner a hook is for, "public" for a public post,
    else the customer's field the channel reads."""
    known = CHANNELS.get(row.channel)  # None for a channel no longer known (an old row)
    if known is not None and known.partners:
        return row.customer_id
    if row.public:
        return "public"
    field = known.contact if known else None
    value = getattr(row, field) if field else None
    return value or None


__all__ = [
    "MAX_ATTEMPTS",
    "Check",
    "Claimed",
    "Compose",
    "Holder",
    "Reclaimed",
    "Recorded",
    "Rules",
    "backoff",
    "claim",
    "reclaim_stale",
    "record",
    "renew",
]
