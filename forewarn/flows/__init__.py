"""Prefect flows: wiring only. Each runs one of the pipeline's compositions with the
steps as Prefect tasks; the root folder `flows/` holds the entrypoints that
`prefect.yaml` names, which are these very objects."""

from __future__ import annotations

from datetime import datetime

from prefect import flow

from forewarn import pipeline
from forewarn.flows.steps import PREFECT, flow_context, given_context, task_runner
from forewarn.incidents.conversation import FollowUps
from forewarn.reports import CycleReport, DeliveryReport
from forewarn.store import now_utc


@flow(name="detection-cycle", log_prints=False, task_runner=task_runner())
def detection_cycle(now: datetime | None = None) -> CycleReport:
    """One full cycle. `now` is for drills and the demo; by default the real time."""
    with flow_context() as ctx:
        return pipeline.cycle(ctx, now or now_utc(), steps=PREFECT)


@flow(name="dispatch", log_prints=False, task_runner=task_runner())
def dispatch(now: datetime | None = None) -> DeliveryReport:
    """Send everything due now: new messages, retries whose pause is over, the morning's."""
    with flow_context() as ctx:
        return pipeline.deliver(ctx, now or now_utc(), PREFECT)


@flow(name="follow-up", log_prints=False, task_runner=task_runner())
def follow_up_cycle(now: datetime | None = None) -> FollowUps:
    """One pass of the follow-up cadence, then send what it queued."""
    with flow_context() as ctx:
        return pipeline.follow_up(ctx, now or now_utc(), PREFECT)


@flow(name="publication", log_prints=False)
def publication(now: datetime | None = None) -> str:
    """Rebuild the public site now."""
    with flow_context() as ctx:
        return PREFECT.call(pipeline.publish_site, ctx, now or now_utc())


@flow(name="mentions", log_prints=False)
def mentions(now: datetime | None = None) -> int:
    """Read and answer new social mentions."""
    with flow_context() as ctx:
        return PREFECT.call(pipeline.answer_new_mentions, ctx, now or now_utc())


# The five flows by deployment name, as prefect.yaml and `forewarn serve` run them.
FLOWS = {
    "detection-cycle": detection_cycle,
    "dispatch": dispatch,
    "follow-up": follow_up_cycle,
    "publication": publication,
    "mentions": mentions,
}

__all__ = [
    "FLOWS",
    "detection_cycle",
    "dispatch",
    "follow_up_cycle",
    "given_context",
    "mentions",
    "publication",
]
