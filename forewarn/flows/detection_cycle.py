"""The detection cycle: read feeds, detect, update incidents, queue and dispatch
messages, publish the site. Each task takes a whole batch; no task per message."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from forewarn.detection.run import Detection, alertmanager_down, run_detection
from forewarn.feeds.read import acknowledge, read_all
from forewarn.flows.context import Context, context_for, task_runner
from forewarn.flows.dispatch import DispatchReport, dispatch_all
from forewarn.flows.observe import update_tables
from forewarn.flows.publication import publish_site
from forewarn.incidents import Changes, queue_deliveries, reconcile
from forewarn.store import now_utc, serialize


@dataclass(slots=True)
class CycleReport:
    """What one cycle saw and did, for the CLI, the demo and the logs."""

    now: datetime
    signals: int = 0
    rejects: int = 0
    feed_errors: list[str] = field(default_factory=list)
    detection: Detection = field(default_factory=Detection)
    changes: Changes = field(default_factory=Changes)
    queued: int = 0
    dispatch: DispatchReport = field(default_factory=DispatchReport)
    site: str = ""


@task(cache_policy=NO_CACHE)
def detect_faults(ctx: Context, now: datetime, report: CycleReport) -> Detection:
    """Read every feed and turn the signals into faults, in one transaction."""
    tree = ctx.index().tree
    with ctx.engine.begin() as conn:
        serialize(conn, "detection")  # two cycles at once take turns, never double-read
        read = read_all(conn, ctx.feeds, ctx.http, alertmanager_down(conn), now)
        detection = run_detection(conn, tree, read.batch.signals, now, ctx.thresholds)
        read.batch.rejects.extend(detection.rejects)
        acknowledge(conn, read, now)
    report.signals = len(read.batch.signals)
    report.rejects = len(read.batch.rejects)
    report.feed_errors = read.errors
    logger = get_run_logger()
    for error in read.errors:
        logger.warning(error)
    logger.info(
        "signals=%d rejects=%d faults=%d pending=%d",
        report.signals, report.rejects, len(detection.faults), detection.pending,
    )  # fmt: skip
    return detection


@task(cache_policy=NO_CACHE)
def update_incidents(
    ctx: Context, detection: Detection, now: datetime, head: int | None = None
) -> tuple[Changes, int]:
    """Open, expand and resolve incidents, and write the ledger rows for their updates
    (with `head`, only each update's first customers: `queue_rest` adds the others)."""
    index = ctx.index()
    with ctx.engine.begin() as conn:
        serialize(conn, "incidents")  # one writer of incidents at a time: never two opened
        changes = reconcile(conn, index, detection.faults, detection.down, now, ctx.policy)
        queued = queue_deliveries(conn, now, ctx.registry.partners, head)
    update_tables(ctx, changes.opened + changes.expanded + changes.resolved + changes.merged)
    logger = get_run_logger()
    for q in queued:
        logger.info("incident=%d update=%d deliveries queued=%d", q.incident_id, q.seq, q.rows)
    return changes, sum(q.rows for q in queued)


# Customers queued per transaction by queue_rest.
REST_CHUNK = 5000


@task(cache_policy=NO_CACHE)
def queue_rest(ctx: Context, now: datetime) -> int:
    """Queue the customers `update_incidents` left for later, while the first are sent: a
    few thousand per transaction, so that the dispatchers' claims get in between (SQLite
    has one writer at a time)."""
    total = 0
    while True:
        with ctx.engine.begin() as conn:
            serialize(conn, "incidents")
            queued = queue_deliveries(conn, now, ctx.registry.partners, REST_CHUNK)
        for q in queued:
            get_run_logger().info(
                "incident=%d update=%d deliveries queued=%d", q.incident_id, q.seq, q.rows
            )
        total += sum(q.rows for q in queued)
        if all(q.complete for q in queued):
            return total


@flow(name="detection-cycle", log_prints=False, task_runner=task_runner())
def detection_cycle(now: datetime | None = None) -> CycleReport:
    """One full cycle. `now` is for drills and the demo; by default the real time."""
    ctx = context_for()
    moment = now or now_utc()
    report = CycleReport(now=moment)
    report.detection = detect_faults(ctx, moment, report)
    # A big fault's first customers are queued and sent while the rest are being queued:
    # the first message does not wait for 80,000 ledger rows.
    head = ctx.settings.dispatch_batch
    report.changes, report.queued = update_incidents(ctx, report.detection, moment, head)
    rest = queue_rest.submit(ctx, moment) if report.queued else None
    dispatch_all(ctx, moment, report.dispatch)
    if rest is not None and (more := rest.result()):
        report.queued += more
        dispatch_all(ctx, moment, report.dispatch)  # whatever the channels had not seen
    if report.changes.any or not ctx.settings.site_dir.exists():
        report.site = publish_site(ctx, moment)
    return report
