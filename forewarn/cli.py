"""The `forewarn` command line."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, cast

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from forewarn.config import Settings
from forewarn.store import serialize

if TYPE_CHECKING:
    from forewarn.flows.context import Context
    from forewarn.incidents.ops import Target

app = typer.Typer(
    help=(
        "forewarn tells your customers about a network outage before they have to ask.\n\n"
        "New here? Run `forewarn demo`: a small town, a cabinet losing power, the messages "
        "and the status page, on your machine, in under a minute."
    ),
    no_args_is_help=True,
    add_completion=False,
)
console = Console()


@app.command()
def demo(
    premises: Annotated[int, typer.Option(help="Size of the generated town.")] = 3000,
    workdir: Annotated[
        Path, typer.Option(help="Where the demo keeps its database, CSV files and feed.")
    ] = Path("forewarn-demo"),
) -> None:
    """Run the whole pipeline on a bundled town with a scripted fault; sends nothing."""
    from forewarn.demo import run_demo

    run_demo(console, workdir, premises)


@app.command("import-network")
def import_network_command(
    topology: Annotated[
        Path,
        typer.Argument(
            help="Topology CSV (element_id,parent_id,kind,name,lat,lon).",
            exists=True,
            dir_okay=False,
        ),
    ],
    customers: Annotated[
        Path, typer.Argument(help="Customers CSV (see README).", exists=True, dir_okay=False)
    ],
    region: Annotated[
        str, typer.Option(help="Country for phone numbers written without +.")
    ] = "US",
    show: Annotated[int, typer.Option(help="How many problems to list.")] = 50,
) -> None:
    """Load or update topology and customers; geocode rows without coordinates."""
    from forewarn.network import import_network
    from forewarn.network.csvfile import CsvFormatError
    from forewarn.network.geocode import nominatim
    from forewarn.store import make_engine, now_utc

    settings = Settings()
    engine = make_engine(settings.db_url)
    geocoder = nominatim(settings.geocoder_url, settings.geocoder_rate)
    with customers.open("rb") as handle:
        rows = max(sum(1 for _ in handle) - 1, 0)
    try:
        with _progress() as bar:
            task = bar.add_task("customers", total=rows)
            report = import_network(
                engine, topology, customers, geocoder, now_utc(), region,
                progress=lambda done: bar.update(task, completed=done),
            )  # fmt: skip
    except CsvFormatError as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from None
    console.print(
        f"elements {report.elements:,}, premises {report.premises:,}, "
        f"customers {report.customers:,}, geocoded {report.geocoded:,}"
    )
    if report.problems:
        console.print(
            f"[yellow]{len(report.problems):,} rows skipped or kept with a warning:[/yellow]"
        )
        for problem in report.problems[:show]:
            console.print(f"  {problem}", markup=False, highlight=False)
        if len(report.problems) > show:
            console.print(f"  ... and {len(report.problems) - show:,} more (use --show)")


@app.command("run-once")
def run_once() -> None:
    """One full cycle: read feeds, detect, map, update incidents, dispatch, publish; then
    keep promised updates and warn before estimates pass."""
    from forewarn.flows.detection_cycle import detection_cycle
    from forewarn.flows.follow_up import follow_up_cycle
    from forewarn.report import print_cycle

    print_cycle(console, detection_cycle())
    done = follow_up_cycle()
    if done.changed:
        console.print(
            f"follow-ups: {len(done.reminded)} promised updates, {len(done.warned)} estimate "
            f"warnings, {len(done.maintenance)} planned-work notices, "
            f"{len(done.at_risk)} at-risk changes"
        )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address for the HTTP receiver.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for the HTTP receiver.")] = 8000,
    interval: Annotated[int, typer.Option(help="Seconds between detection cycles.")] = 60,
    publish_every: Annotated[
        int, typer.Option(help="Seconds between scheduled rebuilds of the public site.")
    ] = 300,
    dispatch_every: Annotated[
        int, typer.Option(help="Seconds between dispatch runs (retries, held messages).")
    ] = 30,
    follow_up_every: Annotated[
        int, typer.Option(help="Seconds between follow-up passes (promised updates, ETR watch).")
    ] = 60,
    mentions_every: Annotated[
        int, typer.Option(help="Seconds between reads of social mentions.")
    ] = 120,
    flows: Annotated[
        bool,
        typer.Option(
            help="Also run the flows; --no-flows serves only the receiver, for when Prefect "
            "workers run the deployments of prefect.yaml."
        ),
    ] = True,
) -> None:
    """Run the flows on the schedules of prefect.yaml plus the HTTP receiver (webhooks,
    Twilio's callbacks, unsubscribe links, the site), in one process."""
    import uvicorn
    from prefect import serve as prefect_serve
    from prefect.deployments.runner import RunnerDeployment

    from forewarn.flows.context import context_for
    from forewarn.flows.detection_cycle import detection_cycle
    from forewarn.flows.dispatch import dispatch
    from forewarn.flows.follow_up import follow_up_cycle
    from forewarn.flows.mentions import mentions
    from forewarn.flows.publication import publication
    from forewarn.incidents.replies import Voice
    from forewarn.receiver import TwilioHooks, create_app
    from forewarn.store import secret_key

    settings = Settings()
    ctx = context_for(settings)  # says once which channels fall back to the outbox
    token = settings.webhook_token.get_secret_value() if settings.webhook_token else None
    if token is None:
        console.print("FOREWARN_WEBHOOK_TOKEN is not set: /hooks/alertmanager is off.")
    twilio = None
    if settings.twilio_auth_token and settings.public_url:
        voice = Voice(settings.operator_name, settings.help_text, ctx.policy, settings.time_zone)
        twilio = TwilioHooks(
            settings.twilio_auth_token.get_secret_value(), settings.public_url, voice
        )
    else:
        console.print("TWILIO_AUTH_TOKEN or FOREWARN_PUBLIC_URL unset: Twilio hooks are off.")
    with ctx.engine.begin() as conn:
        unsubscribe_key = secret_key(conn, "unsubscribe")
    receiver = create_app(
        ctx.engine,
        token,
        settings.max_body_bytes,
        settings.site_dir,
        twilio=twilio,
        unsubscribe_key=unsubscribe_key,
    )
    server = uvicorn.Server(uvicorn.Config(receiver, host=host, port=port, log_level="warning"))
    if not flows:
        console.print(f"receiver on http://{host}:{port}; the flows run elsewhere")
        server.run()
        return
    threading.Thread(target=server.run, name="receiver", daemon=True).start()
    console.print(f"receiver on http://{host}:{port}; detection cycle every {interval} s")
    if os.environ.get("PREFECT_API_URL"):
        # A Prefect server schedules the runs (and shows them in its UI).
        # to_deployment is typed as "maybe a coroutine"; called from sync code it is not.
        prefect_serve(
            cast(
                RunnerDeployment,
                detection_cycle.to_deployment("detection-cycle", interval=interval),
            ),
            cast(
                RunnerDeployment,
                publication.to_deployment("publication", interval=publish_every),
            ),
            cast(RunnerDeployment, dispatch.to_deployment("dispatch", interval=dispatch_every)),
            cast(
                RunnerDeployment,
                follow_up_cycle.to_deployment("follow-up", interval=follow_up_every),
            ),
            cast(RunnerDeployment, mentions.to_deployment("mentions", interval=mentions_every)),
        )
        return
    # No Prefect server: its temporary one cannot schedule, so forewarn keeps the beat itself.
    console.print("no PREFECT_API_URL: running the flows from this process (no Prefect scheduler)")
    # Each flow keeps its own beat in its own thread: a slow site rebuild or a mentions read
    # never delays the cycle that sees a fault.
    beats = [(follow_up_cycle, follow_up_every), (mentions, mentions_every),
             (publication, publish_every)]  # fmt: skip
    # The first cycle starts Prefect's temporary server; the other threads then share it
    # (started together, each would try to start its own on the same port).
    _keep_beat(detection_cycle, interval, once=True)
    for run, every in beats:
        threading.Thread(target=_keep_beat, args=(run, every), daemon=True).start()
    _keep_beat(detection_cycle, interval)


def _keep_beat(run: Callable[[], object], every: float, once: bool = False) -> None:
    """Run a flow every `every` seconds, forever (or once); a failed run is reported, not
    fatal."""
    while True:
        started = time.monotonic()
        try:
            run()
        except Exception as err:  # one failed run must not stop the service
            console.print(f"[red]{getattr(run, 'name', 'flow')} failed:[/red] {escape(str(err))}")
        if once:
            return
        time.sleep(max(every - (time.monotonic() - started), 0.5))


@app.command()
def status() -> None:
    """What is going on now: open incidents, deliveries by state, queue age, last feed read."""
    from sqlalchemy import select

    from forewarn.incidents.ledger import counts_by_status, oldest_due
    from forewarn.store import get_meta, incidents, make_engine, now_utc

    settings = Settings()
    engine = make_engine(settings.db_url)
    now = now_utc()
    with engine.connect() as conn:
        rows = conn.execute(
            select(incidents).where(incidents.c.status != "resolved").order_by(incidents.c.id)
        ).all()
        counts = counts_by_status(conn)
        waiting_since = oldest_due(conn, now)
        last_read = get_meta(conn, "last_feed_read") or "never"
    table = Table("id", "title", "status", "scope", "premises", "customers", "started")
    for row in rows:
        table.add_row(
            str(row.id), row.title, row.status, row.scope, f"{row.premises_count:,}",
            f"{row.customers_count:,}", row.started_at.strftime("%Y-%m-%d %H:%M UTC"),
        )  # fmt: skip
    console.print(table if rows else "No open incidents.")
    console.print("deliveries: " + (", ".join(f"{k} {v:,}" for k, v in counts.items()) or "none"))
    if waiting_since is not None:
        minutes = (now - waiting_since).total_seconds() / 60
        console.print(f"oldest due message has waited {minutes:,.1f} min")
    console.print(f"last feed read: {last_read}")


incident_app = typer.Typer(help="What ops do by hand: open, list, show, update, resolve.")
app.add_typer(incident_app, name="incident")
maintenance_app = typer.Typer(help="Planned work, with notices to the affected premises only.")
app.add_typer(maintenance_app, name="maintenance")


def _ops() -> tuple[Settings, Context]:
    from forewarn.flows.context import context_for

    settings = Settings()
    return settings, context_for(settings)


def _fail(message: str) -> NoReturn:
    console.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(2)


def _when(text: str | None, settings: Settings, now: datetime) -> datetime | None:
    from forewarn.operate import parse_time

    if text is None:
        return None
    try:
        return parse_time(text, now, settings.time_zone)
    except ValueError as err:
        _fail(str(err))


def _target(ctx: Context, element: str | None, area: str | None, near: str | None,
            radius: str | None) -> Target:  # fmt: skip
    """The premises named by exactly one of --element, --area or --near/--radius."""
    from forewarn.incidents.ops import by_area, by_element, by_radius
    from forewarn.network.geocode import nominatim

    given = [x for x in (element, area, near) if x]
    if len(given) != 1:
        _fail("give exactly one of --element, --area or --near (with --radius)")
    index = ctx.index()
    if element:
        return by_element(index, element)
    if area:
        path = Path(area)
        text = path.read_text(encoding="utf-8") if path.is_file() else area
        return by_area(index, text)
    if not radius:
        _fail("--near needs --radius, e.g. --radius 300m or 2km")
    metres = _metres(radius)
    geocoder = nominatim(ctx.settings.geocoder_url, ctx.settings.geocoder_rate)
    found = geocoder(str(near))
    if found is None:
        _fail(f"could not find the address {near!r}")
    return by_radius(index, found[0], found[1], metres)


def _metres(text: str) -> float:
    value = text.strip().lower()
    try:
        if value.endswith("km"):
            return float(value[:-2]) * 1000
        return float(value.removesuffix("m"))
    except ValueError:
        _fail(f"not a distance: {text!r} (write 300m or 2km)")


def _progress() -> Progress:
    """A progress bar for long imports and dispatches (quiet when not on a terminal)."""
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(), console=console, transient=True,
    )  # fmt: skip


