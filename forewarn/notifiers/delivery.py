"""Delivery through the ledger, so nothing is lost and nothing is sent twice.

The ledger (forewarn.incidents.ledger) decides what is due and keeps the state machine;
here each `DueDelivery` it claims is composed into a `Message`, sent through its channel
(each outcome journaled the moment it is known) and handed back to the ledger's
`record`. Stale claims are checked against the journal, then against each provider,
before the ledger sends them again.

A claim never outlives its worker: it is sized to what the channel sends well inside the
lease at its rate, renewed every few seconds while the sends run (a heartbeat), and its
outcomes are recorded only for rows still carrying its token. A worker that stalls past
its lease (a stopped process, a suspended machine) sends nothing more of it once it
wakes: each message goes only while this worker's own clock says the claim is still held
(forewarn.notifiers.lease).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.engine import Connection, Engine

from forewarn.channels.base import Done, Held, Message, Outcome, Result, Sender, ignore
from forewarn.clock import Hour
from forewarn.incidents.ledger import (
    MAX_ATTEMPTS,
    Attempt,
    Check,
    Claimed,
    DueDelivery,
    Holder,
    Reclaimed,
    Recorded,
    Rules,
    Verdict,
    backoff,
    claim,
    reclaim_stale,
    record,
    release,
)
from forewarn.incidents.ledger.holders import me
from forewarn.notifiers.compose import Brand, render
from forewarn.notifiers.journal import Journal
from forewarn.notifiers.lease import Lease, heartbeat, renew_now
from forewarn.store import serialize, writing

VERDICTS: dict[Outcome, Verdict] = {
    Outcome.DELIVERED: "delivered",
    Outcome.RETRYABLE: "retryable",
    Outcome.PERMANENT: "permanent",
}


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
    # Outcomes not recorded: the rows had been taken over by another worker meanwhile.
    refused: int = 0
    # Left unsent because the claim lapsed while this worker stalled: back in the queue if
    # the claim still held them, else the worker that took them over settles them.
    unsent: int = 0
    samples: list[Message] = field(default_factory=list)
    # The incidents whose messages this batch sent or settled.
    incidents: set[int] = field(default_factory=set)
    # Failed for good, as the providers said why: (channel, reason) -> rows.
    failures: dict[tuple[str, str], int] = field(default_factory=dict)

    def add(self, other: BatchReport) -> None:
        """Add another batch's counts (and samples, up to three) to this one."""
        counts = ("claimed", "sent", "retrying", "failed", "cancelled", "deferred",
                  "reconciled", "refused", "unsent")  # fmt: skip
        for name in counts:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.incidents |= other.incidents
        for key, n in other.failures.items():
            self.failures[key] = self.failures.get(key, 0) + n
        self.samples.extend(other.samples[: max(3 - len(self.samples), 0)])

    @property
    def handled(self) -> int:
        """Rows this batch moved on (sent, cancelled, deferred...): 0 means nothing is due."""
        return self.claimed + self.cancelled + self.deferred

    def recorded(self, counts: Recorded) -> None:
        """Count what the ledger recorded."""
        self.sent += counts.sent
        self.retrying += counts.retrying
        self.failed += counts.failed
        self.refused += counts.refused


def running_clock(start: datetime) -> Hour:
    """`start`, moving on with real time: long dispatches judge leases at the true hour."""
    began = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - began)


def claim_size(
    senders: Mapping[str, Sender],
    channels: Collection[str] | None,
    limit: int,
    lease: timedelta,
) -> int:
    """How many rows to claim at once: what the slowest channel in play sends in a few
    seconds (a third of the lease if that is shorter) at its configured rate, plus its
    burst, never more than `limit`. A few seconds: news in a faster lane (an at-risk
    customer, a restoration) waits behind one claim of openings at most (lanes.py)."""
    seconds = min(lease.total_seconds() / 3, CLAIM_SECONDS)
    sizes = [
        burst + rate * seconds
        for channel, sender in senders.items()
        if channels is None or channel in channels
        for rate, burst in [_pace(sender)]
        if rate is not None
    ]
    return max(1, min(limit, int(min(sizes)))) if sizes else limit


