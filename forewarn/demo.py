"""`forewarn demo`: a generated town, two cabinets losing power, and the whole pipeline on
a simulated clock: detection, incidents, messages to the demo's own outbox, the site.

A sealed rehearsal: its settings are built here from scratch (no channel, no quiet hours,
nothing from the environment or a `.env`), its files live in one folder, and its clock is
a fixed Tuesday morning, so it tells the same story at any hour and sends nothing."""

from __future__ import annotations

import json
import shlex
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from pydantic import SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource
from rich.console import Console
from rich.markup import escape
from sqlalchemy import select

from forewarn import pipeline
from forewarn.channels import CHANNELS
from forewarn.config import Settings
from forewarn.context import Context
from forewarn.network import import_network
from forewarn.network.synthetic import Shape, generate
from forewarn.notifiers.registry import build
from forewarn.store import incidents, make_engine, quarantine, secret_key, writing

OPERATOR = "Riverside Fibre"
TIME_ZONE = "America/Chicago"  # where the generated town is
# The simulated clock starts here, in the town's working hours, whatever the real hour.
START = datetime(2026, 11, 24, 10, 0, tzinfo=ZoneInfo(TIME_ZONE))
CABINET_A = "ex0-olt0-pon3-cab2"  # loses power, then comes back
CABINET_B = "ex0-olt0-pon12-cab0"  # loses power later and is still down at the end
FLAPPER, LONE = "cpe901", "cpe1500"
BAD_LINE = '{"element": "cpe12", "state": "sideways", "at": "yesterday"}\n'
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


def demo_settings(workdir: Path) -> Settings:
    """The demo's settings: its own store, feed, site and outbox in `workdir`, no channel
    (so every message goes to the outbox) and no quiet hours."""
    root = workdir.resolve()
    return DemoSettings(
        db_url=SecretStr(f"sqlite:///{root / 'forewarn.db'}"),
        jsonl_feed=str(root / "feed.jsonl"),
        site_dir=root / "site",
        outbox=root / "outbox",
        journal_dir=root / "journal",
        operator_name=OPERATOR,
        time_zone=TIME_ZONE,
        quiet_hours="",
    )


def serve_command(workdir: Path) -> str:
    """The command that serves the demo's page from the demo's store (no flows: nothing
    runs against the demo's customers with the operator's real channels)."""
    db = f"sqlite:///{workdir / 'forewarn.db'}"
    return (
        f"FOREWARN_DB_URL={shlex.quote(db)} FOREWARN_SITE_DIR={shlex.quote(str(workdir / 'site'))}"
        " forewarn serve --no-flows"
    )


def run_demo(console: Console, workdir: Path, premises: int) -> None:
    """Build the town, script the faults, run the cycles and say what happened."""
    settings = demo_settings(workdir)
    _clear(settings, workdir)
    console.rule(f"[bold]forewarn demo[/bold]: {OPERATOR}, a town of {premises:,} premises")
    console.print(
        f"A rehearsal on a simulated clock ({START:%A %d %B %Y}, {TIME_ZONE} time); nothing is "
        "sent: every message goes to the demo's outbox."
    )
    shape = Shape()
    town = generate(workdir, premises, shape=shape)
    engine = make_engine(settings.db_url)
    report = import_network(engine, town.topology, town.customers, None, START)
    console.print(
        f"Imported {report.elements:,} network elements (exchange > OLTs > PON ports > "
        f"cabinets > CPEs), {report.premises:,} premises, {report.customers:,} customers."
    )
    signing_key = writing(engine, lambda conn: secret_key(conn, "unsubscribe"), "secret key")
    ctx = Context(settings, engine, httpx.Client(), build(settings, signing_key, engine))
    try:
        _story(console, ctx, shape)
        _where_to_look(console, ctx, workdir, shape)
    finally:
        ctx.close()


def _clear(settings: Settings, workdir: Path) -> None:
    """Forget a previous run's store, feed and messages (the site is replaced on publish)."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name in ("forewarn.db", "forewarn.db-wal", "forewarn.db-shm", "feed.jsonl"):
        (workdir / name).unlink(missing_ok=True)
    for stale in settings.outbox.glob("*.jsonl") if settings.outbox.exists() else []:
        stale.unlink()
    (workdir / "feed.jsonl").touch()


def _cpes(cabinet: str, shape: Shape) -> list[str]:
    """The CPEs behind a cabinet of the generated tree (`ex0-olt0-pon3-cab2`)."""
    pon, cab = (int(part.rsplit("pon", 1)[-1]) for part in cabinet.rsplit("-cab", 1))
    first = (pon * shape.cabinets_per_pon + cab) * shape.premises_per_cabinet
    return [f"cpe{n}" for n in range(first, first + shape.premises_per_cabinet)]


def _feed(feed: Path, *lines: tuple[str, str, datetime]) -> None:
    """Append signals to the demo's JSON lines feed, as monitoring would."""
    with feed.open("a") as handle:
        for element, state, at in lines:
            handle.write(json.dumps({"element": element, "state": state, "at": at.isoformat()}))
            handle.write("\n")


