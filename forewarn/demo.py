"""`forewarn demo`: a generated town, a cabinet losing power, and the whole pipeline on a
simulated clock: detection, incident, messages to the local outbox, the status site."""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import datetime, timedelta
from pathlib import Path

from rich.console import Console

from forewarn.config import Settings
from forewarn.network.synthetic import Shape, generate

OPERATOR = "Riverside Fibre"


def _feed_line(element: str, state: str, at: datetime) -> str:
    return json.dumps({"element": element, "state": state, "at": at.isoformat()}) + "\n"


def run_demo(console: Console, workdir: Path, premises: int) -> None:
    """Build the town, script the fault, run the cycles and say what happened."""
    started = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    settings = Settings()
    db = workdir / "forewarn.db"
    for stale in (db, workdir / "forewarn.db-wal", workdir / "forewarn.db-shm"):
        stale.unlink(missing_ok=True)
    feed = workdir / "feed.jsonl"
    feed.write_text("")
    outbox = settings.outbox
    for channel_file in outbox.glob("*.jsonl") if outbox.exists() else []:
        channel_file.unlink()
    # The flows read their settings from the environment, like in production.
    os.environ.update(
        FOREWARN_DB_URL=f"sqlite:///{db.resolve()}",
        FOREWARN_JSONL_FEED=str(feed.resolve()),
        FOREWARN_OPERATOR_NAME=OPERATOR,
        FOREWARN_JOURNAL_DIR=str((workdir / "journal").resolve()),
        FOREWARN_ALERTMANAGER_URL="",
    )
    os.environ.pop("FOREWARN_ALERTMANAGER_URL")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "ERROR")  # the demo tells its own story

    from forewarn.context import Context
    from forewarn.flows import detection_cycle, given_context
    from forewarn.network import import_network
    from forewarn.report import print_cycle
    from forewarn.store import make_engine

    console.rule(f"[bold]forewarn demo[/bold]: {OPERATOR}, a town of {premises:,} premises")
    shape = Shape()
    town = generate(workdir, premises, shape=shape)
    t0 = datetime.now().astimezone().replace(second=0, microsecond=0)
    engine = make_engine(f"sqlite:///{db.resolve()}")
    report = import_network(engine, town.topology, town.customers, None, t0)
    console.print(
        f"Imported {report.elements:,} network elements (exchange > OLTs > PON ports > "
        f"cabinets > CPEs), {report.premises:,} premises, {report.customers:,} customers."
    )

    cabinet = "ex0-olt0-pon3-cab2"
    first = (3 * shape.cabinets_per_pon + 2) * shape.premises_per_cabinet
    behind = [f"cpe{n}" for n in range(first, first + shape.premises_per_cabinet)]
    flapper, lone = "cpe901", "cpe1500"
    neighbour = first - 1  # next door, but wired to the previous cabinet
    console.print(
        f"Scripted: at {t0 + timedelta(minutes=1):%H:%M} cabinet {cabinet} loses power "
        f"({len(behind)} CPEs go silent); {flapper} bounces for 30 s; {lone} goes down alone."
    )

    ctx = Context.build(Settings())  # the settings the demo just put in the environment

    def cycle(label: str, at: datetime) -> None:
        console.print(f"\n[bold]{at:%H:%M %Z}[/bold] {label}")
        with given_context(ctx):
            print_cycle(console, detection_cycle(now=at))

    cycle("cycle 1: a quiet network", t0)
    with feed.open("a") as handle:
        down_at = t0 + timedelta(minutes=1)
        handle.writelines(_feed_line(cpe, "down", down_at) for cpe in behind)
        handle.write(_feed_line(flapper, "down", down_at))
        handle.write(_feed_line(flapper, "up", down_at + timedelta(seconds=30)))
        handle.write(_feed_line(lone, "down", down_at))
        handle.write('{"element": "cpe12", "state": "sideways", "at": "yesterday"}\n')
    cycle("cycle 2: the CPEs go silent; damping holds everything back", t0 + timedelta(minutes=2))
    cycle(
        "cycle 3: still down after damping: one incident, customers told", t0 + timedelta(minutes=4)
    )
    up_at = t0 + timedelta(hours=2)
    with feed.open("a") as handle:
        handle.writelines(_feed_line(cpe, "up", up_at) for cpe in behind)
        handle.write(_feed_line(lone, "up", up_at))
    cycle("cycle 4: power is back; waiting to be sure", up_at + timedelta(minutes=1))
    cycle("cycle 5: stayed up: restored", up_at + timedelta(minutes=12))

    console.rule("[bold]where to look[/bold]")
    counts = {p.stem: sum(1 for _ in p.open()) for p in sorted(outbox.glob("*.jsonl"))}
    console.print(f"Messages written to the outbox {outbox.resolve()}: {counts}")
    neighbour_told = any(
        f'"c{neighbour}"' in line for p in outbox.glob("*.jsonl") for line in p.open()
    )
    console.print(
        f"The neighbour (premise p{neighbour}, next door but on another cabinet) was "
        f"{'[red]told[/red]' if neighbour_told else 'not told: their line was fine'}."
    )
    site = settings.site_dir.resolve()
    console.print(f"Status site: {site / 'index.html'} (and {site / 'api/v2/summary.json'})")
    console.print(f"Rejected feed lines are kept with their reason in the quarantine table of {db}")
    console.print(f"Done in {time.monotonic() - started:.0f} s. Try `forewarn serve` to browse it.")
    shutil.rmtree(workdir / "__pycache__", ignore_errors=True)
