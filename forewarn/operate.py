"""Plain helpers the ops commands and drills share: read the clock ops write, find what
is down now, and send and publish after a change (without starting a Prefect server)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Connection

from forewarn.detection import states as state_store
from forewarn.detection.damping import effective_down
from forewarn.durations import parse_duration
from forewarn.flows.context import Context
from forewarn.flows.publication import rebuild_site
from forewarn.notifiers.dispatch import BatchReport, dispatch_batch


def parse_time(text: str, now: datetime, zone: str) -> datetime:
    """'+3h' (from now), or an ISO-8601 time; without an offset it is the operator's local
    time (FOREWARN_TIME_ZONE)."""
    text = text.strip()
    if text.startswith("+"):
        return now + parse_duration(text[1:])
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a time: {text!r} (write +3h or 2026-11-24T14:00)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment


def down_now(conn: Connection) -> set[str]:
    """Elements that count as down now (confirmed by detection)."""
    return set(effective_down(state_store.load(conn)))


def deliver_and_publish(
    ctx: Context, now: datetime, on_batch: Callable[[BatchReport], None] | None = None
) -> BatchReport:
    """Send everything due now, a ledger batch at a time (`on_batch` hears the running
    totals), then rebuild the public site."""
    report = BatchReport()
    while True:
        batch = dispatch_batch(
            ctx.engine, ctx.registry.notifiers, ctx.brand, now, ctx.settings.dispatch_batch,
            ctx.rules, ctx.registry.journal,
        )  # fmt: skip
        report.add(batch)
        if on_batch is not None:
            on_batch(report)
        if not batch.handled:
            break
    rebuild_site(ctx, now)
    return report