def _after_change(ctx: Context, now: datetime) -> None:
    """Queue the messages of what just changed, send them, and rebuild the page."""
    from forewarn.incidents import queue_deliveries
    from forewarn.operate import deliver_and_publish

    with ctx.engine.begin() as conn:
        queued = queue_deliveries(conn, now, ctx.registry.partners)
    messages = sum(q.rows for q in queued)
    with _progress() as bar:
        task = bar.add_task("sending", total=messages)
        report = deliver_and_publish(
            ctx, now, on_batch=lambda done: bar.update(task, completed=done.handled)
        )
    console.print(
        f"messages queued {messages:,}; sent {report.sent:,}, held for quiet hours "
        f"{report.deferred:,}, cancelled {report.cancelled:,}; page rebuilt"
    )


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
    from forewarn.store import now_utc

    settings, ctx = _ops()
    now = now_utc()
    try:
        target = _target(ctx, element, area, near, radius)
        with ctx.engine.begin() as conn:
            serialize(conn, "incidents")
            started = _when(since, settings, now)
            incident_id = open_by_ops(conn, ctx.index(), target, title, now, ctx.policy, started)
    except OpsError as err:
        _fail(str(err))
    console.print(f"incident {incident_id} opened: {len(target.rows):,} premises")
    _after_change(ctx, now)


