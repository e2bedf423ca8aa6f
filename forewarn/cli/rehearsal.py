"""`forewarn demo` and `forewarn drill`: sealed rehearsals on a simulated clock that send
nothing, each in a store of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from forewarn.cli.terminal import console, fail
from forewarn.config import Settings


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
