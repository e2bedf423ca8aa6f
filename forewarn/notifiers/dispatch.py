"""Dispatch through the ledger: claim due rows in a batch, render, send per channel,
record every outcome. Retryable failures back off with jitter; permanent ones stop."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, select, update
from sqlalchemy.engine import Connection, Engine

from forewarn.notifiers.base import Message, Notifier, Outcome, Result
from forewarn.notifiers.compose import Brand, render
from forewarn.store import customers, deliveries, incident_updates, incidents, premises

MAX_ATTEMPTS = 8
BACKOFF_BASE = timedelta(seconds=30)


@dataclass(slots=True)
class BatchReport:
    """What one dispatched batch did."""

    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    samples: list[Message] = field(default_factory=list)


def backoff(attempts: int, rng: Callable[[], float] = random.random) -> timedelta:
    """Exponential backoff (30 s, 60 s, 120 s, ...) with up to 50% jitter."""
    delay: timedelta = BACKOFF_BASE * (2 ** max(attempts - 1, 0))
    return delay * (1 + 0.5 * float(rng()))


def dispatch_batch(
    engine: Engine,
    notifiers: Mapping[str, Notifier],
    brand: Brand,
    now: datetime,
    limit: int,
) -> BatchReport:
    """Claim, send and record up to `limit` due deliveries."""
    report = BatchReport()
    with engine.begin() as conn:
        claimed = _claim(conn, now, limit)
    report.claimed = len(claimed)
    if not claimed:
        return report
    with engine.connect() as conn:
        rows = conn.execute(_message_query(claimed)).all()
    by_channel: dict[str, list[Message]] = defaultdict(list)
    results: list[Result] = []
    for row in rows:
        to = _address(row)
        if to is None:
            results.append(Result(row.id, Outcome.PERMANENT, f"no {row.channel} address"))
            continue
        body, subject = render(row, brand, now)
        by_channel[row.channel].append(
            Message(
                row.id,
                row.channel,
                to,
                row.customer_id,
                row.incident_id,
                row.update_seq,
                body,
                subject,
            )
        )
    for channel, messages in by_channel.items():
        notifier = notifiers.get(channel)
        if notifier is None:
            results += [
                Result(m.delivery_id, Outcome.PERMANENT, "no such channel") for m in messages
            ]
            continue
        results += notifier.send(messages)
        report.samples.extend(messages[:1])
    with engine.begin() as conn:
        _record(conn, results, now, report)
    return report


def _claim(conn: Connection, now: datetime, limit: int) -> list[int]:
    ids = list(
        conn.execute(
            select(deliveries.c.id)
            .where(deliveries.c.status == "queued", deliveries.c.next_attempt_at <= now)
            .order_by(deliveries.c.rank, deliveries.c.id)
            .limit(limit)
        ).scalars()
    )
    if ids:
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id.in_(ids), deliveries.c.status == "queued")
            .values(status="sending", attempts=deliveries.c.attempts + 1)
        )
    return ids


def _message_query(ids: list[int]) -> Select[Any]:
    return (
        select(
            deliveries.c.id,
            deliveries.c.channel,
            deliveries.c.customer_id,
            deliveries.c.incident_id,
            deliveries.c.update_seq,
            deliveries.c.attempts,
            incident_updates.c.event,
            incident_updates.c.etr,
            incident_updates.c.next_update_at,
            incidents.c.area_name,
            incidents.c.started_at,
            incidents.c.cause,
            customers.c.phone,
            customers.c.email,
            customers.c.social,
            customers.c.locale,
            customers.c.timezone,
            premises.c.address,
        )
        .join(
            incident_updates,
            and_(
                incident_updates.c.incident_id == deliveries.c.incident_id,
                incident_updates.c.seq == deliveries.c.update_seq,
            ),
        )
        .join(incidents, incidents.c.id == deliveries.c.incident_id)
        .join(customers, customers.c.customer_id == deliveries.c.customer_id)
        .join(premises, premises.c.premise_id == customers.c.premise_id)
        .where(deliveries.c.id.in_(ids))
        .order_by(deliveries.c.rank, deliveries.c.id)
    )


def _address(row: Any) -> str | None:
    field_name = {"sms": "phone", "email": "email", "social": "social"}.get(row.channel)
    return None if field_name is None else getattr(row, field_name)


def _record(conn: Connection, results: list[Result], now: datetime, report: BatchReport) -> None:
    ids = [r.delivery_id for r in results]
    attempts = {
        int(row[0]): int(row[1])
        for row in conn.execute(
            select(deliveries.c.id, deliveries.c.attempts).where(deliveries.c.id.in_(ids))
        )
    }
    sent = [r.delivery_id for r in results if r.outcome is Outcome.DELIVERED]
    if sent:
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id.in_(sent))
            .values(status="sent", sent_at=now, error=None)
        )
    report.sent += len(sent)
    for result in results:
        if result.outcome is Outcome.DELIVERED:
            continue
        tries = attempts.get(result.delivery_id, MAX_ATTEMPTS)
        if result.outcome is Outcome.RETRYABLE and tries < MAX_ATTEMPTS:
            values = {"status": "queued", "next_attempt_at": now + backoff(tries)}
            report.retrying += 1
        else:
            values = {"status": "failed"}
            report.failed += 1
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id == result.delivery_id)
            .values(error=result.detail[:500], **values)
        )


__all__ = ["BatchReport", "backoff", "dispatch_batch"]
