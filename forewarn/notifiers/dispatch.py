"""Dispatch through the ledger, so nothing is lost and nothing is sent twice.

A batch is claimed in one transaction (rows to `sending`, with the rendered text and the
claim time written down), sent per channel, and recorded in one more. A worker killed
between the two leaves rows in `sending`; once their claim is older than the lease they
are reconciled with the provider (found there: recorded as sent; not found: sent again
with the same text, Message-ID and idempotency key). Before anything is claimed, the
customer's state decides: opted out or over the cap (cancelled), superseded by a later
update (cancelled), or inside quiet hours (deferred to the morning).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, bindparam, select, true, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.expression import ColumnElement

from forewarn.incidents.ledger import PUBLIC
from forewarn.notifiers.base import Done, Message, Notifier, Outcome, Result, ignore
from forewarn.notifiers.compose import Brand, render
from forewarn.notifiers.journal import Journal
from forewarn.store import (
    customers,
    deliveries,
    incident_updates,
    incidents,
    premises,
    serialize,
)

MAX_ATTEMPTS = 8
# The last words of an incident always go, whatever the cap: "restored" and the summary.
UNCAPPED = frozenset({"restored", "summary"})
BACKOFF_BASE = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class Told:
    """What one customer's ledger holds for one incident, as the claim needs it."""

    rows: tuple[tuple[str, int, str], ...]  # (channel, update_seq, status)

    def sent_on(self, channel: str) -> int:
        """Messages of this incident already sent to them on `channel`."""
        return sum(1 for c, _, status in self.rows if c == channel and status == "sent")

    @property
    def anything(self) -> bool:
        """Whether they were told anything of this incident, on any channel."""
        return any(status == "sent" for _, _, status in self.rows)

    def later_than(self, channel: str, seq: int) -> bool:
        """Whether a later update of the incident is on its way to them on `channel`."""
        live = ("queued", "sending", "sent")
        return any(c == channel and s > seq and status in live for c, s, status in self.rows)


def _told(conn: Connection, rows: Sequence[Any]) -> dict[tuple[int, str], Told]:
    """Each batch customer's ledger for the batch's incidents, in one indexed query (a
    lookup per row inside the claim query let SQLite pick a status index and scan)."""
    customers_ = {r.customer_id for r in rows}
    incidents_ = {r.incident_id for r in rows}
    if not customers_:
        return {}
    d = deliveries.c
    found: dict[tuple[int, str], list[tuple[str, int, str]]] = defaultdict(list)
    for incident_id, customer_id, channel, seq, status in conn.execute(
        select(d.incident_id, d.customer_id, d.channel, d.update_seq, d.status).where(
            d.customer_id.in_(customers_), d.incident_id.in_(incidents_)
        )
    ):
        found[(int(incident_id), str(customer_id))].append((str(channel), int(seq), str(status)))
    return {key: Told(tuple(value)) for key, value in found.items()}


@dataclass(frozen=True, slots=True)
class Rules:
    """What a customer has asked of us, and the operator's limits."""

    quiet_start: time | None = time(21, 0)
    quiet_end: time | None = time(6, 0)
    max_per_incident: int = 8
    lease: timedelta = timedelta(minutes=5)

    @classmethod
    def parse_quiet(cls, text: str) -> tuple[time | None, time | None]:
        """'21:00-06:00' -> (21:00, 06:00); '' -> no quiet hours."""
        if not text:
            return None, None
        start, end = text.split("-")
        return time.fromisoformat(start), time.fromisoformat(end)


