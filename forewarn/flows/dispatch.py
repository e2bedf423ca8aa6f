"""Dispatch: send every due delivery in ledger-sized batches (one task per batch, never
one per message). The detection cycle runs the same task after it queues; `forewarn
serve` also runs this flow on its own beat for retries and deferred messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from forewarn.flows.context import Context, context_for
from forewarn.notifiers.base import Message
from forewarn.notifiers.dispatch import dispatch_batch
from forewarn.store import now_utc


@dataclass(slots=True)
class DispatchReport:
    """What the batches of one run did."""

    batches: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    cancelled: int = 0
    deferred: int = 0
    reconciled: int = 0
    samples: list[Message] = field(default_factory=list)


@task(cache_policy=NO_CACHE)
def dispatch_messages(ctx: Context, now: datetime, report: DispatchReport) -> int:
    """Send one batch of due deliveries; returns how many rows it moved on."""
    batch = dispatch_batch(
        ctx.engine,
        ctx.registry.notifiers,
        ctx.brand,
        now,
        ctx.settings.dispatch_batch,
        ctx.rules,
        ctx.registry.journal,
    )
    report.batches += 1
    report.sent += batch.sent
    report.retrying += batch.retrying
    report.failed += batch.failed
    report.cancelled += batch.cancelled
    report.deferred += batch.deferred
    report.reconciled += batch.reconciled
    if len(report.samples) < 3:
        report.samples.extend(batch.samples[: 3 - len(report.samples)])
    if batch.claimed:
        get_run_logger().info(
            "batch: claimed=%d sent=%d retrying=%d failed=%d reconciled=%d",
            batch.claimed, batch.sent, batch.retrying, batch.failed, batch.reconciled,
        )  # fmt: skip
    return batch.handled


def dispatch_all(ctx: Context, now: datetime, report: DispatchReport) -> None:
    """Run batches until nothing is due."""
    while dispatch_messages(ctx, now, report):
        pass


@flow(name="dispatch", log_prints=False)
def dispatch(now: datetime | None = None) -> DispatchReport:
    """Send everything due now: new messages, retries whose pause is over, the morning's."""
    ctx = context_for()
    report = DispatchReport()
    dispatch_all(ctx, now or now_utc(), report)
    return report
