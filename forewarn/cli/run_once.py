"""`forewarn run-once`: one detection cycle and one follow-up pass, as Prefect flows when a
Prefect server is configured, else in this process."""

from __future__ import annotations

import logging
import os
from datetime import datetime
from typing import Annotated

import typer

from forewarn.cli.health import nothing_to_watch
from forewarn.cli.ops import build_context
from forewarn.cli.serve import site_is_ours
from forewarn.cli.terminal import console, fail
from forewarn.config import Settings


def run_once(
    at: Annotated[
        str | None,
        typer.Option(hidden=True, help="Run as if it were this ISO-8601 moment (rehearsals)."),
    ] = None,
) -> None:
    """One full cycle: detect, update incidents, send, publish; then the follow-ups.

    Reads the feeds, detects, maps, updates incidents, dispatches what is due and
    publishes the site; then keeps promised updates and warns before estimates pass.
    With PREFECT_API_URL set the two run as Prefect flows (in its UI); without it they
    run in this process, as a drill does, with no Prefect server to start. For
    continuous operation run `forewarn serve` instead.
    """
    from forewarn import pipeline
    from forewarn.cli.report import print_cycle, print_delivery
    from forewarn.reports import FollowedUp
    from forewarn.store import now_utc

    moment = None
    if at is not None:
        try:
            moment = datetime.fromisoformat(at)
        except ValueError:
            fail(f"--at: not an ISO-8601 time: {at!r}")
        if moment.tzinfo is None:
            fail(f"--at: give the offset too, e.g. {at}+00:00")
    settings = Settings()
    site_is_ours(settings)
    ctx = build_context(settings)
    try:
        for gap in nothing_to_watch(ctx):
            console.print(f"[yellow]warning:[/yellow] {gap}", highlight=False)
        if os.environ.get("PREFECT_API_URL"):
            from forewarn.flows import detection_cycle, follow_up_cycle, given_context

            with given_context(ctx):
                cycled = detection_cycle(now=moment)
                done = follow_up_cycle(now=moment)
        else:
            # Prefect's temporary server would cost 10-15 s to start, for runs nobody
            # could watch once it stops: the same composition runs without it. What the
            # pipeline warns of (a feed that failed, a batch's failures) is in the report
            # printed below: its log would say each twice.
            quiet = logging.getLogger("forewarn.pipeline")
            level = quiet.level
            quiet.setLevel(logging.ERROR)
            try:
                cycled = pipeline.cycle(ctx, moment or now_utc())
                done = pipeline.follow_up(ctx, moment or now_utc())
            finally:
                quiet.setLevel(level)
        pipeline.note_waiting(ctx, cycled.dispatch, cycled.now)
        if isinstance(done, FollowedUp) and done.dispatch is not None:
            pipeline.note_waiting(ctx, done.dispatch, cycled.now)
    finally:
        ctx.close()
    zone = ctx.settings.time_zone
    print_cycle(console, cycled, zone)
    if done.changed:
        console.print(
            f"follow-ups: {len(done.reminded)} promised updates, {len(done.warned)} estimate "
            f"warnings, {len(done.maintenance)} planned-work notices, "
            f"{len(done.at_risk)} at-risk changes"
        )
        if isinstance(done, FollowedUp) and done.dispatch is not None:
            print_delivery(console, 0, done.dispatch, "  ", zone)
    if cycled.feed_errors:
        # A feed that could not be read is a failed run, for cron and for scripts.
        raise typer.Exit(1)
