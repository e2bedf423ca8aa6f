"""`forewarn demo`: a generated town, two cabinets losing power, and the whole pipeline on
a simulated clock, told moment by moment: the bundled drill scenario
`forewarn/drill/demo.yaml` replayed by the drill engine on the town the demo generates.

A sealed rehearsal: its settings are built here from scratch (no channel, no quiet hours,
nothing from the environment or a `.env`), its files live in one folder, and its clock is
a fixed Tuesday morning, so it tells the same story at any hour and sends nothing."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource
from rich.console import Console
from rich.markup import escape
from sqlalchemy import func, select

from forewarn.channels import CHANNELS
from forewarn.channels.base import Message
from forewarn.config import Settings
from forewarn.context import Context
from forewarn.drill import Moment, claim, load_scenario, rehearse
from forewarn.network.synthetic import Shape, generate
from forewarn.store import customers, elements, incidents, premises, quarantine

SCENARIO = Path(__file__).parent / "drill" / "demo.yaml"
NEIGHBOUR = "c223"  # next door to cabinet ex0-olt0-pon3-cab2's first house, on another cabinet
# What a customer receives on each of their channels, in the demo's words.
CHANNEL_NOUNS = {c.name: c.noun for c in CHANNELS.values() if c.contact is not None}


class DemoSettings(Settings):
    """Settings from the arguments given and the defaults only: never the environment or
    a `.env` (where an operator's real SMTP server or Twilio account may be)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only what the demo passes in."""
        return (init_settings,)


def serve_command(workdir: Path, forewarn: str = "forewarn") -> str:
    """The command that serves the demo's page from the demo's store (no flows: nothing
    runs against the demo's customers with the operator's real channels)."""
    db = f"sqlite:///{workdir / 'drill.db'}"
    return (
        f"FOREWARN_DB_URL={shlex.quote(db)} FOREWARN_SITE_DIR={shlex.quote(str(workdir / 'site'))}"
        f" {shlex.quote(forewarn)} serve --no-flows"
    )


def this_command() -> str:
    """How to type the `forewarn` running now: `forewarn` when the shell finds this one by
    that name, else its path as it was typed (`.venv/bin/forewarn` without the venv)."""
    typed = sys.argv[0] if sys.argv and sys.argv[0] else "forewarn"
    found = shutil.which("forewarn")
    if found and os.path.realpath(found) == os.path.realpath(shutil.which(typed) or typed):
        return "forewarn"
    return typed if Path(typed).name == "forewarn" else "forewarn"


def run_demo(console: Console, workdir: Path, size: int) -> None:
    """Build the town, replay the scripted morning on it and say what happened."""
    scenario = load_scenario(SCENARIO)
    zone = ZoneInfo(str(scenario.settings["time_zone"]))
    start = scenario.start.astimezone(zone)
    operator = scenario.settings["operator_name"]
    claim(workdir)  # a previous demo's folder is emptied; any other folder is refused
    town = generate(workdir / "town", size, shape=Shape())
    scenario.network = {"topology": town.topology.name, "customers": town.customers.name}
    scenario.base = town.topology.parent
    console.rule(f"[bold]forewarn demo[/bold]: {operator}, a town of {size:,} premises")
    console.print(
        f"A rehearsal on a simulated clock ({start:%A %d %B %Y}, {zone.key} time) through "
        "the drill engine; nothing is sent: every message is written down instead."
    )
    teller = _Teller(console, zone)
    rehearse(scenario, DemoSettings(), workdir, teller.moment)
    _where_to_look(console, workdir, this_command())


class _Teller:
    """Prints each moment of the drill that a newcomer should see."""

    def __init__(self, console: Console, zone: ZoneInfo) -> None:
        self.console, self.zone, self.first = console, zone, True

    def moment(self, moment: Moment) -> None:
        """One moment: what the scenario says of it, then what forewarn did."""
        ctx, cycle = moment.context, moment.cycle
        if self.first:
            self.first = False
            _imported(self.console, ctx)
        changes, sensed = cycle.changes, cycle.sensed
        if not (moment.said or changes.any or moment.sent or sensed.signals or sensed.rejects):
            return  # the clock passed a moment where nothing happened
        said = "; ".join(moment.said) or _what_happened(cycle.changes.opened, changes.resolved)
        at = moment.at.astimezone(self.zone)
        shown = f"{at:%H:%M:%S}" if at.second else f"{at:%H:%M}"
        self.console.print(f"\n[bold]{shown}[/bold] {said}")
        self.console.print(
            f"  signals read {sensed.signals}, rejected {sensed.rejects}; "
            f"elements waiting out damping {sensed.detection.pending}"
        )
        if sensed.rejects:
            _rejected(self.console, ctx)
        for incident_id in changes.opened:
            _opened(self.console, ctx, incident_id)
        for incident_id in changes.resolved:
            self.console.print(f"  incident #{incident_id} resolved")
        if moment.sent:
            self.console.print("  messages: " + _counted(_by_channel(moment.sent)))


def _what_happened(opened: list[int], resolved: list[int]) -> str:
    """A moment the scenario did not script, in words: what the stages did by themselves."""
    if opened:
        return "still down after two minutes of damping: incidents open, customers are told"
    if resolved:
        return "up for ten minutes: restored, customers are told"
    return "forewarn's own timers"


def _imported(console: Console, ctx: Context) -> None:
    with ctx.engine.connect() as conn:
        counts = [conn.scalar(select(func.count()).select_from(t)) or 0 for t in (
            elements, premises, customers)]  # fmt: skip
    console.print(
        f"Imported {counts[0]:,} network elements (exchange > OLTs > PON ports > cabinets > "
        f"CPEs), {counts[1]:,} premises, {counts[2]:,} customers."
    )


def _opened(console: Console, ctx: Context, incident_id: int) -> None:
    """One line on a new incident: where, how many, and whether it is public."""
    with ctx.engine.connect() as conn:
        row = conn.execute(select(incidents).where(incidents.c.id == incident_id)).one()
    if not row.public:
        console.print(
            f"  incident #{row.id} opened at {row.root_element}: one premise, kept private: "
            "not on the page (one home is too small an area to show) and nobody messaged "
            "(a lone dead router is usually the customer's own)"
        )
        return
    tree = ctx.index().tree
    leaves = tree.is_leaf.nonzero()[0]
    cpes = int(tree.under(tree.index[row.root_element], leaves).sum())
    empty = cpes - row.premises_count
    homes = f", {empty} of them empty homes" if empty else ""
    console.print(
        f"  incident #{row.id} opened at {row.root_element} ({escape(row.area_name or '')}): "
        f"{cpes} CPEs behind it{homes}; {row.premises_count} premises, "
        f"{row.customers_count} customer{'' if row.customers_count == 1 else 's'} told; "
        "on the page"
    )


def _rejected(console: Console, ctx: Context) -> None:
    """Say why the garbled feed line was refused, and where it is kept."""
    with ctx.engine.connect() as conn:
        reasons = conn.execute(select(quarantine.c.reason).order_by(quarantine.c.id)).scalars()
        for reason in reasons:
            console.print(
                f"  the garbled line was refused ({escape(reason)}) and kept in quarantine; "
                "the rest of the batch went on"
            )


def _where_to_look(console: Console, workdir: Path, forewarn: str) -> None:
    """Where the messages and the page are, and the command that shows the page."""
    console.rule("[bold]where to look[/bold]")
    written = (workdir / "messages.jsonl").read_text(encoding="utf-8").splitlines()
    messages = [json.loads(line) for line in written]
    out = [m for m in messages if m["direction"] == "out"]
    counts = Counter(m["channel"] for m in out)
    console.print(
        f"Messages: {_shown(workdir / 'messages.jsonl')} ({_counted(counts.items())}), one "
        "JSON line each, in the order they went."
    )
    told = any(m.get("customer_id") == NEIGHBOUR for m in out)
    console.print(
        f"The neighbour (premise p{NEIGHBOUR[1:]}, next door but on another cabinet) was "
        f"{'[red]told[/red]' if told else 'not told: their line was fine'}."
    )
    summary = json.loads((workdir / "summary.json").read_text(encoding="utf-8"))
    wait = summary["minutes_to_first_message"]
    broken = summary["promised_updates_broken"]
    console.print(
        f"{summary['customers_messaged']} customers messaged; each incident's first messages "
        f"went {'the moment it opened' if not wait else f'{wait} minutes after it opened'}; "
        f"{'no promise broken' if not broken else f'{broken} promises broken'}; every "
        f"figure in {_shown(workdir / 'summary.json')}."
    )
    site = workdir / "site"
    states = _page_states(site)
    console.print(
        f"The page: {_shown(site / 'index.html')} ({states}; past incidents in "
        f"{_shown(site / 'history.html')})."
    )
    console.print(
        f"To browse it: {serve_command(Path(_shown(workdir)), forewarn)} "
        "(then http://127.0.0.1:8000)"
    )


def _page_states(site: Path) -> str:
    """`#1 resolved, #3 in progress`: what the published page says of each incident."""
    api = site / "api" / "v2"
    live = json.loads((api / "incidents" / "unresolved.json").read_text(encoding="utf-8"))
    every = json.loads((api / "incidents.json").read_text(encoding="utf-8"))
    open_ids = {i["id"] for i in live["incidents"]}
    return ", ".join(
        f"#{i['id']} {'in progress' if i['id'] in open_ids else 'resolved'}"
        for i in sorted(every["incidents"], key=lambda i: int(i["id"]))
    )


def _by_channel(sent: Iterable[Message]) -> list[tuple[str, int]]:
    return list(Counter(m.channel for m in sent).items())


def _counted(counts: Iterable[tuple[str, int]]) -> str:
    """`12 texts, 13 emails, 1 public post`, in the channels' order."""
    by_channel = dict(counts)
    return ", ".join(
        f"{n} {noun}{'' if n == 1 else 's'}"
        for channel, noun in CHANNEL_NOUNS.items()
        if (n := by_channel.get(channel, 0))
    )


def _shown(path: Path) -> str:
    """A path as a newcomer types it: relative to here when it is under here."""
    here = Path.cwd()
    absolute = path.absolute()
    return f"./{absolute.relative_to(here)}" if absolute.is_relative_to(here) else str(absolute)
