"""`forewarn incident`: what ops do by hand, through the same updates (and so the same
messages and page) as a detected fault; and what the commands share: their context (which
refuses a half-configured channel) and the times ops type."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from forewarn.cli.places import (
    AreaOption,
    ElementOption,
    NearOption,
    RadiusOption,
    check_place,
    find_target,
)
from forewarn.cli.terminal import console, fail, progress, shown
from forewarn.config import Settings
from forewarn.store import now_utc, writing

if TYPE_CHECKING:
    from forewarn.context import Context

incident_app = typer.Typer(
    help="What ops do by hand: open, list, show, update, resolve, heads-up.",
    no_args_is_help=True,
)


def build_context(settings: Settings, sending: bool = True) -> Context:
    """The command's context; a channel given only part of its settings stops a command
    that sends (status 2), naming what is set and what is missing."""
    from forewarn.context import ChannelSettingsError, Context

    try:
        return Context.build(settings, sending)
    except ChannelSettingsError as err:
        for line in err.lines[:-1]:
            console.print(f"[red]error:[/red] {escape(line)}")
        fail(err.lines[-1])


def ops_context(sending: bool = True) -> tuple[Settings, Context]:
    """The settings and the context of a command ops type by hand (see build_context)."""
    settings = Settings()
    return settings, build_context(settings, sending)


def parse_when(text: str | None, settings: Settings, now: datetime) -> datetime | None:
    """A time ops typed (+3h, 2026-11-24T14:00) in the operator's zone, or None for none;
    one that does not parse stops the command (status 2)."""
    from forewarn.durations import parse_time

    if text is None:
        return None
    try:
        return parse_time(text, now, settings.time_zone)
    except ValueError as err:
        fail(str(err))


def _after_change(ctx: Context, now: datetime) -> None:
    """Queue the messages of what just changed, send them, and rebuild the page."""
    from forewarn import pipeline
    from forewarn.cli.report import print_delivery

    messages = pipeline.queue(ctx, now)
    with progress() as bar:
        task = bar.add_task("sending", total=messages)
        steps = pipeline.Steps(on_batch=lambda done: bar.update(task, completed=done.handled))
        report = pipeline.deliver_and_publish(ctx, now, steps)
    waiting = pipeline.note_waiting(ctx, report, now)
    print_delivery(console, messages, waiting, zone=ctx.settings.time_zone)
    console.print("page rebuilt")


@incident_app.command("open")
def incident_open(
    title: Annotated[str, typer.Option(help="What customers and the page are told.")],
    element: ElementOption = None,
    area: AreaOption = None,
    near: NearOption = None,
    radius: RadiusOption = None,
    since: Annotated[str | None, typer.Option(help="When it started (default now).")] = None,
) -> None:
    """Open an incident the monitoring has not seen; customers hear at once."""
    from forewarn.incidents.ops import OpsError, open_by_ops

    metres = check_place(element, area, near, radius)
    settings, ctx = ops_context()
    now = now_utc()
    try:
        target = find_target(ctx, element, area, near, metres)
        started = parse_when(since, settings, now)
        incident_id = writing(
            ctx.engine,
            lambda conn: open_by_ops(conn, ctx.index(), target, title, now, ctx.policy, started),
            "incident open",
        )
    except OpsError as err:
        fail(str(err))
    console.print(f"incident {incident_id} opened: {len(target.rows):,} premises")
    _after_change(ctx, now)


@incident_app.command("list")
def incident_list(
    all_: Annotated[bool, typer.Option("--all", help="Resolved ones too (latest 50).")] = False,
) -> None:
    """Open incidents (and planned work), newest first."""
    from sqlalchemy import select

    from forewarn.store import incidents

    _, ctx = ops_context(sending=False)
    zone = ctx.settings.time_zone
    query = select(incidents).order_by(incidents.c.id.desc()).limit(50)
    if not all_:
        query = query.where(incidents.c.status != "resolved")
    with ctx.engine.connect() as conn:
        rows = conn.execute(query).all()
    table = Table("id", "title", "source", "status", "premises", "estimate", "next update")
    for row in rows:
        table.add_row(
            str(row.id),
            escape(row.title),
            row.source,
            row.status,
            f"{row.premises_count:,}",
            shown(row.etr, zone),
            shown(row.next_update_at, zone),
        )
    console.print(table if rows else "No incidents.")


@incident_app.command("show")
def incident_show(incident_id: Annotated[int, typer.Argument(help="Incident id.")]) -> None:
    """One incident: its updates, estimates and messages."""
    from sqlalchemy import select

    from forewarn.incidents.ledger import failure_reasons, progress
    from forewarn.incidents.ops import OpsError, get
    from forewarn.incidents.reports import reports_behind
    from forewarn.store import elements, etr_history, incident_updates

    _, ctx = ops_context(sending=False)
    zone = ctx.settings.time_zone
    with ctx.engine.connect() as conn:
        try:
            row = get(conn, incident_id)
        except OpsError as err:
            fail(str(err))
        # Ops see the equipment detection blamed (the cabinet, not the OLT above it).
        root = conn.execute(
            select(elements.c.name, elements.c.kind).where(
                elements.c.element_id == row.root_element
            )
        ).one_or_none()
        updates = conn.execute(
            select(incident_updates)
            .where(incident_updates.c.incident_id == incident_id)
            .order_by(incident_updates.c.seq)
        ).all()
        estimates = conn.execute(
            select(etr_history)
            .where(etr_history.c.incident_id == incident_id)
            .order_by(etr_history.c.id)
        ).all()
        delivery = progress(conn, [incident_id])
        failures = failure_reasons(conn, [incident_id])
        reported = reports_behind(conn, row, ctx.policy.reports_window)
    console.print(f"[bold]{escape(row.title)}[/bold] ({row.source}, {row.status})")
    console.print(
        f"area {escape(row.area_name or '-')}; {row.premises_count:,} premises, "
        f"{row.customers_count:,} customers; since {shown(row.started_at, zone)}; "
        f"estimate {shown(row.etr, zone)}; next update {shown(row.next_update_at, zone)}"
    )
    if row.root_element:
        named = f"{root.name} ({root.kind}, {row.root_element})" if root else row.root_element
        console.print(f"root: {escape(named)}")
    if row.source == "reports":
        said = []
        for times, who in (
            (reported.customers, "OUT replies from its customers"),
            (reported.others, "reports from the site or other numbers"),
        ):
            if times:
                said.append(
                    f"{len(times)} {who}, from {shown(times[0], zone)} to {shown(times[-1], zone)}"
                )
        console.print("found by reports" + (": " + "; ".join(said) if said else ""))
    elif row.source == "report":
        console.print("opened by someone's report of the line (its customers are not told)")
    if row.cause:
        console.print(f"cause: {escape(row.cause)}")
    table = Table("#", "at", "event", "status", "told", "next update", "text")
    for u in updates:
        told = "yes" if u.notify else "-"
        table.add_row(
            str(u.seq),
            shown(u.created_at, zone),
            u.event,
            u.status,
            told,
            shown(u.next_update_at, zone),
            escape(u.body),
        )
    console.print(table)
    table = Table("set at", "estimate", "announced", "why")
    for e in estimates:
        table.add_row(
            shown(e.set_at, zone),
            shown(e.etr, zone),
            "yes" if e.announced else "no",
            escape(e.reason),
        )
    console.print(table)
    for p in delivery:
        console.print(p.summary(), markup=False, highlight=False)
    for reason, n in failures:
        console.print(f"  failed {n:,}: {reason}", markup=False, highlight=False)


@incident_app.command("update")
def incident_update(
    incident_id: Annotated[int, typer.Argument(help="Incident id.")],
    status: Annotated[
        str | None, typer.Option(help="investigating, identified or monitoring.")
    ] = None,
    cause: Annotated[str | None, typer.Option(help="What went wrong (after: a summary).")] = None,
    etr: Annotated[
        str | None, typer.Option(help="New estimate: +3h, 2026-11-24T14:00, or 'none'.")
    ] = None,
    note: Annotated[str | None, typer.Option(help="A note for customers and the page.")] = None,
) -> None:
    """Change status, cause or estimate, or add a note; customers hear what matters."""
    from forewarn.incidents.ops import OpsError, update_by_ops
    from forewarn.incidents.updates import CLEAR, KEEP, Change, Set

    if status is None and cause is None and etr is None and note is None:
        fail("nothing to change: give --status, --cause, --etr or --note")
    settings, ctx = ops_context()
    now = now_utc()
    estimate: Change[datetime] = KEEP
    if etr is not None and etr.strip().lower() == "none":
        estimate = CLEAR
    elif (when := parse_when(etr, settings, now)) is not None:
        estimate = Set(when)
    try:
        outcome = writing(
            ctx.engine,
            lambda conn: update_by_ops(
                conn, incident_id, now, ctx.policy, status, cause, estimate=estimate, note=note
            ),
            "incident update",
        )
    except OpsError as err:
        fail(str(err))
    for said in outcome.said:
        console.print(f"announced: {escape(said)}")
    for held in outcome.held:
        console.print(f"[yellow]{escape(held)}[/yellow]")
    _after_change(ctx, now)


@incident_app.command("resolve")
def incident_resolve(incident_id: Annotated[int, typer.Argument(help="Incident id.")]) -> None:
    """Fixed: "restored" to premises that are back; lines still down stay in as cases."""
    from forewarn.detection.run import down_now
    from forewarn.incidents.ops import OpsError, resolve_by_ops

    _, ctx = ops_context()
    now = now_utc()
    try:
        writing(
            ctx.engine,
            lambda conn: resolve_by_ops(
                conn, ctx.index(), incident_id, down_now(conn), now, ctx.policy
            ),
            "incident resolve",
        )
    except OpsError as err:
        fail(str(err))
    console.print(f"incident {incident_id} resolved")
    _after_change(ctx, now)


@incident_app.command("heads-up")
def incident_heads_up(
    incident_id: Annotated[int, typer.Argument(help="An at-risk incident's id.")],
    note: Annotated[str | None, typer.Option(help="What customers should know.")] = None,
) -> None:
    """Warn the customers of an at-risk incident that their service may drop."""
    from forewarn.incidents.ops import OpsError, heads_up

    _, ctx = ops_context()
    now = now_utc()
    try:
        writing(
            ctx.engine, lambda conn: heads_up(conn, incident_id, note, now, ctx.policy), "heads-up"
        )
    except OpsError as err:
        fail(str(err))
    _after_change(ctx, now)