def _pace(sender: Sender) -> tuple[float | None, float]:
    """A sender's rate (messages or segments a second) and burst, if it has one."""
    limiter = sender.limiter
    return (limiter.rate, limiter.burst) if limiter is not None else (None, 0.0)


# A paced channel claims what it sends in this long: the most a faster lane's news waits.
CLAIM_SECONDS = 5.0
# Deliveries claimed at a time once the first small claim has gone: large enough that a
# claim's one read and one write are cheap per message, small enough to share a fan-out
# fairly between workers.
BATCH = 1000


def deliver_batch(
    engine: Engine,
    senders: Mapping[str, Sender],
    brand: Brand,
    now: datetime,
    limit: int,
    rules: Rules | None = None,
    journal: Journal | None = None,
    channels: Collection[str] | None = None,
    clock: Hour | None = None,
    claimed: Callable[[], None] | None = None,
) -> BatchReport:
    """Reconcile lost claims, then claim, send and record up to `limit` due deliveries
    (fewer if the channel could not send them well inside the lease).

    With a `journal`, each outcome is also written the moment it is known, so a restart
    after a crash can tell what was sent without asking the provider. `channels` limits
    the batch to those channels (each channel can then go at its own provider's pace).
    `clock` says the time as the sends go on (default: `now`, moving with real time);
    `claimed` hears that the claim is in, before anything is sent.
    """
    rules = rules or Rules()
    clock = clock or running_clock(now)
    holder = Holder(me(), uuid.uuid4().hex)
    limit = claim_size(senders, channels, limit, rules.lease)
    report = BatchReport()
    lease = Lease(rules.lease.total_seconds())  # from before the claim's own clock reading
    at = clock()

    def claiming(conn: Connection) -> tuple[Reclaimed, Claimed]:
        if conn.dialect.name == "sqlite":
            # Take SQLite's write lock first, so two dispatchers cannot claim the same rows
            # (PostgreSQL skips rows another claim has locked instead).
            serialize(conn, "dispatch")
        check = _checker(senders, journal)
        stale = reclaim_stale(conn, at, rules, check, channels, holder)
        fresh = claim(conn, at, limit, rules, lambda due: render(due, brand, now), channels, holder)
        return stale, fresh

    # A busy store makes the claim wait and go again (nothing was sent yet).
    stale, fresh = writing(engine, claiming, "claim")
    report.reconciled += stale.reconciled
    report.recorded(stale.recorded)
    report.cancelled += fresh.cancelled
    report.deferred += fresh.deferred
    messages = [_message(due) for due in stale.resend + fresh.due]
    report.claimed = len(messages)
    report.incidents = {m.incident_id for m in messages}
    if not messages:
        return report
    if claimed is not None:
        claimed()
    token = holder.token or ""
    if lease.spent() > lease.seconds / 10:
        # The claim waited (a busy store, the providers asked about lost rows): renew now,
        # so the sends still have the whole lease (and none go if the rows were taken).
        renew_now(engine, token, clock, rules.lease, lease, len(messages))
    with heartbeat(engine, token, clock, rules.lease, lease, len(messages)):
        results = _send(
            senders, messages, report, journal.record if journal else ignore, lease.held
        )
    unsent = [r.delivery_id for r in results if r.outcome is Outcome.UNSENT]
    report.unsent = len(unsent)
    if unsent:
        logger.warning("claim lapsed: %d messages not sent under it", len(unsent))
    attempts = [_attempt(r) for r in results if r.outcome is not Outcome.UNSENT]
    _note_failures(report, results, stale.resend + fresh.due)

    def write_down(conn: Connection) -> Recorded:
        # What never reached a provider goes back in the queue (if still this claim's).
        release(conn, unsent, token)
        return record(conn, attempts, now, token)

    # Sent already: the outcome must reach the ledger, however long other writers hold it.
    recorded = writing(engine, write_down, "record")
    report.recorded(recorded)
    if report.refused:
        logger.warning("%d outcomes of a lost claim not recorded", report.refused)
    return report


