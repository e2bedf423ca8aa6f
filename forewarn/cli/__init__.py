"""The `forewarn` command line."""

from __future__ import annotations

import os
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from forewarn.cleantext import argument
from forewarn.cli.health import nothing_to_watch, print_health, quarantine, read_health
from forewarn.cli.help import PlainGroup
from forewarn.cli.ops import build_context, customer, incident_app, maintenance_app
from forewarn.cli.serve import serve, site_is_ours
from forewarn.cli.startup import StartupError, check_store, checked_settings
from forewarn.cli.terminal import console, fail, fail_lines, progress
from forewarn.config import Settings

if TYPE_CHECKING:
    pass


app = typer.Typer(
    cls=PlainGroup,
    help=(
        "forewarn tells your customers about a network outage before they have to ask.\n\n"
        "New here? Run `forewarn demo`: a small town, a cabinet losing power, the messages "
        "and the status page, on your machine, in under a minute."
    ),
    no_args_is_help=True,
    add_completion=False,
)

# Commands that keep a store of their own (the demo's, the drill's): their settings must
# still parse, but the configured store need not answer.
OWN_STORE = {"demo", "drill"}
# Groups of commands: typed alone, they show their help.
GROUPS = {"incident", "maintenance"}


@app.callback()
def _check_first(ctx: typer.Context) -> None:
    # Before any command: every setting parses and the store answers, or one line each says
    # what is wrong (and nothing has started). Help always works, whatever the settings.
    words = ctx.meta.get("forewarn.words", [])
    if ctx.resilient_parsing or "--help" in words or (len(words) == 1 and words[0] in GROUPS):
        return
    try:
        settings = checked_settings()
        if ctx.invoked_subcommand not in OWN_STORE:
            check_store(settings)
    except StartupError as err:
        fail_lines(err.lines)


@app.command()
def demo(
    premises: Annotated[int, typer.Option(help="Size of the generated town.")] = 3000,
    workdir: Annotated[
        Path,
        typer.Option(help="Where the demo keeps everything: store, CSV files, feed, outbox, site."),
    ] = Path("forewarn-demo"),
) -> None:
    """Run the whole pipeline on a bundled town with scripted faults; sends nothing.

    A sealed rehearsal on a simulated clock: no setting comes from the environment or a
    .env, so the same story at any hour, and no message leaves the demo's outbox."""
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
        str | None,
        typer.Option(
            help="Country for phone numbers written without + (default: FOREWARN_PHONE_REGION)."
        ),
    ] = None,
    show: Annotated[int, typer.Option(help="How many problems to list.")] = 50,
    encoding: Annotated[
        str | None,
        typer.Option(
            help="The files' encoding, e.g. cp1252 or latin-1 (default: UTF-8, or "
            "Windows-1252 for a file that turns out not to be UTF-8)."
        ),
    ] = None,
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
        with progress() as bar:
            task = bar.add_task("customers", total=rows)
            report = import_network(
                engine, topology, customers, geocoder, now_utc(), region or settings.phone_region,
                progress=lambda done: bar.update(task, completed=done), encoding=encoding,
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
    from forewarn.pipeline import FollowedUp
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
            # could watch once it stops: the same composition runs without it.
            cycled = pipeline.cycle(ctx, moment or now_utc())
            done = pipeline.follow_up(ctx, moment or now_utc())
        pipeline.note_waiting(ctx, cycled.dispatch, cycled.now)
        if isinstance(done, FollowedUp) and done.dispatch is not None:
            pipeline.note_waiting(ctx, done.dispatch, cycled.now)
    finally:
        ctx.close()
    print_cycle(console, cycled)
    if done.changed:
        console.print(
            f"follow-ups: {len(done.reminded)} promised updates, {len(done.warned)} estimate "
            f"warnings, {len(done.maintenance)} planned-work notices, "
            f"{len(done.at_risk)} at-risk changes"
        )
        if isinstance(done, FollowedUp) and done.dispatch is not None:
            print_delivery(console, 0, done.dispatch, "  ")


@app.command()
def status() -> None:
    """What is going on now: open incidents, deliveries by state, queue age, last feed read,
    channels failing now and quarantined input."""
    from sqlalchemy import select

    from forewarn.incidents.ledger import counts_by_status, failure_reasons, oldest_due
    from forewarn.store import get_meta, incidents, make_engine, now_utc

    settings = Settings()
    engine = make_engine(settings.db_url)
    now = now_utc()
    with engine.connect() as conn:
        rows = conn.execute(
            select(incidents).where(incidents.c.status != "resolved").order_by(incidents.c.id)
        ).all()
        counts = counts_by_status(conn)
        failures = failure_reasons(conn)
        waiting_since = oldest_due(conn, now)
        last_read = get_meta(conn, "last_feed_read") or "never"
        health = read_health(conn, now)
    table = Table("id", "title", "status", "scope", "premises", "customers", "started")
    for row in rows:
        table.add_row(
            str(row.id), escape(row.title), row.status, row.scope, f"{row.premises_count:,}",
            f"{row.customers_count:,}", row.started_at.strftime("%Y-%m-%d %H:%M UTC"),
        )  # fmt: skip
    console.print(table if rows else "No open incidents.")
    console.print("deliveries: " + (", ".join(f"{k} {v:,}" for k, v in counts.items()) or "none"))
    for reason, n in failures:
        console.print(f"  failed {n:,}: {reason}", markup=False, highlight=False)
    if waiting_since is not None:
        minutes = (now - waiting_since).total_seconds() / 60
        console.print(f"oldest due message has waited {minutes:,.1f} min")
    console.print(f"last feed read: {last_read}")
    print_health(health)


app.add_typer(incident_app, name="incident")
app.add_typer(maintenance_app, name="maintenance")
app.command()(serve)
app.command()(customer)
app.command()(quarantine)


@app.command()
def drill(
    scenario: Annotated[
        Path, typer.Argument(help="Scenario file (YAML or JSON; see README).", exists=True)
    ],
    out: Annotated[Path, typer.Option(help="Where the drill writes what happened.")] = Path(
        "drill-out"
    ),
) -> None:
    """Replay a scenario on a simulated clock; sends nothing.

    Writes every message each customer would get, the page over time, and a summary.
    """
    from forewarn.drill import DrillError, load_scenario, run_drill

    settings = Settings()
    try:
        plan = load_scenario(scenario)
        result = run_drill(plan, settings, out)
    except DrillError as err:
        fail(str(err))
    summary = result.summary
    table = Table("figure", "value")
    for name, value in summary.items():
        table.add_row(name.replace("_", " "), str(value))
    console.print(table)
    console.print(f"messages: {out / 'messages.jsonl'}; page: {out / 'page.jsonl'}")


def main() -> None:
    """Entry point: no telemetry (operators' networks are often closed), then the CLI."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Prefect's temporary local server can take a while to start on a small machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    # A note typed in a Latin-1 terminal arrives as bytes that are not UTF-8: read them as
    # text here, once, rather than fail when the note is stored or printed.
    sys.argv = [argument(arg) for arg in sys.argv]
    app()