@incident_app.command("list")
def incident_list(
    all_: Annotated[bool, typer.Option("--all", help="Resolved ones too (latest 50).")] = False,
) -> None:
    """Open incidents (and planned work), newest first."""
    from sqlalchemy import select

    from forewarn.store import incidents

    _, ctx = _ops()
    query = select(incidents).order_by(incidents.c.id.desc()).limit(50)
    if not all_:
        query = query.where(incidents.c.status != "resolved")
    with ctx.engine.connect() as conn:
        rows = conn.execute(query).all()
    table = Table("id", "title", "source", "status", "premises", "estimate", "next update")
    for row in rows:
        table.add_row(
            str(row.id), row.title, row.source, row.status, f"{row.premises_count:,}",
            _utc(row.etr), _utc(row.next_update_at),
        )  # fmt: skip
    console.print(table if rows else "No incidents.")


@incident_app.command("show")
def incident_show(incident_id: Annotated[int, typer.Argument(help="Incident id.")]) -> None:
    """One incident: its updates, estimates and messages."""
    from sqlalchemy import select

    from forewarn.incidents.ledger import progress
    from forewarn.incidents.ops import OpsError, get
    from forewarn.store import etr_history, incident_updates

    _, ctx = _ops()
    with ctx.engine.connect() as conn:
        try:
            row = get(conn, incident_id)
        except OpsError as err:
            _fail(str(err))
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
    console.print(f"[bold]{escape(row.title)}[/bold] ({row.source}, {row.status})")
    console.print(
        f"area {escape(row.area_name or '-')}; {row.premises_count:,} premises, "
        f"{row.customers_count:,} customers; since {_utc(row.started_at)}; "
        f"estimate {_utc(row.etr)}; next update {_utc(row.next_update_at)}"
    )
    if row.cause:
        console.print(f"cause: {escape(row.cause)}")
    table = Table("#", "at", "event", "status", "told", "next update", "text")
    for u in updates:
        told = "yes" if u.notify else "-"
        table.add_row(str(u.seq), _utc(u.created_at), u.event, u.status, told,
                      _utc(u.next_update_at), escape(u.body))  # fmt: skip
    console.print(table)
    table = Table("set at", "estimate", "announced", "why")
    for e in estimates:
        table.add_row(_utc(e.set_at), _utc(e.etr), "yes" if e.announced else "no",
                      escape(e.reason))  # fmt: skip
    console.print(table)
    for p in delivery:
        console.print(p.summary(), markup=False, highlight=False)


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
    from forewarn.store import now_utc

    settings, ctx = _ops()
    now = now_utc()
    extra: dict[str, Any] = {}
    if etr is not None:
        extra["etr"] = None if etr.strip().lower() == "none" else _when(etr, settings, now)
    try:
        with ctx.engine.begin() as conn:
            serialize(conn, "incidents")
            outcome = update_by_ops(conn, incident_id, now, ctx.policy, status, cause,
                                    note=note, **extra)  # fmt: skip
    except OpsError as err:
        _fail(str(err))
    for said in outcome.said:
        console.print(f"announced: {escape(said)}")
    for held in outcome.held:
        console.print(f"[yellow]{escape(held)}[/yellow]")
    _after_change(ctx, now)