logger = logging.getLogger("forewarn.dispatch")


def _note_failures(report: BatchReport, results: list[Result], due: list[DueDelivery]) -> None:
    """Count what failed for good, by channel and the provider's reason: permanent
    failures, and retryable ones with no attempt left (as the ledger records them)."""
    by_id = {d.delivery_id: d for d in due}
    for result in results:
        row = by_id.get(result.delivery_id)
        if result.outcome in (Outcome.DELIVERED, Outcome.UNSENT) or row is None:
            continue
        if result.outcome is Outcome.RETRYABLE and row.attempts < MAX_ATTEMPTS:
            continue  # queued again: the ledger's waiting rows say why and until when
        key = (row.channel, result.detail[:500])
        report.failures[key] = report.failures.get(key, 0) + 1


def _send(
    senders: Mapping[str, Sender],
    messages: list[Message],
    report: BatchReport,
    done: Done,
    held: Held,
) -> list[Result]:
    by_channel: dict[str, list[Message]] = defaultdict(list)
    results: list[Result] = []
    for message in messages:
        if message.channel in senders:
            by_channel[message.channel].append(message)
        else:
            results.append(Result(message.delivery_id, Outcome.PERMANENT, "no such channel"))
    # Channels go side by side: a slow SMS rate must not hold back the emails.
    with ThreadPoolExecutor(max(len(by_channel), 1), thread_name_prefix="channel") as pool:
        sent = pool.map(
            lambda item: senders[item[0]].send(item[1], _journaled(done), held),
            by_channel.items(),
        )
        for part in sent:
            results += part
    for channel_messages in by_channel.values():
        report.samples.extend(channel_messages[:1])
    return results


def _journaled(done: Done) -> Done:
    """`done` for what reached the provider: an unsent message has no outcome to keep."""

    def keep(result: Result) -> None:
        if result.outcome is not Outcome.UNSENT:
            done(result)

    return keep


def _checker(senders: Mapping[str, Sender], journal: Journal | None) -> Check:
    """What is known of stale claims: the journal's outcome is final; a provider that has
    the message makes it sent; one that cannot say yet is asked again after another
    lease; the rest (also those of a channel that is not configured) go again."""

    def check(stale: Sequence[DueDelivery]) -> dict[int, Attempt | None]:
        messages = [_message(due) for due in stale]
        journaled = journal.find(m.delivery_id for m in messages) if journal else {}
        verdicts: dict[int, Attempt | None] = {i: _attempt(r) for i, r in journaled.items()}
        by_channel: dict[str, list[Message]] = defaultdict(list)
        for message in messages:
            if message.delivery_id not in journaled:
                by_channel[message.channel].append(message)
        for channel, channel_messages in by_channel.items():
            sender = senders.get(channel)
            if sender is None:
                continue
            for result in sender.reconcile(channel_messages):
                if result is None:
                    continue
                delivered = result.outcome is Outcome.DELIVERED
                verdicts[result.delivery_id] = _attempt(result) if delivered else None
        return verdicts

    return check


def _attempt(result: Result) -> Attempt:
    return Attempt(result.delivery_id, VERDICTS[result.outcome], result.detail, result.ref)


def _message(due: DueDelivery) -> Message:
    """The message a claimed delivery sends: what its claim wrote down."""
    return Message(
        due.delivery_id,
        due.channel,
        due.recipient or "",
        None if due.public else due.customer_id,
        due.incident_id,
        due.update_seq,
        due.sent_body or "",
        due.sent_subject,
        reply_to=due.reply_to,
        claimed_at=due.claimed_at,
        locale=due.locale or "en",
    )


__all__ = [
    "BATCH",
    "MAX_ATTEMPTS",
    "BatchReport",
    "Rules",
    "backoff",
    "claim_size",
    "deliver_batch",
    "running_clock",
]
