"""Dispatch: send every due delivery in ledger-sized batches (one task per batch, never
one per message). The detection cycle runs the same task after it queues; `forewarn
serve` also runs this flow on its own beat for retries and deferred messages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from forewarn.flows.context import Context, context_for, task_runner
from forewarn.flows.observe import delivery_progress
from forewarn.incidents.replies import replay_status_callbacks
from forewarn.notifiers.dispatch import BatchReport, dispatch_batch
from forewarn.store import now_utc


@dataclass(slots=True)
class DispatchReport(BatchReport):
    """What the batches of one run did, added up."""

    batches: int = 0


@task(cache_policy=NO_CACHE)
def dispatch_messages(ctx: Context, now: datetime, report: DispatchReport) -> int:
    """Send one batch of due deliveries, any channel; returns how many rows it moved on."""
    return _one_batch(ctx, now, report, None)


@task(cache_policy=NO_CACHE)
def dispatch_channel(ctx: Context, now: datetime, channel: str) -> DispatchReport:
    """Send every due delivery of one channel, a ledger batch at a time."""
    report = DispatchReport()
    while _one_batch(ctx, now, report, (channel,)):
        pass
    return report


def _one_batch(
    ctx: Context, now: datetime, report: DispatchReport, channels: tuple[str, ...] | None
) -> int:
    batch = dispatch_batch(
        ctx.engine,
        ctx.registry.notifiers,
        ctx.brand,
        now,
        ctx.settings.dispatch_batch,
        ctx.rules,
        ctx.registry.journal,
        channels,
    )
    report.batches += 1
    report.add(batch)
    delivery_progress(ctx, batch.incidents)
    if batch.claimed:
        get_run_logger().info(
            "batch: claimed=%d sent=%d retrying=%d failed=%d reconciled=%d",
            batch.claimed, batch.sent, batch.retrying, batch.failed, batch.reconciled,
        )  # fmt: skip
    return batch.handled


def dispatch_all(ctx: Context, now: datetime, report: DispatchReport) -> None:
    """Run batches until nothing is due: each channel in its own task, side by side, so a
    slow provider (a long code's one text a second) never holds back the others."""
    running = [dispatch_channel.submit(ctx, now, channel) for channel in ctx.registry.notifiers]
    for future in running:
        part = future.result()
        report.batches += part.batches
        report.add(part)
    while dispatch_messages(ctx, now, report):  # rows of a channel nobody serves
        pass
    with ctx.engine.begin() as conn:
        # Twilio's news about a text can arrive before the text's SID was written down.
        replay_status_callbacks(conn, now)
    # The channels' tasks report as they go, side by side; this is the settled picture.
    delivery_progress(ctx, report.incidents)


@flow(name="dispatch", log_prints=False, task_runner=task_runner())
def dispatch(now: datetime | None = None) -> DispatchReport:
    """Send everything due now: new messages, retries whose pause is over, the morning's."""
    ctx = context_for()
    report = DispatchReport()
    dispatch_all(ctx, now or now_utc(), report)
    return report
