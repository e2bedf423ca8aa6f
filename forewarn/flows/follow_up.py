"""The follow-up cadence: promised updates kept, warnings before an estimate passes,
planned-work notices, at-risk incidents; then the messages they make are sent."""

from __future__ import annotations

from datetime import datetime

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from forewarn.flows.context import Context, context_for, task_runner
from forewarn.flows.dispatch import DispatchReport, dispatch_all
from forewarn.flows.observe import update_tables
from forewarn.flows.publication import publish_site
from forewarn.incidents import queue_deliveries
from forewarn.incidents.conversation import FollowUps, follow_up
from forewarn.store import now_utc, serialize


@task(cache_policy=NO_CACHE)
def keep_promises(ctx: Context, now: datetime) -> FollowUps:
    """Add the updates that are due and queue their messages, in one transaction."""
    with ctx.engine.begin() as conn:
        serialize(conn, "incidents")  # the same lock as the detection cycle's updates
        done = follow_up(conn, ctx.index(), now, ctx.policy)
        queued = queue_deliveries(conn, now, ctx.registry.partners)
    update_tables(ctx, done.changed)
    logger = get_run_logger()
    for q in queued:
        logger.info("incident=%d update=%d deliveries queued=%d", q.incident_id, q.seq, q.rows)
    return done


@flow(name="follow-up", log_prints=False, task_runner=task_runner())
def follow_up_cycle(now: datetime | None = None) -> FollowUps:
    """One pass of the follow-up cadence, then send what it queued."""
    ctx = context_for()
    moment = now or now_utc()
    done = keep_promises(ctx, moment)
    if done.changed:
        dispatch_all(ctx, moment, DispatchReport())
        publish_site(ctx, moment)
    return done
