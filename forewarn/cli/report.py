"""Print what a cycle or a delivery run did, for people at the command line.

Every command that sends prints its messages through `print_delivery`: what was sent,
what failed for good and why, and what waits and why (held for the customers' night or
their day's ceiling of routine messages, until when; a retry after which failure and when
next)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.markup import escape

from forewarn.cli.terminal import shown

if TYPE_CHECKING:
    from forewarn.incidents.ledger.waiting import Waiting
    from forewarn.reports import CycleReport, DeliveryReport


def delivery_lines(queued: int, report: DeliveryReport, zone: str = "UTC") -> list[tuple[str, str]]:
    """What a delivery run did and what the ledger still holds back, as (style, line)
    pairs, times in the operator's `zone`; nothing when nothing was queued, sent, failed
    or is waiting."""
    if not (queued or report.sent or report.failed or report.cancelled or report.waiting):
        return []
    lines = [
        (
            "",
            f"messages queued {queued:,}, sent {report.sent:,}, failed for good "
            f"{report.failed:,}, cancelled {report.cancelled:,}, waiting {report.waiting_count:,}",
        )
    ]
    for (channel, reason), n in sorted(report.failures.items(), key=lambda f: -f[1]):
        lines.append(("red", f"  {channel}: {n:,} failed for good: {reason}"))
    for wait in report.waiting:
        lines.append(("yellow", f"  {wait.channel}: {wait.count:,} {_why(wait, zone)}"))
    return lines


def _why(wait: Waiting, zone: str) -> str:
    if wait.kind == "held":
        return f"held (night or daily ceiling) until {_local(wait.next_at, wait.zone, zone)}"
    if wait.kind == "retrying":
        others = f" ({wait.others:,} for other reasons)" if wait.others else ""
        return f"retrying after: {wait.reason}{others}; next try {shown(wait.next_at, zone)}"
    return "due, not sent yet"


def _local(moment: datetime, theirs: str | None, ours: str) -> str:
    """The customers' own clock, and the operator's beside it when it differs:
    '06:00 Europe/Madrid (2026-11-24 05:00 GMT)'."""
    if not theirs or theirs == ours:
        return shown(moment, ours)
    try:
        local = moment.astimezone(ZoneInfo(theirs))
    except (KeyError, ValueError):  # an unknown zone counts as UTC, as quiet hours do
        return shown(moment, ours)
    return f"{local:%H:%M} {theirs} ({shown(moment, ours)})"


def print_delivery(
    console: Console, queued: int, report: DeliveryReport, indent: str = "", zone: str = "UTC"
) -> None:
    """Print `delivery_lines`, each in its colour, the text as it is (no markup)."""
    for style, line in delivery_lines(queued, report, zone):
        # Not wrapped: a provider's reason is pasted whole into a ticket or a search.
        console.print(
            indent + line, style=style or None, markup=False, highlight=False, soft_wrap=True
        )


def print_cycle(console: Console, report: CycleReport, zone: str = "UTC") -> None:
    """A few lines: signals, faults, incident changes, messages, the site."""
    d = report.detection
    rejected = " (`forewarn quarantine` lists them)" if report.rejects else ""
    until = f", the first until {shown(d.settles_at, zone)}" if d.settles_at else ""
    console.print(
        f"  signals read {report.signals}, rejected {report.rejects}{rejected}; "
        f"elements waiting out damping {d.pending}{until}; faults {len(d.faults)}"
    )
    for error in report.feed_errors:
        console.print(f"  [yellow]feed problem:[/yellow] {error}")
    for fault in d.faults:
        console.print(
            f"  fault at [bold]{fault.root}[/bold] ({fault.reason}, {fault.scope}, "
            f"confidence {fault.confidence:.0%}, {len(fault.down_elements)} elements seen down)"
        )
    c = report.changes
    for label, ids in (
        ("opened", c.opened),
        ("expanded", c.expanded),
        ("resolved", c.resolved),
        ("merged", c.merged),
    ):
        if ids:
            console.print(f"  incidents {label}: {', '.join(map(str, ids))}")
    print_delivery(console, report.queued, report.dispatch, "  ", zone)
    for sample in report.dispatch.samples:
        text = sample.body if sample.subject is None else f"(subject) {sample.subject}"
        console.print(
            f"    [dim]{sample.channel} to {sample.to}:[/dim] {escape(text)}", highlight=False
        )
    if report.site:
        console.print(f"  site published to {report.site}")
