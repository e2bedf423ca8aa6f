"""Running a drill: the scenario replayed on a simulated clock through the one pipeline,
every channel captured, and the messages, the page over time and the summary written."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.engine import Connection

from forewarn import pipeline
from forewarn.channels import CHANNELS
from forewarn.channels.base import Message, Outcome, Result, Sending, Session, Stateless, bare
from forewarn.config import Settings
from forewarn.context import Context
from forewarn.detection.run import next_due as detection_due
from forewarn.drill.hands import act, anyone_texts, customer_texts, site_report
from forewarn.drill.scenario import DrillError, Scenario, Step
from forewarn.drill.summary import iso, messages_sent, summarise
from forewarn.durations import parse_duration, parse_time
from forewarn.feeds import Signal
from forewarn.feeds.jsonl import parse_lines
from forewarn.feeds.signal import FeedBatch
from forewarn.incidents.conversation import next_due as conversation_due
from forewarn.incidents.ledger import next_due as ledger_due
from forewarn.incidents.replies import Voice
from forewarn.incidents.reports import next_due as reports_due
from forewarn.network import NetworkIndex
from forewarn.network.importer import import_network
from forewarn.notifiers.journal import Journal
from forewarn.notifiers.registry import Registry
from forewarn.reports import CycleReport
from forewarn.store import (
    customers,
    elements,
    insert_ignoring_conflicts,
    make_engine,
    premises,
    set_meta,
    writing,
)

MAX_STEPS = 200_000
MARKER = ".forewarn-drill"  # in every --out a drill writes: the next drill may replace it
NETWORK_TABLES = (elements, premises, customers)  # copied in this order: parents first


# --- capturing every channel -----------------------------------------------------------


class Capture(Sending):
    """Stands in for every channel: records each message at the simulated time, through
    the same send sequence as a real channel."""

    def __init__(self, channel: str, clock: list[datetime], sent: list[tuple[datetime, Message]]):
        self.channel, self.clock, self.sent = channel, clock, sent

    def session(self) -> Session:
        """Nothing to connect to."""
        return Stateless(self._record)

    def _record(self, message: Message) -> Result:
        self.sent.append((self.clock[0], message))
        return Result(message.delivery_id, Outcome.DELIVERED, ref=f"drill-{message.key}")


# --- running it --------------------------------------------------------------------------


@dataclass
class DrillResult:
    """What the drill wrote, and its summary figures."""

    messages: list[dict[str, Any]]
    page: list[dict[str, Any]]
    summary: dict[str, Any] = field(default_factory=dict)
    # Every moment the simulated clock stopped at, in order.
    moments: list[datetime] = field(default_factory=list)


@dataclass
class Moment:
    """One stop of the simulated clock, as whoever watches the drill sees it: what the
    scenario says of it, what the cycle sensed and changed, and what was sent."""

    at: datetime
    said: list[str]
    cycle: CycleReport
    sent: list[Message]
    # The drill's own context, to read its store and network (never to change them).
    context: Context


Watch = Callable[[Moment], None]


def run_drill(
    scenario: Scenario, base: Settings, out: Path, watch: Watch | None = None
) -> DrillResult:
    """Run the scenario into `out` (messages.jsonl, page.jsonl, summary.json), emptied
    first (see `claim`); `watch` sees each moment as it passes."""
    claim(out)
    return rehearse(scenario, base, out, watch)


def rehearse(
    scenario: Scenario, base: Settings, out: Path, watch: Watch | None = None
) -> DrillResult:
    """Run the scenario into `out`, a folder already claimed, which may hold the
    scenario's own network files."""
    start = scenario.start.astimezone(UTC)
    try:
        until = parse_time(scenario.until, start, "UTC")
        tick = parse_duration(scenario.tick)
        steps = sorted(
            ((parse_time(s.at, start, "UTC"), n, s) for n, s in enumerate(scenario.events)),
            key=lambda item: (item[0], item[1]),
        )
    except ValueError as err:
        raise DrillError(str(err)) from None
    if until <= start or tick < timedelta(seconds=1):
        raise DrillError("until must be after start, and tick at least 1s")
    settings = _drill_settings(scenario, base, out)
    engine = make_engine(settings.db_url)
    _load_network(scenario, base, settings, engine, start)
    clock = [start]
    sent: list[tuple[datetime, Message]] = []
    registry = Registry(
        senders={c: Capture(c, clock, sent) for c in CHANNELS},
        journal=Journal(out / "journal"),
        partners=[],
    )
    ctx = Context(settings=settings, engine=engine, http=httpx.Client(), registry=registry)
    try:
        result = _play(ctx, steps, (start, until, tick), clock, sent, watch)
        result.summary["scenario"] = scenario.name
    finally:
        ctx.close()  # the store's connections and the HTTP client
    _write(out, result)
    return result