@incident_app.command("resolve")
def incident_resolve(incident_id: Annotated[int, typer.Argument(help="Incident id.")]) -> None:
    """Fixed: "restored" to premises that are back; lines still down stay in as cases."""
    from forewarn.incidents.ops import OpsError, resolve_by_ops
    from forewarn.operate import down_now
    from forewarn.store import now_utc

    _, ctx = _ops()
    now = now_utc()
    try:
        with ctx.engine.begin() as conn:
            serialize(conn, "incidents")
            resolve_by_ops(conn, ctx.index(), incident_id, down_now(conn), now, ctx.policy)
    except OpsError as err:
        _fail(str(err))
    console.print(f"incident {incident_id} resolved")
    _after_change(ctx, now)


@incident_app.command("heads-up")
def incident_heads_up(
    incident_id: Annotated[int, typer.Argument(help="An at-risk incident's id.")],
    note: Annotated[str | None, typer.Option(help="What customers should know.")] = None,
) -> None:
    """Warn the customers of an at-risk incident that their service may drop."""
    from forewarn.incidents.ops import OpsError, heads_up
    from forewarn.store import now_utc

    _, ctx = _ops()
    now = now_utc()
    try:
        with ctx.engine.begin() as conn:
            serialize(conn, "incidents")
            heads_up(conn, incident_id, note, now, ctx.policy)
    except OpsError as err:
        _fail(str(err))
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
    from forewarn.store import now_utc

    settings, ctx = _ops()
    now = now_utc()
    starts, ends = _when(start, settings, now), _when(end, settings, now)
    assert starts is not None and ends is not None
    try:
        target = _target(ctx, element, area, near, radius)
        with ctx.engine.begin() as conn:
            serialize(conn, "incidents")
            incident_id = add_maintenance(
                conn, ctx.index(), target, title, starts, ends, now, ctx.policy
            )
    except OpsError as err:
        _fail(str(err))
    console.print(
        f"planned work {incident_id}: {len(target.rows):,} premises, "
        f"{_utc(starts)} to {_utc(ends)}; notices "
        + ", ".join(f"{n} ahead" for n in ctx.policy.notices)
        + ", at start and at end"
    )


