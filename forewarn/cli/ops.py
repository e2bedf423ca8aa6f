"""`forewarn incident`, `forewarn maintenance` and `forewarn customer`: what ops do by
hand, through the same updates (and so the same messages and page) as a detected fault."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from forewarn.cli.terminal import console, fail, progress, utc
from forewarn.config import Settings
from forewarn.store import now_utc

if TYPE_CHECKING:
    from forewarn.context import Context
    from forewarn.incidents.ops import Target

incident_app = typer.Typer(
    help="What ops do by hand: open, list, show, update, resolve, heads-up.",
    no_args_is_help=True,
)
maintenance_app = typer.Typer(
    help="Planned work, with notices to the affected premises only.", no_args_is_help=True
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


def _ops(sending: bool = True) -> tuple[Settings, Context]:
    settings = Settings()
    return settings, build_context(settings, sending)


def _when(text: str | None, settings: Settings, now: datetime) -> datetime | None:
    from forewarn.durations import parse_time

    if text is None:
        return None
    try:
        return parse_time(text, now, settings.time_zone)
    except ValueError as err:
        fail(str(err))


def _place(element: str | None, area: str | None, near: str | None,
           radius: str | None) -> float | None:  # fmt: skip
    """Check where an incident is before anything is looked up: exactly one of --element,
    --area or --near (with a --radius that has its unit). Returns the radius in metres."""
    given = [x for x in (element, area, near) if x]
    if len(given) != 1:
        fail("give exactly one of --element, --area or --near (with --radius)")
    if not near:
        return None
    if not radius:
        fail("--near needs --radius, e.g. --radius 300m or 2km")
    return _metres(radius)


def _target(ctx: Context, element: str | None, area: str | None, near: str | None,
            metres: float | None) -> Target:  # fmt: skip
    """The premises named by one of --element, --area or --near/--radius (see _place)."""
    from forewarn.incidents.ops import by_area, by_element, by_radius
    from forewarn.network.geocode import GeocodeError, nominatim

    index = ctx.index()
    if element:
        return by_element(index, element)
    if area:
        path = Path(area)
        text = path.read_text(encoding="utf-8") if path.is_file() else area
        return by_area(index, text)
    assert near is not None and metres is not None  # _place checked them
    geocoder = nominatim(ctx.settings.geocoder_url, ctx.settings.geocoder_rate)
    try:
        found = geocoder(near)
    except GeocodeError as err:
        fail(f"--near {near!r}: {err}")
    if found is None:
        fail(f"could not find the address {near!r}")
    return by_radius(index, found[0], found[1], metres)


def _metres(text: str) -> float:
    """'300m' or '2km' in metres; a bare number is refused (metres or kilometres?)."""
    value = text.strip().lower()
    unit = "km" if value.endswith("km") else "m" if value.endswith("m") else None
    try:
        number = float(value.removesuffix(unit)) if unit else None
    except ValueError:
        number = None
    if number is None or not number > 0:
        fail(f"--radius: not a distance: {text!r} (write 300m or 2km)")
    return number * 1000 if unit == "km" else number


def _after_change(ctx: Context, now: datetime) -> None:
    """Queue the messages of what just changed, send them, and rebuild the page."""
    from forewarn import pipeline
    from forewarn.cli.report import print_delivery

    messages = pipeline.queue(ctx, now)
    with progress() as bar:
        task = bar.add_task("sending", total=messages)
        steps = pipeline.Steps(on_batch=lambda done: bar.update(task, completed=done.handled))
        report = pipeline.settle(ctx, now, steps)
    print_delivery(console, messages, pipeline.note_waiting(ctx, report, now))
    console.print("page rebuilt")


# Where an incident or planned work is: exactly one of these (with --radius for --near).
ElementOption = Annotated[str | None, typer.Option(help="A network element.")]
AreaOption = Annotated[
    str | None, typer.Option(help="A GeoJSON Polygon (a file or the JSON itself).")
]
NearOption = Annotated[str | None, typer.Option(help="An address, geocoded.")]
RadiusOption = Annotated[str | None, typer.Option(help="With --near: 300m, 2km...")]


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

    metres = _place(element, area, near, radius)
    settings, ctx = _ops()
    now = now_utc()
    try:
        target = _target(ctx, element, area, near, metres)
        with ctx.engine.begin() as conn:
            started = _when(since, settings, now)
            incident_id = open_by_ops(conn, ctx.index(), target, title, now, ctx.policy, started)
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

    _, ctx = _ops(sending=False)
    query = select(incidents).order_by(incidents.c.id.desc()).limit(50)
    if not all_:
        query = query.where(incidents.c.status != "resolved")
    with ctx.engine.connect() as conn:
        rows = conn.execute(query).all()
    table = Table("id", "title", "source", "status", "premises", "estimate", "next update")
    for row in rows:
        table.add_row(
            str(row.id), escape(row.title), row.source, row.status, f"{row.premises_count:,}",
            utc(row.etr), utc(row.next_update_at),
        )  # fmt: skip
    console.print(table if rows else "No incidents.")


@incident_app.command("show")
def incident_show(incident_id: Annotated[int, typer.Argument(help="Incident id.")]) -> None:
    """One incident: its updates, estimates and messages."""
    from sqlalchemy import select

    from forewarn.incidents.ledger import failure_reasons, progress
    from forewarn.incidents.ops import OpsError, get
    from forewarn.store import elements, etr_history, incident_updates

    _, ctx = _ops(sending=False)
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
    console.print(f"[bold]{escape(row.title)}[/bold] ({row.source}, {row.status})")
    console.print(
        f"area {escape(row.area_name or '-')}; {row.premises_count:,} premises, "
        f"{row.customers_count:,} customers; since {utc(row.started_at)}; "
        f"estimate {utc(row.etr)}; next update {utc(row.next_update_at)}"
    )
    if row.root_element:
        named = f"{root.name} ({root.kind}, {row.root_element})" if root else row.root_element
        console.print(f"root: {escape(named)}")
    if row.cause:
        console.print(f"cause: {escape(row.cause)}")
    table = Table("#", "at", "event", "status", "told", "next update", "text")
    for u in updates:
        told = "yes" if u.notify else "-"
        table.add_row(str(u.seq), utc(u.created_at), u.event, u.status, told,
                      utc(u.next_update_at), escape(u.body))  # fmt: skip
    console.print(table)
    table = Table("set at", "estimate", "announced", "why")
    for e in estimates:
        table.add_row(utc(e.set_at), utc(e.etr), "yes" if e.announced else "no",
                      escape(e.reason))  # fmt: skip
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
    settings, ctx = _ops()
    now = now_utc()
    estimate: Change[datetime] = KEEP
    if etr is not None and etr.strip().lower() == "none":
        estimate = CLEAR
    elif (when := _when(etr, settings, now)) is not None:
        estimate = Set(when)
    try:
        with ctx.engine.begin() as conn:
            outcome = update_by_ops(conn, incident_id, now, ctx.policy, status, cause,
                                    estimate=estimate, note=note)  # fmt: skip
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

    _, ctx = _ops()
    now = now_utc()
    try:
        with ctx.engine.begin() as conn:
            resolve_by_ops(conn, ctx.index(), incident_id, down_now(conn), now, ctx.policy)
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

    _, ctx = _ops()
    now = now_utc()
    try:
        with ctx.engine.begin() as conn:
            heads_up(conn, incident_id, note, now, ctx.policy)
    except OpsError as err:
        fail(str(err))
    _after_change(ctx, now)


@maintenance_app.command("add")
def maintenance_add(
    title: Annotated[str, typer.Option(help="What the work is.")],
    start: Annotated[str, typer.Option(help="When it starts: 2026-11-30T01:00 or +3d.")],
    end: Annotated[str, typer.Option(help="When it ends.")],
    element: ElementOption = None,
    area: AreaOption = None,
    near: NearOption = None,
    radius: RadiusOption = None,
) -> None:
    """Schedule planned work: notices ahead (FOREWARN_MAINTENANCE_NOTICES), at start, at end."""
    from forewarn.incidents.ops import OpsError, add_maintenance

    metres = _place(element, area, near, radius)
    settings, ctx = _ops()
    now = now_utc()
    starts, ends = _when(start, settings, now), _when(end, settings, now)
    assert starts is not None and ends is not None
    try:
        target = _target(ctx, element, area, near, metres)
        with ctx.engine.begin() as conn:
            incident_id = add_maintenance(
                conn, ctx.index(), target, title, starts, ends, now, ctx.policy
            )
    except OpsError as err:
        fail(str(err))
    console.print(
        f"planned work {incident_id}: {len(target.rows):,} premises, "
        f"{utc(starts)} to {utc(ends)}; notices "
        + ", ".join(f"{n} ahead" for n in ctx.policy.notices)
        + ", at start and at end"
    )


def customer(
    lookup: Annotated[str, typer.Argument(help="Id, phone, email, social handle or address.")],
    limit: Annotated[int, typer.Option(help="How many history lines to show.")] = 50,
) -> None:
    """One customer's incidents and every message out and reply in, newest first."""
    from forewarn.incidents.history import find_customers, history, incidents_of

    settings, ctx = _ops(sending=False)
    with ctx.engine.connect() as conn:
        found = find_customers(conn, lookup, settings.phone_region)
        if not found:
            fail(f"no customer matches {lookup!r}")
        if len(found) > 1:
            table = Table("customer", "address", "phone", "email", "social")
            for c in found:
                table.add_row(escape(c.customer_id), escape(c.address), escape(c.phone or ""),
                              escape(c.email or ""), escape(c.social or ""))  # fmt: skip
            console.print(table)
            console.print(f"{len(found)} customers match; look one up by id")
            return
        who = found[0]
        cases = incidents_of(conn, who.premise_id)
        lines = history(conn, who.customer_id, limit)
    console.print(
        f"[bold]{escape(who.customer_id)}[/bold], {escape(who.address)}; channels "
        f"{escape(who.channels)}{' (opted out)' if who.opted_out else ''}"
    )
    table = Table("incident", "title", "status", "this premise", "since", "resolved")
    for i in cases:
        table.add_row(str(i.id), escape(i.title), i.status, i.premise_state,
                      utc(i.started_at), utc(i.resolved_at))  # fmt: skip
    console.print(table if cases else "No incidents.")
    table = Table("when", "", "channel", "incident", "status", "text")
    for e in lines:
        text = e.text if e.answer is None else f"{e.text}\n-> {e.answer}"
        table.add_row(utc(e.at), "out" if e.direction == "out" else "in", e.channel,
                      str(e.incident_id or ""), escape(e.status), escape(text))  # fmt: skip
    console.print(table if lines else "No messages yet.")