def _play(
    ctx: Context,
    steps: list[tuple[datetime, int, Step]],
    span: tuple[datetime, datetime, timedelta],
    clock: list[datetime],
    sent: list[tuple[datetime, Message]],
    watch: Watch | None,
) -> DrillResult:
    """Live the scenario's moments from its start to its end, a tick apart at most, on
    the simulated `clock`: what was sent, the page over time, and the summary of it all."""
    start, until, tick = span
    s = ctx.settings
    answers: list[dict[str, Any]] = []
    page: list[dict[str, Any]] = []
    voice = Voice(s.operator_name, s.help_text, ctx.policy, s.time_zone, bare(s.site_url))
    now, position, last_page = start, 0, None
    moments: list[datetime] = []
    for _ in range(MAX_STEPS):
        clock[0] = now
        moments.append(now)
        due = []
        while position < len(steps) and steps[position][0] <= now:
            due.append(steps[position][2])
            position += 1
        before = len(sent)
        report = _step(ctx, now, due, voice, answers)
        if watch is not None:
            said = [step.say for step in due if step.say]
            watch(Moment(now, said, report, [m for _, m in sent[before:]], ctx))
        state = _page_state(ctx, now)
        if state != last_page:
            page.append({"at": iso(now), **state})
            last_page = state
        if now >= until:
            break
        upcoming = steps[position][0] if position < len(steps) else until
        now = min(_next_wake(ctx, now, tick), upcoming, until)
    else:
        raise DrillError(f"the drill did not finish within {MAX_STEPS:,} steps")
    messages = messages_sent(ctx, sent) + answers
    messages.sort(key=lambda m: (m["at"], m.get("customer_id") or "", m["channel"]))
    result = DrillResult(messages, page, moments=moments)
    result.summary = summarise(ctx, messages, until, tick)
    return result


def claim(out: Path) -> None:
    """Make `out` the drill's, emptied: a new or empty folder, or a drill's own previous
    output (marked); anything else is refused and nothing is deleted."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists())):
        raise DrillError(
            f"--out {out} holds files a drill did not write; choose a new or empty folder "
            "(nothing was deleted)"
        )
    if (out / MARKER).exists():
        for entry in out.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_bytes(b"")


def _drill_settings(scenario: Scenario, base: Settings, out: Path) -> Settings:
    values = base.model_dump()
    values.update(scenario.settings)
    # A drill never reaches anything real: its own store, site, and no channel credentials.
    values.update(
        db_url=f"sqlite:///{out / 'drill.db'}", site_dir=out / "site", outbox=out / "outbox",
        journal_dir=out / "journal", jsonl_feed=None, alertmanager_url=None,
        twilio_account_sid=None, twilio_auth_token=None, smtp_url=None, mastodon_url=None,
        mastodon_token=None, webhook_urls=None, geocoder_url=None,
    )  # fmt: skip
    try:
        return Settings.model_validate(values)
    except ValidationError as err:
        first = err.errors()[0]
        raise DrillError(f"settings.{first['loc'][0]}: {first['msg']}") from None


def _load_network(
    scenario: Scenario, base: Settings, settings: Settings, engine: Any, now: datetime
) -> None:
    """The scenario's CSV files, or a copy of the network in the configured store."""
    if scenario.network:
        topology = scenario.base / scenario.network.get("topology", "")
        people = scenario.base / scenario.network.get("customers", "")
        if not topology.is_file() or not people.is_file():
            raise DrillError("network needs topology and customers CSV files that exist")
        report = import_network(engine, topology, people, None, now, settings.phone_region)
        if report.elements == 0:
            raise DrillError("the scenario's topology has no elements")
        return
    source = make_engine(base.db_url)
    with source.connect() as src:
        tables = {t: [dict(r._mapping) for r in src.execute(select(t))] for t in NETWORK_TABLES}
    source.dispose()

    def copy(dst: Connection) -> None:
        for table, rows in tables.items():
            insert_ignoring_conflicts(dst, table, rows)
        set_meta(dst, "network_version", f"drill-{now.isoformat()}")

    writing(engine, copy, "drill network")