@dataclass(slots=True)
class BatchReport:
    """What one dispatched batch did."""

    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    cancelled: int = 0
    deferred: int = 0
    reconciled: int = 0
    samples: list[Message] = field(default_factory=list)
    # The incidents whose messages this batch sent or settled.
    incidents: set[int] = field(default_factory=set)

    def add(self, other: BatchReport) -> None:
        """Add another batch's counts (and samples, up to three) to this one."""
        for name in ("claimed", "sent", "retrying", "failed", "cancelled", "deferred"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.reconciled += other.reconciled
        self.incidents |= other.incidents
        self.samples.extend(other.samples[: max(3 - len(self.samples), 0)])

    @property
    def handled(self) -> int:
        """Rows this batch moved on (sent, cancelled, deferred...): 0 means nothing is due."""
        return self.claimed + self.cancelled + self.deferred


def backoff(attempts: int, rng: Callable[[], float] = random.random) -> timedelta:
    """Exponential backoff (30 s, 60 s, 120 s, ...) with up to 50% jitter."""
    delay: timedelta = BACKOFF_BASE * (2 ** max(attempts - 1, 0))
    return delay * (1 + 0.5 * float(rng()))


def quiet_until(moment: datetime, zone: str, rules: Rules) -> datetime | None:
    """When quiet hours end, if `moment` falls inside them in the zone `zone`."""
    start, end = rules.quiet_start, rules.quiet_end
    if start is None or end is None or start == end:
        return None
    try:
        tz = ZoneInfo(zone)
    except (KeyError, ValueError):
        tz = ZoneInfo("UTC")
    local = moment.astimezone(tz)
    clock = local.time()
    inside = (start <= clock or clock < end) if start > end else (start <= clock < end)
    if not inside:
        return None
    day = local.date() if clock < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=tz).astimezone(moment.tzinfo)


def dispatch_batch(
    engine: Engine,
    notifiers: Mapping[str, Notifier],
    brand: Brand,
    now: datetime,
    limit: int,
    rules: Rules | None = None,
    journal: Journal | None = None,
    channels: Collection[str] | None = None,
) -> BatchReport:
    """Reconcile lost claims, then claim, send and record up to `limit` due deliveries.

    With a `journal`, each outcome is also written the moment it is known, so a restart
    after a crash can tell what was sent without asking the provider. `channels` limits
    the batch to those channels (each channel can then go at its own provider's pace).
    """
    rules = rules or Rules()
    report = BatchReport()
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            # Take SQLite's write lock first, so two dispatchers cannot claim the same rows
            # (PostgreSQL skips rows another claim has locked instead).
            serialize(conn, "dispatch")
        only = deliveries.c.channel.in_(channels) if channels is not None else true()
        messages = _reclaim_stale(conn, notifiers, now, rules, report, journal, only)
        messages += _claim(conn, brand, now, limit, rules, report, only)
    report.claimed = len(messages)
    report.incidents = {m.incident_id for m in messages}
    if not messages:
        return report
    results = _send(notifiers, messages, report, journal.record if journal else ignore)
    with engine.begin() as conn:
        _record(conn, results, now, report)
    return report


def _send(
    notifiers: Mapping[str, Notifier], messages: list[Message], report: BatchReport, done: Done
) -> list[Result]:
    by_channel: dict[str, list[Message]] = defaultdict(list)
    results: list[Result] = []
    for message in messages:
        if message.channel in notifiers:
            by_channel[message.channel].append(message)
        else:
            results.append(Result(message.delivery_id, Outcome.PERMANENT, "no such channel"))
    # Channels go side by side: a slow SMS rate must not hold back the emails.
    with ThreadPoolExecutor(max(len(by_channel), 1), thread_name_prefix="channel") as pool:
        sent = pool.map(lambda item: notifiers[item[0]].send(item[1], done), by_channel.items())
        for part in sent:
            results += part
    for channel_messages in by_channel.values():
        report.samples.extend(channel_messages[:1])
    return results


