"""The cycle, composed once: detect, update incidents, queue, deliver, follow up, publish.

Prefect's flows, `run-once`, `serve`, the demo, drills, the ops commands and the tests
all call these functions, so a rehearsal runs exactly what production runs. How each
step runs is the caller's choice: `Steps` runs them in this process (side-by-side steps
in threads); the flows pass their own `Steps`, which runs each as a Prefect task and
feeds the Prefect UI. A step takes a whole batch, never one message; what each reports is in
forewarn.reports."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection

from forewarn.channels import CHANNELS
from forewarn.channels.social import SocialSender
from forewarn.context import Context
from forewarn.detection.run import Detection, alertmanager_down, run_detection
from forewarn.feeds import Signal
from forewarn.feeds.read import FeedRead, acknowledge, fetch_remote, read_all
from forewarn.feeds.signal import FeedBatch
from forewarn.incidents import Changes, conversation, queue_deliveries, reconcile
from forewarn.incidents.callbacks import replay_status_callbacks
from forewarn.incidents.conversation import FollowUps
from forewarn.incidents.ledger import Queued
from forewarn.incidents.ledger.waiting import waiting
from forewarn.incidents.mentions import answer_mentions
from forewarn.incidents.reports import open_reported
from forewarn.notifiers.confirmations import send_confirmations
from forewarn.notifiers.delivery import BATCH, deliver_batch
from forewarn.reports import CycleReport, DeliveryReport, FollowedUp, Sensed
from forewarn.status_page import SiteData, collect, load_components, publish, render
from forewarn.steps import INLINE, Pending, Steps, logger
from forewarn.store import checkpoint, deliveries, serialize, writing

# Customers queued per transaction by queue_rest.
REST_CHUNK = 5000
# Rows in a channel's first claim of a delivery pass.
FIRST_CLAIM = 200
# How often queue_rest looks for another process's claim (its own wake it at once).
LOOK_S = 0.1


# The composition: the only place the steps are put in order.


def cycle(
    ctx: Context,
    now: datetime,
    signals: Sequence[Signal] | FeedBatch | None = None,
    steps: Steps = INLINE,
) -> CycleReport:
    """One detection cycle: read the feeds (or take a drill's `signals`), detect, update
    incidents, queue and deliver their messages, and publish the site if anything changed."""
    report = CycleReport(now=now)
    ctx.clock.follow(now)  # the true hour in operation; a drill's or a rehearsal's moment
    report.sensed = steps.call(detect_faults, ctx, now, signals)
    # A big fault's first customers are queued and sent while the rest are being queued:
    # the first message does not wait for 80,000 ledger rows.
    head = BATCH
    report.changes, report.queued = steps.call(
        update_incidents, ctx, report.detection, now, steps, head
    )
    rest = steps.submit(queue_rest, ctx, now) if report.queued else None
    deliver(ctx, now, steps, report.dispatch)
    if rest is not None and (more := rest.result()):
        report.queued += more
        deliver(ctx, now, steps, report.dispatch)  # whatever the channels had not seen
    if report.changes.any or not ctx.settings.site_dir.exists():
        report.site = steps.call(publish_site, ctx, now)
    return report


def deliver(
    ctx: Context,
    now: datetime,
    steps: Steps = INLINE,
    report: DeliveryReport | None = None,
    batch_size: int = BATCH,
) -> DeliveryReport:
    """Send everything due now, a ledger batch at a time: each channel in its own step,
    side by side, so a slow provider (a long code's text a second) never holds back the
    others; then rows of a channel nobody serves, and Twilio news that came early."""
    report = report if report is not None else DeliveryReport()
    ctx.clock.follow(now)
    steps.call(confirm_followers, ctx, now)
    running = [
        steps.submit(deliver_channel, ctx, now, steps, (channel,), batch_size)
        for channel in ctx.registry.senders
    ]
    for future in running:
        report.merge(future.result())
    report.merge(steps.call(deliver_channel, ctx, now, steps, None, batch_size))
    # Twilio's news about a text can arrive before the text's SID was written down.
    writing(ctx.engine, lambda conn: replay_status_callbacks(conn, now), "status callbacks")
    # The channels' steps report as they go, side by side; this is the settled picture.
    steps.delivered(ctx, report.incidents)
    return report


def note_waiting(ctx: Context, report: DeliveryReport, now: datetime) -> DeliveryReport:
    """Write into `report` what the ledger still holds back after it, and why: for the
    commands that tell a person (a grouped read of the whole queue, which the flows'
    delivery runs, every few seconds in a big outage, do not pay for nobody to read)."""
    with ctx.engine.connect() as conn:
        report.waiting = waiting(conn, now)
    return report


def follow_up(ctx: Context, now: datetime, steps: Steps = INLINE) -> FollowedUp:
    """One pass of the follow-up cadence (promised updates, warnings before estimates,
    planned work, at-risk incidents), then send and publish what it changed."""
    done = steps.call(keep_promises, ctx, now, steps)
    followed = FollowedUp(done.reminded, done.warned, done.maintenance, done.at_risk)
    if done.changed or done.calls:  # an at-risk customer's call goes now, not next beat
        followed.dispatch = deliver(ctx, now, steps)
    if done.changed:
        steps.call(publish_site, ctx, now)
    return followed


def queue(ctx: Context, now: datetime) -> int:
    """After a change made by hand (an ops command, a reply): write the ledger rows of
    every update not yet queued; how many."""

    def work(conn: Connection) -> list[Queued]:
        return queue_deliveries(conn, now, ctx.registry.partners)

    return sum(q.rows for q in writing(ctx.engine, work, "queue"))


def deliver_and_publish(ctx: Context, now: datetime, steps: Steps = INLINE) -> DeliveryReport:
    """After a change made by hand, once queued: send what is due, publish the site."""
    report = deliver(ctx, now, steps)
    steps.call(publish_site, ctx, now)
    return report


# The steps: each takes a whole batch and owns its transaction.


def detect_faults(
    ctx: Context, now: datetime, signals: Sequence[Signal] | FeedBatch | None = None
) -> Sensed:
    """Read every feed (or take `signals`, or a drill's batch with its rejects) and turn
    them into faults, in one transaction.

    The feeds over HTTP are fetched first, outside it: the store's lock is never held
    while Alertmanager or a feed URL takes its time. What the store keeps the place of
    (the webhook inbox, the file feed's cursor) is read and acknowledged inside it."""
    tree = ctx.index().tree
    fetched = fetch_remote(ctx.feeds, ctx.http) if signals is None else None

    def work(conn: Connection) -> tuple[FeedRead, Detection]:
        serialize(conn, "detection")  # two cycles at once take turns, never double-read
        if isinstance(signals, FeedBatch):
            read = FeedRead(batch=FeedBatch(list(signals.signals), list(signals.rejects)))
        elif signals is not None:
            read = FeedRead(batch=FeedBatch(signals=list(signals)))
        else:
            assert fetched is not None
            read = read_all(conn, ctx.feeds, fetched, alertmanager_down(conn), now)
        detection = run_detection(conn, tree, read.batch.signals, now, ctx.thresholds)
        read.batch.rejects.extend(detection.rejects)
        acknowledge(conn, read, now)
        return read, detection

    read, detection = writing(ctx.engine, work, "detection")
    sensed = Sensed(detection, len(read.batch.signals), len(read.batch.rejects), read.errors)
    log = logger()
    for error in read.errors:
        log.warning(error)
    log.info(
        "signals=%d rejects=%d faults=%d pending=%d",
        sensed.signals, sensed.rejects, len(detection.faults), detection.pending,
    )  # fmt: skip
    return sensed


def update_incidents(
    ctx: Context,
    detection: Detection,
    now: datetime,
    steps: Steps = INLINE,
    head: int | None = None,
) -> tuple[Changes, int]:
    """Open, expand and resolve incidents, and write the ledger rows for their updates
    (with `head`, only each update's first customers: `queue_rest` adds the others)."""
    index = ctx.index()

    def work(conn: Connection) -> tuple[Changes, list[Queued]]:
        changes = reconcile(conn, index, detection.faults, detection.down, now, ctx.policy)
        # Customers' reports open an incident where monitoring sees nothing.
        changes.opened += open_reported(conn, index, now, ctx.policy)
        return changes, queue_deliveries(conn, now, ctx.registry.partners, head)

    changes, queued = writing(ctx.engine, work, "incidents")
    steps.updated(ctx, changes.opened + changes.expanded + changes.resolved + changes.merged)
    return changes, _queued(queued)


def queue_rest(ctx: Context, now: datetime) -> int:
    """Queue the customers `update_incidents` left for later, while the first are sent: a
    few thousand per transaction, so that the dispatchers' claims get in between (SQLite
    has one writer at a time). It lets the channels claim the first customers before its
    first chunk: the first texts do not wait behind it."""
    _until_claimed(ctx, now)
    total = 0

    def queue_chunk(conn: Connection) -> list[Queued]:
        return queue_deliveries(conn, now, ctx.registry.partners, REST_CHUNK)

    while True:
        queued = writing(ctx.engine, queue_chunk, "queueing")
        total += _queued(queued)
        checkpoint(ctx.engine)  # the log this chunk wrote, outside everyone's turn
        if all(q.complete for q in queued):
            return total


def _until_claimed(ctx: Context, now: datetime, within: float = 1.0) -> None:
    """Wait until no queued message is due and unclaimed, for `within` seconds at most:
    woken the moment this process's dispatchers have a claim in; one in another process
    (a Dask worker's) is seen within a look's time."""
    d = deliveries.c
    due = select(d.id).where(d.status == "queued", d.next_attempt_at <= now).limit(1)
    deadline = ctx.clock.monotonic() + within
    while True:
        ctx.claimed.clear()
        with ctx.engine.connect() as conn:
            if conn.execute(due).first() is None:
                return
        left = deadline - ctx.clock.monotonic()
        if left <= 0:
            return
        ctx.clock.wait(ctx.claimed, min(left, LOOK_S))


def confirm_followers(ctx: Context, now: datetime) -> int:
    """Send the confirmations follows asked for on the site are owed; how many went. In
    sleep hours only the emails: a number typed into a form may be someone else's, and a
    text must not wake them (it goes in the morning)."""
    s = ctx.settings
    asleep = ctx.night.holds(now, s.time_zone, routine=False)
    quiet = [name for name, channel in CHANNELS.items() if channel.long_form] if asleep else None
    return send_confirmations(
        ctx.engine, ctx.registry.senders, s.operator_name, s.public_url, ctx.signing_key, now,
        quiet,
    )  # fmt: skip


def deliver_channel(
    ctx: Context,
    now: datetime,
    steps: Steps = INLINE,
    channels: tuple[str, ...] | None = None,
    batch_size: int = BATCH,
) -> DeliveryReport:
    """Send every due delivery of these channels (None: any), `batch_size` at a time;
    claims are stamped on the hour of the context's clock at `now`."""
    report = DeliveryReport()
    clock = ctx.clock.since(now)
    # The first claim is small, so each channel's first message goes within moments (a
    # claim of 1,000 took 0.4 s, and the channels claim in turn); then full batches.
    limit = min(FIRST_CLAIM, batch_size)
    while True:
        batch = deliver_batch(
            ctx.engine, ctx.registry.senders, ctx.brand, now, limit,
            ctx.rules, ctx.registry.journal, channels, clock, ctx.claimed.set,
        )  # fmt: skip
        limit = batch_size
        report.batches += 1
        report.add(batch)
        steps.batch_done(ctx, batch)
        if batch.claimed:  # a batch with failures is a warning: `serve`'s console shows it
            logger().log(
                logging.WARNING if batch.retrying or batch.failed else logging.INFO,
                "batch: claimed=%d sent=%d retrying=%d failed=%d reconciled=%d",
                batch.claimed, batch.sent, batch.retrying, batch.failed, batch.reconciled,
            )  # fmt: skip
        if not batch.handled:
            return report


def keep_promises(ctx: Context, now: datetime, steps: Steps = INLINE) -> FollowUps:
    """Add the follow-up updates that are due and queue their messages, in one transaction."""

    def work(conn: Connection) -> tuple[FollowUps, list[Queued]]:
        done = conversation.follow_up(conn, ctx.index(), now, ctx.policy)
        return done, queue_deliveries(conn, now, ctx.registry.partners)

    done, queued = writing(ctx.engine, work, "follow-up")
    steps.updated(ctx, done.changed)
    _queued(queued)
    return done


def _queued(queued: list[Queued]) -> int:
    """Log what was queued, update by update; how many rows in all."""
    log = logger()
    for q in queued:
        log.info("incident=%d update=%d deliveries queued=%d", q.incident_id, q.seq, q.rows)
    return sum(q.rows for q in queued)


def site_data(ctx: Context, now: datetime) -> SiteData:
    """Everything the site shows now, read from the store in one go."""
    with ctx.engine.connect() as conn:
        components = load_components(ctx.settings.components_file, conn)
        # The slowest paced channel customers are told on: how long a fan-out will take.
        rates = [
            sender.limiter.rate
            for name, sender in ctx.registry.senders.items()
            if sender.limiter is not None and CHANNELS[name].contact is not None
        ]
        return collect(conn, ctx.index(), ctx.page, components, now, min(rates, default=None))


def publish_site(ctx: Context, now: datetime) -> str:
    """Gather what the site shows, render every file, and publish them atomically."""
    data = site_data(ctx, now)
    files = render(data)
    site = publish(ctx.settings.site_dir, files, now)
    logger().info("site published: %d files, %d active incidents", len(files), len(data.active))
    return str(site)


def answer_new_mentions(ctx: Context, now: datetime) -> int:
    """Answer every social mention since the last one answered."""
    s = ctx.settings
    if not s.mastodon_url or s.mastodon_token is None:
        logger().info("no FOREWARN_MASTODON_URL/TOKEN: no mentions to read")
        return 0
    account = SocialSender(s.mastodon_url, s.mastodon_token.get_secret_value(), timeout=15)
    try:
        answered = answer_mentions(ctx.engine, account, ctx.brand, now, s.privacy_floor)
    finally:
        account.close()
    logger().info("mentions answered=%d", answered)
    return answered


__all__ = [
    "INLINE",
    "CycleReport",
    "DeliveryReport",
    "FollowedUp",
    "Pending",
    "Sensed",
    "Steps",
    "cycle",
    "deliver",
    "follow_up",
    "logger",
]
