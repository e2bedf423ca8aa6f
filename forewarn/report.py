"""Print what a cycle did, for people: the CLI and the demo."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from forewarn.pipeline import CycleReport


def print_cycle(console: Console, report: CycleReport) -> None:
    """A few lines: signals, faults, incident changes, messages, the site."""
    d = report.detection
    console.print(
        f"  signals read {report.signals}, rejected {report.rejects}; "
        f"elements waiting out damping {d.pending}; faults {len(d.faults)}"
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
        ("opened", c.opened), ("expanded", c.expanded), ("resolved", c.resolved),
        ("merged", c.merged),
    ):  # fmt: skip
        if ids:
            console.print(f"  incidents {label}: {', '.join(map(str, ids))}")
    if report.queued or report.dispatch.sent or report.dispatch.failed:
        console.print(
            f"  messages queued {report.queued:,}, handed over {report.dispatch.sent:,}, "
            f"retrying {report.dispatch.retrying:,}, failed {report.dispatch.failed:,}"
        )
    for sample in report.dispatch.samples:
        text = sample.body if sample.subject is None else f"(subject) {sample.subject}"
        console.print(
            f"    [dim]{sample.channel} to {sample.to}:[/dim] {escape(text)}", highlight=False
        )
    if report.site:
        console.print(f"  site published to {report.site}")