def _story(console: Console, ctx: Context, shape: Shape) -> None:
    """The scripted morning, cycle by cycle."""
    cabinet_a, cabinet_b = _cpes(CABINET_A, shape), _cpes(CABINET_B, shape)
    down_a, down_b, up_a = (START + timedelta(minutes=m) for m in (1, 110, 120))
    console.print(
        f"Scripted: at {down_a:%H:%M} cabinet {CABINET_A} loses power ({len(cabinet_a)} CPEs go "
        f"silent); {FLAPPER} bounces for 30 s; {LONE} goes down alone; a feed line is garbled."
    )
    console.print(
        f"Then at {down_b:%H:%M} cabinet {CABINET_B} loses power too, and at {up_a:%H:%M} "
        f"{CABINET_A}'s power is back."
    )
    outbox = _Outbox(ctx.settings.outbox)
    feed = Path(str(ctx.settings.jsonl_feed))

    def cycle(label: str, at: datetime) -> None:
        console.print(f"\n[bold]{at:%H:%M}[/bold] {label}")
        report = pipeline.cycle(ctx, at.astimezone(ZoneInfo("UTC")))
        d = report.detection
        console.print(
            f"  signals read {report.signals}, rejected {report.rejects}; "
            f"elements waiting out damping {d.pending}"
        )
        for incident_id in report.changes.opened:
            _opened(console, ctx, incident_id)
        for incident_id in report.changes.resolved:
            console.print(f"  incident #{incident_id} resolved")
        told = outbox.new()
        if told:
            console.print("  messages: " + _counted(told))

    cycle("a quiet network", START)
    _feed(
        feed,
        *((cpe, "down", down_a) for cpe in cabinet_a),
        (FLAPPER, "down", down_a),
        (FLAPPER, "up", down_a + timedelta(seconds=30)),
        (LONE, "down", down_a),
    )
    with feed.open("a") as handle:
        handle.write(BAD_LINE)
    cycle(
        "the CPEs go silent; damping holds everything back for two minutes",
        START + timedelta(minutes=2),
    )
    _rejected(console, ctx)
    cycle(
        "still down after damping: the incidents open, customers are told",
        START + timedelta(minutes=4),
    )
    _feed(feed, *((cpe, "down", down_b) for cpe in cabinet_b))
    _feed(feed, *((cpe, "up", up_a) for cpe in cabinet_a), (LONE, "up", up_a))
    cycle(
        f"{CABINET_A} is back, waiting ten minutes to be sure; {CABINET_B} is still down",
        up_a + timedelta(minutes=1),
    )
    cycle(f"{CABINET_A} stayed up: restored", up_a + timedelta(minutes=11))


class _Outbox:
    """Counts the messages each cycle added to the outbox, per channel."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.seen: Counter[str] = Counter()

    def new(self) -> list[tuple[str, int]]:
        """(channel, messages added since the last call), in a fixed order."""
        now: Counter[str] = Counter()
        for path in self.folder.glob("*.jsonl"):
            now[path.stem] = _lines(path)
        added = [(c, now[c] - self.seen[c]) for c in CHANNEL_NOUNS if now[c] > self.seen[c]]
        self.seen = now
        return added


def _opened(console: Console, ctx: Context, incident_id: int) -> None:
    """One line on a new incident: where, how many, and whether it is public."""
    with ctx.engine.connect() as conn:
        row = conn.execute(select(incidents).where(incidents.c.id == incident_id)).one()
    if row.public:
        console.print(
            f"  incident #{row.id} opened at {row.root_element} ({escape(row.area_name or '')}): "
            f"{row.premises_count} premises, {row.customers_count} customers told; on the page"
        )
    else:
        console.print(
            f"  incident #{row.id} opened at {row.root_element}: one premise, kept private: "
            "not on the page (one home is too small an area to show) and nobody messaged "
            "(a lone dead router is usually the customer's own)"
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


def _where_to_look(console: Console, ctx: Context, workdir: Path, shape: Shape) -> None:
    """Where the messages and the page are, and the command that shows the page."""
    console.rule("[bold]where to look[/bold]")
    outbox = ctx.settings.outbox
    counts = {p.stem: _lines(p) for p in sorted(outbox.glob("*.jsonl"))}
    console.print(f"Messages: {_shown(outbox)}/ ({_counted(counts.items())}), one JSON line each.")
    first = int(_cpes(CABINET_A, shape)[0].removeprefix("cpe"))
    neighbour = f"c{first - 1}"  # next door, but wired to the previous cabinet
    told = any(f'"{neighbour}"' in p.read_text() for p in outbox.glob("*.jsonl"))
    console.print(
        f"The neighbour (premise p{first - 1}, next door but on another cabinet) was "
        f"{'[red]told[/red]' if told else 'not told: their line was fine'}."
    )
    site = ctx.settings.site_dir
    with ctx.engine.connect() as conn:
        public = conn.execute(
            select(incidents.c.id, incidents.c.status)
            .where(incidents.c.public)
            .order_by(incidents.c.id)
        ).all()
    states = ", ".join(
        f"#{i} {'resolved' if s == 'resolved' else 'in progress'}" for i, s in public
    )
    console.print(
        f"The page: {_shown(site / 'index.html')} ({states}; past incidents in "
        f"{_shown(site / 'history.html')})."
    )
    console.print(
        f"To browse it: {serve_command(Path(_shown(workdir)))} (then http://127.0.0.1:8000)"
    )


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


def _lines(path: Path) -> int:
    """How many lines a file holds (messages in an outbox file), the file closed after."""
    with path.open("rb") as handle:
        return sum(1 for _ in handle)