def _step(
    ctx: Context, now: datetime, due: list[Step], voice: Voice, answers: list[dict[str, Any]]
) -> CycleReport:
    """One moment, as `forewarn serve` lives it: the detection cycle (with the scripted
    signals for feeds), ops commands and replies as they arrive, the follow-up pass, and
    the dispatch beat for whatever else is due."""
    index = ctx.index()
    batch = FeedBatch()
    for step in due:
        batch.extend(_signals(index, step, now))
    report = pipeline.cycle(ctx, now, batch)
    by_hand = [step for step in due if step.ops or step.reply or step.text or step.report]
    if by_hand:

        def by_hand_work(conn: Connection) -> list[dict[str, Any]]:
            answered: list[dict[str, Any]] = []
            for step in by_hand:
                if step.ops is not None:
                    act(conn, index, step.ops, now, ctx.policy)
                if step.reply is not None:
                    answered.extend(customer_texts(conn, step.reply, now, voice))
                if step.text is not None:
                    answered.extend(anyone_texts(conn, step.text, now, voice))
                if step.report is not None:
                    region = ctx.settings.phone_region
                    answered.extend(site_report(conn, step.report, now, voice, region))
            return answered

        answers.extend(writing(ctx.engine, by_hand_work, "drill ops and replies"))
        pipeline.queue(ctx, now)
        pipeline.deliver_and_publish(ctx, now)
    pipeline.follow_up(ctx, now)
    pipeline.deliver(ctx, now)
    return report


def _signals(index: NetworkIndex, step: Step, now: datetime) -> FeedBatch:
    """The step's signals: its feed events, and its feed line as the feed would read it."""
    batch = FeedBatch()
    if step.feed_line is not None:
        batch.extend(parse_lines(step.feed_line.encode("utf-8")))
    if step.feed is None:
        return batch
    found = []
    for feed in step.feed if isinstance(step.feed, list) else [step.feed]:
        names = list(feed.elements) + ([feed.element] if feed.element else [])
        if feed.under:
            node = index.tree.index.get(feed.under)
            if node is None:
                raise DrillError(f"unknown element {feed.under!r} in feed.under")
            tree = index.tree
            inside = tree.under(node, tree.is_leaf.nonzero()[0])
            names += [tree.ids[int(n)] for n in tree.is_leaf.nonzero()[0][inside]]
        found += [Signal(n, feed.state, now, "drill") for n in names]
    batch.signals.extend(found)
    return batch


def _next_wake(ctx: Context, now: datetime, tick: timedelta) -> datetime:
    """The next moment anything can happen: damping settling, a promised update, a
    warning before an estimate, planned work, a message held for the morning."""
    with ctx.engine.connect() as conn:
        # Each stage says when it next has work; damping already due settles next tick.
        candidates = [max(m, now + tick) for m in detection_due(conn, ctx.thresholds)]
        candidates += conversation_due(conn, ctx.policy)
        candidates += ledger_due(conn)
        candidates += [max(m, now + tick) for m in reports_due(conn, now, ctx.policy)]
    future = [c for c in candidates if c > now]
    return min(future, default=now + timedelta(days=365))


def _page_state(ctx: Context, now: datetime) -> dict[str, Any]:
    """What the public page says: overall status and each incident's line."""
    summary = pipeline.site_data(ctx, now).summary()
    keep = ("id", "name", "status", "impact", "x_etr", "x_area", "x_premises_affected")
    return {
        "status": summary["status"],
        "incidents": [{k: i.get(k) for k in keep} for i in summary["incidents"]],
        "scheduled_maintenances": [
            {k: m.get(k) for k in ("id", "name", "status", "scheduled_for", "scheduled_until")}
            for m in summary["scheduled_maintenances"]
        ],
    }


def _write(out: Path, result: DrillResult) -> None:
    with (out / "messages.jsonl").open("w", encoding="utf-8") as handle:
        for m in result.messages:
            handle.write(json.dumps(m, ensure_ascii=False) + "\n")
    with (out / "page.jsonl").open("w", encoding="utf-8") as handle:
        for state in result.page:
            handle.write(json.dumps(state, ensure_ascii=False) + "\n")
    (out / "summary.json").write_text(json.dumps(result.summary, indent=2) + "\n")