def _due_rows(conn: Connection, where: ColumnElement[bool], limit: int) -> list[Any]:
    """Due ledger rows with all a message needs; locked rows are skipped on PostgreSQL.

    The rows are chosen first (an index scan in queue order), then joined with what a
    message needs, for this batch only.
    """
    choose = (
        select(deliveries.c.id)
        .where(where)
        .order_by(deliveries.c.rank, deliveries.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        choose = choose.with_for_update(skip_locked=True)
    ids = list(conn.execute(choose).scalars())
    if not ids:
        return []
    query: Select[Any] = (
        select(
            deliveries.c.id,
            deliveries.c.channel,
            deliveries.c.customer_id,
            deliveries.c.incident_id,
            deliveries.c.update_seq,
            deliveries.c.attempts,
            deliveries.c.status.label("delivery_status"),
            deliveries.c.claimed_at,
            deliveries.c.recipient,
            deliveries.c.subject.label("sent_subject"),
            deliveries.c.body.label("sent_body"),
            incident_updates.c.event,
            incident_updates.c.etr,
            incident_updates.c.next_update_at,
            incident_updates.c.status.label("update_status"),
            incident_updates.c.body.label("update_body"),
            incident_updates.c.created_at.label("update_at"),
            incidents.c.title,
            incidents.c.status.label("incident_status"),
            incidents.c.area_name,
            incidents.c.started_at,
            incidents.c.resolved_at,
            incidents.c.cause,
            incidents.c.etr_warned,
            incidents.c.scheduled_for,
            incidents.c.scheduled_until,
            customers.c.phone,
            customers.c.email,
            customers.c.social,
            customers.c.locale,
            customers.c.timezone,
            customers.c.opted_out,
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
        .outerjoin(customers, customers.c.customer_id == deliveries.c.customer_id)
        .outerjoin(premises, premises.c.premise_id == customers.c.premise_id)
        .where(deliveries.c.id.in_(ids))
        .order_by(deliveries.c.rank, deliveries.c.id)
    )
    return list(conn.execute(query))


def _claim(
    conn: Connection,
    brand: Brand,
    now: datetime,
    limit: int,
    rules: Rules,
    report: BatchReport,
    only: ColumnElement[bool],
) -> list[Message]:
    due = and_(deliveries.c.status == "queued", deliveries.c.next_attempt_at <= now, only)
    rows = _due_rows(conn, due, limit)
    claims: list[dict[str, Any]] = []
    cancels: list[dict[str, Any]] = []
    defers: list[dict[str, Any]] = []
    messages: list[Message] = []
    threads = _thread_heads(conn, {r.incident_id for r in rows if r.channel == "social"})
    history = _told(conn, [r for r in rows if r.customer_id != PUBLIC and r.channel != "webhook"])
    for row in rows:
        told = history.get((row.incident_id, row.customer_id))
        reason = _cancel_reason(row, told, rules) if told is not None else None
        if reason is not None:
            cancels.append({"b_id": row.id, "b_error": reason})
            continue
        if told is not None and (row.event != "restored" or not told.anything):
            resume = quiet_until(now, row.timezone or "UTC", rules)
            if resume is not None:
                defers.append({"b_id": row.id, "b_next": resume})
                continue
        to = _address(row)
        if to is None:
            cancels.append({"b_id": row.id, "b_error": f"no {row.channel} address"})
            continue
        body, subject = render(row, brand, now)
        claims.append(
            {"b_id": row.id, "b_to": to, "b_body": body, "b_subject": subject, "b_now": now}
        )
        messages.append(_message(row, to, body, subject, now, threads))
    if claims:
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id == bindparam("b_id"))
            .values(
                status="sending",
                attempts=deliveries.c.attempts + 1,
                claimed_at=bindparam("b_now"),
                recipient=bindparam("b_to"),
                body=bindparam("b_body"),
                subject=bindparam("b_subject"),
            ),
            claims,
        )
    if cancels:
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id == bindparam("b_id"))
            .values(status="cancelled", error=bindparam("b_error")),
            cancels,
        )
    if defers:
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id == bindparam("b_id"))
            .values(next_attempt_at=bindparam("b_next")),
            defers,
        )
    report.cancelled += len(cancels)
    report.deferred += len(defers)
    return messages


def _cancel_reason(row: Any, told: Told, rules: Rules) -> str | None:
    """Why a customer's queued message must not go at all, or None."""
    if row.opted_out is None:
        return "customer no longer exists"
    if row.opted_out:
        return "customer opted out"
    if told.later_than(row.channel, row.update_seq) and row.event != "restored":
        return "superseded by a later update"
    if told.sent_on(row.channel) >= rules.max_per_incident and row.event not in UNCAPPED:
        return f"cap of {rules.max_per_incident} messages for this incident reached"
    return None