@app.command()
def customer(
    lookup: Annotated[str, typer.Argument(help="Id, phone, email, social handle or address.")],
    limit: Annotated[int, typer.Option(help="How many history lines to show.")] = 50,
) -> None:
    """One customer's incidents and every message out and reply in, newest first."""
    from forewarn.incidents.history import find_customers, history, incidents_of

    settings, ctx = _ops()
    with ctx.engine.connect() as conn:
        found = find_customers(conn, lookup, settings.phone_region)
        if not found:
            _fail(f"no customer matches {lookup!r}")
        if len(found) > 1:
            table = Table("customer", "address", "phone", "email", "social")
            for c in found:
                table.add_row(c.customer_id, c.address, c.phone or "", c.email or "",
                              c.social or "")  # fmt: skip
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
                      _utc(i.started_at), _utc(i.resolved_at))  # fmt: skip
    console.print(table if cases else "No incidents.")
    table = Table("when", "", "channel", "incident", "status", "text")
    for e in lines:
        text = e.text if e.answer is None else f"{e.text}\n-> {e.answer}"
        table.add_row(_utc(e.at), "out" if e.direction == "out" else "in", e.channel,
                      str(e.incident_id or ""), escape(e.status), escape(text))  # fmt: skip
    console.print(table if lines else "No messages yet.")


@app.command()
def drill(
    scenario: Annotated[
        Path, typer.Argument(help="Scenario file (YAML or JSON; see README).", exists=True)
    ],
    out: Annotated[Path, typer.Option(help="Where the drill writes what happened.")] = Path(
        "drill-out"
    ),
) -> None:
    """Replay a scenario on a simulated clock: every message each customer would get and
    the page over time; sends nothing."""
    from forewarn.drill import DrillError, load_scenario, run_drill

    settings = Settings()
    try:
        plan = load_scenario(scenario)
        result = run_drill(plan, settings, out)
    except DrillError as err:
        _fail(str(err))
    summary = result.summary
    table = Table("figure", "value")
    for name, value in summary.items():
        table.add_row(name.replace("_", " "), str(value))
    console.print(table)
    console.print(f"messages: {out / 'messages.jsonl'}; page: {out / 'page.jsonl'}")


def _utc(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def main() -> None:
    """Entry point: no telemetry (operators' networks are often closed), then the CLI."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Prefect's temporary local server can take a while to start on a small machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    app()
