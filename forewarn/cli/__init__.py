"""The `forewarn` command line: the typer app, the check every command makes first, and
main(). Each command lives in the module of its group; this one only puts them together."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from forewarn import __version__
from forewarn.cleantext import argument
from forewarn.cli import (
    customer,
    health,
    maintenance,
    network,
    ops,
    rehearsal,
    run_once,
    safety,
    serve,
)
from forewarn.cli.help import PlainGroup
from forewarn.cli.startup import (
    StartupError,
    check_store,
    checked_settings,
    retired_settings,
    unknown_settings,
)
from forewarn.cli.terminal import fail_lines

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
# Commands that only read: run where no store is, they refuse rather than make an empty
# one and report that all is well (the others may start a store: an import, a server).
READ_ONLY = {
    ("status",),
    ("customer",),
    ("follower",),
    ("at-risk",),
    ("quarantine",),
    ("incident", "list"),
    ("incident", "show"),
}
# Groups of commands: typed alone, they show their help.
GROUPS = {"incident", "maintenance"}


def _version(asked: bool) -> None:
    if asked:
        typer.echo(f"forewarn {__version__}")
        raise typer.Exit()


@app.callback()
def _check_first(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Say which forewarn this is.", callback=_version, is_eager=True
        ),
    ] = False,
) -> None:
    # Before any command: every setting parses and the store answers, or one line each says
    # what is wrong (and nothing has started). Help always works, whatever the settings.
    words = ctx.meta.get("forewarn.words", [])
    if ctx.resilient_parsing or "--help" in words or (len(words) == 1 and words[0] in GROUPS):
        return
    try:
        settings = checked_settings()
        for line in retired_settings(os.environ):
            typer.echo(f"forewarn: {line}", err=True)
        for line in unknown_settings(os.environ, Path(".env")):
            typer.echo(f"forewarn: {line}", err=True)
        if ctx.invoked_subcommand not in OWN_STORE:
            reads = tuple(words[:1]) in READ_ONLY or tuple(words[:2]) in READ_ONLY
            check_store(settings, may_create=not reads)
    except StartupError as err:
        fail_lines(err.lines)


# In the order `forewarn --help` lists them (typer lists the groups after the commands).
app.command()(rehearsal.demo)
app.command("import-network")(network.import_network_command)
app.command("run-once")(run_once.run_once)
app.command()(health.status)
app.add_typer(ops.incident_app, name="incident")
app.add_typer(maintenance.maintenance_app, name="maintenance")
app.command()(serve.serve)
app.command()(customer.customer)
app.command()(customer.follower)
app.add_typer(safety.at_risk_app, name="at-risk")
app.command()(health.quarantine)
app.command()(rehearsal.drill)


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