def _reclaim_stale(
    conn: Connection,
    notifiers: Mapping[str, Notifier],
    now: datetime,
    rules: Rules,
    report: BatchReport,
    journal: Journal | None,
    only: ColumnElement[bool],
) -> list[Message]:
    """Rows claimed longer ago than the lease: look in the journal, then ask each provider,
    then record or resend."""
    stale = and_(
        deliveries.c.status == "sending", deliveries.c.claimed_at < now - rules.lease, only
    )
    rows = _due_rows(conn, stale, 10_000)
    if not rows:
        return []
    threads = _thread_heads(conn, {r.incident_id for r in rows if r.channel == "social"})
    messages = [
        _message(r, r.recipient, r.sent_body, r.sent_subject, r.claimed_at, threads) for r in rows
    ]
    journaled = journal.find(m.delivery_id for m in messages) if journal else {}
    by_channel: dict[str, list[Message]] = defaultdict(list)
    for message in messages:
        if message.delivery_id not in journaled:
            by_channel[message.channel].append(message)
    # What the journal knows is final: sent, failed, or to be retried after a pause.
    _record(conn, list(journaled.values()), now, report)
    found: list[Result] = []
    waiting: set[int] = set(journaled)
    for channel, channel_messages in by_channel.items():
        notifier = notifiers.get(channel)
        if notifier is None:
            continue
        for result in notifier.reconcile(channel_messages):
            if result is None:
                continue
            if result.outcome is Outcome.DELIVERED:
                found.append(result)
            else:
                waiting.add(result.delivery_id)
    _record(conn, found, now, report)
    report.reconciled += len(found) + len(journaled)
    settled = {r.delivery_id for r in found} | waiting
    resend = [m for m in messages if m.delivery_id not in settled]
    if waiting:
        # The provider cannot say yet: look again after another lease.
        conn.execute(update(deliveries).where(deliveries.c.id.in_(waiting)).values(claimed_at=now))
    if resend:
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id.in_([m.delivery_id for m in resend]))
            .values(claimed_at=now, attempts=deliveries.c.attempts + 1)
        )
    return resend


def _thread_heads(conn: Connection, incident_ids: set[int]) -> dict[int, str]:
    """The last public post of each incident's thread, which the next update answers."""
    if not incident_ids:
        return {}
    rows = conn.execute(
        select(deliveries.c.incident_id, deliveries.c.provider_ref)
        .where(
            deliveries.c.incident_id.in_(incident_ids),
            deliveries.c.channel == "social",
            deliveries.c.customer_id == PUBLIC,
            deliveries.c.status == "sent",
            deliveries.c.provider_ref.is_not(None),
        )
        .order_by(deliveries.c.update_seq)
    )
    return {int(incident_id): str(ref) for incident_id, ref in rows}


def _message(
    row: Any,
    to: str,
    body: str,
    subject: str | None,
    claimed_at: datetime | None,
    threads: Mapping[int, str],
) -> Message:
    public = row.customer_id == PUBLIC
    return Message(
        row.id,
        row.channel,
        to,
        None if public else row.customer_id,
        row.incident_id,
        row.update_seq,
        body,
        subject,
        reply_to=threads.get(row.incident_id) if public and row.channel == "social" else None,
        claimed_at=claimed_at,
        locale=row.locale or "en",
    )


def _address(row: Any) -> str | None:
    if row.channel == "webhook":
        return str(row.customer_id)
    if row.customer_id == PUBLIC:
        return "public"
    field_name = {"sms": "phone", "email": "email", "social": "social"}.get(row.channel)
    value = None if field_name is None else getattr(row, field_name)
    return str(value) if value else None


def _record(
    conn: Connection, results: Sequence[Result], now: datetime, report: BatchReport
) -> None:
    if not results:
        return
    ids = [r.delivery_id for r in results]
    attempts = {
        int(row[0]): int(row[1])
        for row in conn.execute(
            select(deliveries.c.id, deliveries.c.attempts).where(deliveries.c.id.in_(ids))
        )
    }
    sent, retry, failed = [], [], []
    for result in results:
        detail = result.detail[:500]
        if result.outcome is Outcome.DELIVERED:
            sent.append({"b_id": result.delivery_id, "b_ref": result.ref, "b_detail": detail})
            continue
        tries = attempts.get(result.delivery_id, MAX_ATTEMPTS)
        if result.outcome is Outcome.RETRYABLE and tries < MAX_ATTEMPTS:
            retry.append(
                {"b_id": result.delivery_id, "b_next": now + backoff(tries), "b_detail": detail}
            )
        else:
            failed.append({"b_id": result.delivery_id, "b_ref": result.ref, "b_detail": detail})
    by_id = deliveries.c.id == bindparam("b_id")
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
    report.sent += len(sent)
    report.retrying += len(retry)
    report.failed += len(failed)


__all__ = ["BatchReport", "Rules", "backoff", "dispatch_batch", "quiet_until"]
