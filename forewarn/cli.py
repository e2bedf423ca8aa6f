"""The `forewarn` command line."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer
from rich.markup import escape
from rich.table import Table

from forewarn.cli_ops import customer, incident_app, maintenance_app
from forewarn.config import Settings
from forewarn.terminal import console, fail, progress

if TYPE_CHECKING:
    pass

app = typer.Typer(
    help=(
        "forewarn tells your customers about a network outage before they have to ask.\n\n"
        "New here? Run `forewarn demo`: a small town, a cabinet losing power, the messages "
        "and the status page, on your machine, in under a minute."
    ),
    no_args_is_help=True,
    add_completion=False,
)


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
        str | None,
        typer.Option(
            help="Country for phone numbers written without + (default: FOREWARN_PHONE_REGION)."
        ),
    ] = None,
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
        with progress() as bar:
            task = bar.add_task("customers", total=rows)
            report = import_network(
                engine, topology, customers, geocoder, now_utc(), region or settings.phone_region,
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
def run_once(
    at: Annotated[
        str | None,
        typer.Option(hidden=True, help="Run as if it were this ISO-8601 moment (rehearsals)."),
    ] = None,
) -> None:
    """One full cycle: detect, update incidents, send, publish; then the follow-ups.

    Reads the feeds, detects, maps, updates incidents, dispatches what is due and
    publishes the site; then keeps promised updates and warns before estimates pass.
    """
    from forewarn.context import Context
    from forewarn.flows import detection_cycle, follow_up_cycle, given_context
    from forewarn.report import print_cycle

    moment = None
    if at is not None:
        try:
            moment = datetime.fromisoformat(at)
        except ValueError:
            fail(f"--at: not an ISO-8601 time: {at!r}")
        if moment.tzinfo is None:
            fail(f"--at: give the offset too, e.g. {at}+00:00")
    settings = Settings()
    _site_is_ours(settings)
    with given_context(Context.build(settings)) as ctx:
        print_cycle(console, detection_cycle(now=moment))
        done = follow_up_cycle(now=moment)
    ctx.close()
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
    """Run the flows on the schedules of prefect.yaml, and the HTTP receiver.

    The receiver takes Alertmanager's webhooks, Twilio's callbacks and unsubscribe links,
    and serves the site; all in one process.
    """
    import uvicorn
    from prefect import serve as prefect_serve
    from prefect.deployments.runner import RunnerDeployment

    from forewarn.context import Context
    from forewarn.flows import (
        detection_cycle,
        dispatch,
        follow_up_cycle,
        given_context,
        mentions,
        publication,
    )
    from forewarn.incidents.replies import Voice
    from forewarn.receiver import TwilioHooks, create_app
    from forewarn.store import secret_key

    settings = Settings()
    _site_is_ours(settings)
    ctx = Context.build(settings)  # says once which channels fall back to the outbox
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
    with given_context(ctx):
        _keep_beat(detection_cycle, interval, once=True)
        for run, every in beats:
            threading.Thread(target=_keep_beat, args=(run, every), daemon=True).start()
        _keep_beat(detection_cycle, interval)


def _site_is_ours(settings: Settings) -> None:
    """Refuse to start when FOREWARN_SITE_DIR holds someone else's files."""
    from forewarn.status_page.publish import NotOurs, check_site_dir

    try:
        check_site_dir(settings.site_dir)
    except NotOurs as err:
        fail(str(err))


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
    table = Table("id", "title", "status", "scope", "premises", "customers", "started")
    for row in rows:
        table.add_row(
            str(row.id), row.title, row.status, row.scope, f"{row.premises_count:,}",
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


app.add_typer(incident_app, name="incident")
app.add_typer(maintenance_app, name="maintenance")
app.command()(customer)


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
    app()
