"""Drills: replay a scenario (feed events and ops actions on a timeline) against a
simulated clock, with the same detection, incident, follow-up and dispatch code as
production, and write every message each customer would get, the public page over time,
and a summary. Nothing is sent: every channel is captured."""

from __future__ import annotations

import json
import shutil
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import httpx
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import select

from forewarn import pipeline
from forewarn.config import Settings
from forewarn.context import Context
from forewarn.detection import states as state_store
from forewarn.detection.run import down_now
from forewarn.durations import parse_duration, parse_time
from forewarn.feeds import Signal
from forewarn.incidents.conversation import warning_time
from forewarn.incidents.ops import (
    OpsError,
    add_maintenance,
    by_area,
    by_element,
    by_radius,
    heads_up,
    open_by_ops,
    resolve_by_ops,
    update_by_ops,
)
from forewarn.incidents.replies import Voice, handle_reply
from forewarn.network import NetworkIndex
from forewarn.network.importer import import_network
from forewarn.notifiers.base import Done, Message, Outcome, Result, ignore
from forewarn.notifiers.dispatch import UNCAPPED
from forewarn.notifiers.journal import Journal
from forewarn.notifiers.registry import Registry
from forewarn.store import (
    customers,
    deliveries,
    elements,
    incident_premises,
    incident_updates,
    incidents,
    insert_ignoring_conflicts,
    make_engine,
    premises,
    serialize,
    set_meta,
)

MAX_STEPS = 200_000
CHANNELS = ("sms", "email", "social", "webhook")


class DrillError(ValueError):
    """A scenario that cannot be run, with the reason."""


# --- the scenario file --------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FeedStep(_Strict):
    """Monitoring says elements changed state: one element, a list, or every leaf under one."""

    element: str | None = None
    elements: list[str] = Field(default_factory=list, max_length=1_000_000)
    under: str | None = None
    state: Literal["down", "up", "degraded"]


class OpsStep(_Strict):
    """What ops do: the `forewarn incident` and `forewarn maintenance` commands' options."""

    action: Literal["open", "update", "resolve", "heads-up", "maintenance"]
    incident: int | Annotated[str, Field(pattern=r"^(latest|customer:.+)$")] = "latest"
    title: str | None = None
    element: str | None = None
    area: dict[str, Any] | None = None
    near: tuple[float, float] | None = None  # lat, lon (drills do not geocode)
    radius_m: float | None = None
    status: str | None = None
    cause: str | None = None
    etr: str | None = None
    note: str | None = None
    start: str | None = None
    end: str | None = None


class ReplyStep(_Strict):
    """A customer texts back (OUT, STOP, HELP...)."""

    customer: str
    body: str = Field(max_length=2000)
    channel: Literal["sms"] = "sms"


class Step(_Strict):
    """One timed event; `at` is "+90m" from the start or an ISO-8601 time."""

    at: str
    feed: FeedStep | list[FeedStep] | None = None
    ops: OpsStep | None = None
    reply: ReplyStep | None = None


class Scenario(_Strict):
    """A drill: when it starts and ends, the network, settings to try, and the timeline."""

    name: str = "drill"
    start: datetime
    until: str = "+3d"
    tick: str = "1m"
    network: dict[str, str] | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    events: list[Step] = Field(default_factory=list, max_length=100_000)
    # Where relative paths in `network` are read from.
    base: Path = Path(".")

    @field_validator("start")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("start needs a UTC offset, e.g. 2026-11-23T08:00:00+00:00")
        return value


def load_scenario(path: Path) -> Scenario:
    """Read a YAML or JSON scenario; every problem is a DrillError naming the field."""
    if path.stat().st_size > 50_000_000:
        raise DrillError("the scenario file is larger than 50 MB")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise DrillError(f"{path}: not YAML or JSON: {err}") from None
    if not isinstance(raw, dict):
        raise DrillError(f"{path}: a scenario is a mapping with start and events")
    try:
        return Scenario.model_validate({**raw, "base": path.parent})
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise DrillError(f"{path}: {where}: {first['msg']}") from None


# --- capturing every channel -----------------------------------------------------------


@dataclass
class Capture:
    """Stands in for every channel: records each message at the simulated time."""

    channel: str
    clock: list[datetime]
    sent: list[tuple[datetime, Message]]

    def send(self, messages: Sequence[Message], done: Done = ignore) -> list[Result]:
        """Record the messages as delivered."""
        results = []
        for message in messages:
            self.sent.append((self.clock[0], message))
            result = Result(message.delivery_id, Outcome.DELIVERED, ref=f"drill-{message.key}")
            done(result)
            results.append(result)
        return results

    def reconcile(self, messages: Sequence[Message]) -> list[Result | None]:
        """Nothing is ever lost in a drill."""
        return [None for _ in messages]


# --- running it --------------------------------------------------------------------------


@dataclass
class DrillResult:
    """What the drill wrote, and its summary figures."""

    messages: list[dict[str, Any]]
    page: list[dict[str, Any]]
    summary: dict[str, Any] = field(default_factory=dict)
    # Every moment the simulated clock stopped at, in order.
    moments: list[datetime] = field(default_factory=list)


def run_drill(scenario: Scenario, base: Settings, out: Path) -> DrillResult:
    """Run the scenario into `out` (messages.jsonl, page.jsonl, summary.json)."""
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
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    settings = _drill_settings(scenario, base, out)
    engine = make_engine(settings.db_url)
    _load_network(scenario, base, settings, engine, start)
    clock = [start]
    sent: list[tuple[datetime, Message]] = []
    registry = Registry(
        notifiers={c: Capture(c, clock, sent) for c in CHANNELS},
        journal=Journal(out / "journal"),
        partners=[],
    )
    ctx = Context(settings=settings, engine=engine, http=httpx.Client(), registry=registry)
    answers: list[dict[str, Any]] = []
    page: list[dict[str, Any]] = []
    voice = Voice(settings.operator_name, settings.help_text, ctx.policy, settings.time_zone)
    now, position, last_page = start, 0, None
    moments: list[datetime] = []
    for _ in range(MAX_STEPS):
        clock[0] = now
        moments.append(now)
        due = []
        while position < len(steps) and steps[position][0] <= now:
            due.append(steps[position][2])
            position += 1
        _step(ctx, now, due, voice, answers)
        state = _page_state(ctx, now)
        if state != last_page:
            page.append({"at": _iso(now), **state})
            last_page = state
        if now >= until:
            break
        upcoming = steps[position][0] if position < len(steps) else until
        now = min(_next_wake(ctx, now, tick), upcoming, until)
    else:
        raise DrillError(f"the drill did not finish within {MAX_STEPS:,} steps")
    messages = _messages(ctx, sent) + answers
    messages.sort(key=lambda m: (m["at"], m.get("customer_id") or "", m["channel"]))
    result = DrillResult(messages, page, moments=moments)
    result.summary = summarise(ctx, messages, until, tick)
    result.summary["scenario"] = scenario.name
    _write(out, result)
    engine.dispose()
    return result


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
    with source.connect() as src, engine.begin() as dst:
        for table in (elements, premises, customers):
            rows = [dict(r._mapping) for r in src.execute(select(table))]
            insert_ignoring_conflicts(dst, table, rows)
        set_meta(dst, "network_version", f"drill-{now.isoformat()}")
    source.dispose()


def _step(
    ctx: Context, now: datetime, due: list[Step], voice: Voice, answers: list[dict[str, Any]]
) -> None:
    """One moment, as `forewarn serve` lives it: the detection cycle (with the scripted
    signals for feeds), ops commands and replies as they arrive, the follow-up pass, and
    the dispatch beat for whatever else is due."""
    index = ctx.index()
    signals = [s for step in due for s in _signals(index, step, now)]
    pipeline.cycle(ctx, now, signals)
    by_hand = [step for step in due if step.ops is not None or step.reply is not None]
    if by_hand:
        with ctx.engine.begin() as conn:
            serialize(conn, "incidents")
            for step in by_hand:
                if step.ops is not None:
                    _ops(conn, index, step.ops, now, ctx)
                if step.reply is not None:
                    answers.extend(_reply(conn, step.reply, now, voice))
        pipeline.queue(ctx, now)
        pipeline.settle(ctx, now)
    pipeline.follow_up(ctx, now)
    pipeline.deliver(ctx, now)


def _signals(index: NetworkIndex, step: Step, now: datetime) -> list[Signal]:
    if step.feed is None:
        return []
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
    return found


def _ops(conn: Any, index: NetworkIndex, ops: OpsStep, now: datetime, ctx: Context) -> None:
    from forewarn.incidents.updates import CLEAR, KEEP, Change, Set

    policy = ctx.policy
    try:
        if ops.action in ("open", "maintenance"):
            if ops.element:
                target = by_element(index, ops.element)
            elif ops.area:
                target = by_area(index, json.dumps(ops.area))
            elif ops.near and ops.radius_m:
                target = by_radius(index, ops.near[0], ops.near[1], ops.radius_m)
            else:
                raise OpsError("open and maintenance need element, area or near + radius_m")
            if ops.action == "open":
                open_by_ops(conn, index, target, ops.title or "Reported fault", now, policy)
            else:
                if not ops.start or not ops.end:
                    raise OpsError("maintenance needs start and end")
                add_maintenance(
                    conn, index, target, ops.title or "Planned work",
                    parse_time(ops.start, now, "UTC"), parse_time(ops.end, now, "UTC"),
                    now, policy,
                )  # fmt: skip
            return
        incident_id = _incident(conn, ops.incident)
        if ops.action == "update":
            etr: Change[datetime] = KEEP
            if ops.etr is not None:
                etr = CLEAR if ops.etr == "none" else Set(parse_time(ops.etr, now, "UTC"))
            update_by_ops(conn, incident_id, now, policy, ops.status, ops.cause,
                          estimate=etr, note=ops.note)  # fmt: skip
        elif ops.action == "resolve":
            resolve_by_ops(conn, index, incident_id, down_now(conn), now, policy)
        else:
            heads_up(conn, incident_id, ops.note, now, policy)
    except (OpsError, ValueError) as err:
        raise DrillError(f"at {_iso(now)}: ops {ops.action}: {err}") from None


def _incident(conn: Any, which: int | str) -> int:
    """An incident id, "latest" (the newest area incident), or "customer:ID" (that
    customer's newest incident, e.g. the case an OUT reply opened)."""
    if isinstance(which, int):
        return which
    query = select(incidents.c.id).order_by(incidents.c.id.desc())
    if which.startswith("customer:"):
        query = (
            query.join(incident_premises, incident_premises.c.incident_id == incidents.c.id)
            .join(customers, customers.c.premise_id == incident_premises.c.premise_id)
            .where(customers.c.customer_id == which.removeprefix("customer:"))
        )
    else:
        query = query.where(incidents.c.scope == "area")
    found = conn.execute(query.limit(1)).scalar()
    if found is None:
        raise DrillError(f"ops refer to incident {which!r}, but there is none yet")
    return int(found)


def _reply(conn: Any, reply: ReplyStep, now: datetime, voice: Voice) -> list[dict[str, Any]]:
    phone = conn.execute(
        select(customers.c.phone).where(customers.c.customer_id == reply.customer)
    ).scalar()
    if phone is None:
        raise DrillError(f"reply from {reply.customer!r}, who has no phone number")
    answer = handle_reply(conn, "sms", phone, reply.body, None, now, voice)
    heard = {"at": _iso(now), "direction": "in", "channel": "sms", "customer_id": reply.customer}
    said: list[dict[str, Any]] = [{**heard, "body": reply.body}]
    if answer:
        case = conn.execute(
            select(incidents.c.id, incidents.c.next_update_at)
            .join(premises, premises.c.element_id == incidents.c.root_element)
            .join(customers, customers.c.premise_id == premises.c.premise_id)
            .where(customers.c.customer_id == reply.customer, incidents.c.status != "resolved")
            .order_by(incidents.c.id.desc())
        ).first()
        said.append({
            "at": _iso(now), "direction": "out", "channel": "sms", "to": phone,
            "customer_id": reply.customer, "incident_id": case.id if case else None,
            "event": "answer", "etr": None,
            "next_update_at": _iso(case.next_update_at) if case and case.next_update_at else None,
            "body": answer,
        })  # fmt: skip
    return said


def _next_wake(ctx: Context, now: datetime, tick: timedelta) -> datetime:
    """The next moment anything can happen: damping settling, a promised update, a
    warning before an estimate, planned work, a message held for the morning."""
    t = ctx.thresholds
    candidates: list[datetime] = []
    with ctx.engine.connect() as conn:
        for st in state_store.load(conn).values():
            if st.state == "down" and not st.confirmed:
                candidates.append(max(st.since + t.down_after, now + tick))
            elif st.state != "down" and st.confirmed:
                candidates.append(max(st.since + t.up_after, now + tick))
            elif st.state == "degraded":
                candidates.append(st.since + ctx.policy.degraded_after)
        for row in conn.execute(select(incidents).where(incidents.c.status != "resolved")):
            candidates += [m for m in (row.next_update_at, row.scheduled_for, row.scheduled_until)
                           if m is not None]  # fmt: skip
            candidates += [m for m in (warning_time(row, ctx.policy),) if m is not None]
            candidates += [row.scheduled_for - n for n in ctx.policy.notices if row.scheduled_for]
        held = conn.execute(
            select(deliveries.c.next_attempt_at).where(deliveries.c.status == "queued")
        ).scalars()
        candidates += list(held)
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


def _messages(ctx: Context, sent: list[tuple[datetime, Message]]) -> list[dict[str, Any]]:
    with ctx.engine.connect() as conn:
        updates = {
            (r.incident_id, r.seq): r
            for r in conn.execute(
                select(
                    incident_updates.c.incident_id,
                    incident_updates.c.seq,
                    incident_updates.c.event,
                    incident_updates.c.etr,
                    incident_updates.c.next_update_at,
                )
            )
        }
    found = []
    for at, m in sent:
        update = updates[(m.incident_id, m.update_seq)]
        found.append({
            "at": _iso(at), "direction": "out", "channel": m.channel,
            "to": m.to if m.customer_id else None, "customer_id": m.customer_id,
            "incident_id": m.incident_id, "update_seq": m.update_seq, "event": update.event,
            "etr": _iso(update.etr) if update.etr else None,
            "next_update_at": _iso(update.next_update_at) if update.next_update_at else None,
            "body": m.body, **({"subject": m.subject} if m.subject else {}),
        })  # fmt: skip
    return found


def summarise(
    ctx: Context, messages: list[dict[str, Any]], until: datetime, tick: timedelta
) -> dict[str, Any]:
    """The drill's figures, computed from the messages themselves."""
    to_customers = [m for m in messages if m["direction"] == "out" and m.get("customer_id")]
    by_customer: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for m in to_customers:
        by_customer[m["customer_id"]].append(m)
    with ctx.engine.connect() as conn:
        zones = dict(conn.execute(select(customers.c.customer_id, customers.c.timezone)).all())
        opened = {
            r.id: r.opened_at for r in conn.execute(select(incidents.c.id, incidents.c.opened_at))
        }
    rules = ctx.rules
    kept = broken = warned_missing = quiet = 0
    broken_list: list[str] = []
    per_incident: dict[tuple[str, int, str], int] = defaultdict(int)
    for customer_id, own in by_customer.items():
        own.sort(key=lambda m: m["at"])
        # One update reaches a customer on several channels: judge each update once.
        updates = list(
            {(m["incident_id"], m.get("update_seq"), m["event"]): m for m in own}.values()
        )
        updates.sort(key=lambda m: m["at"])
        for m in own:
            if m["event"] not in UNCAPPED:
                per_incident[(customer_id, m["incident_id"], m["channel"])] += 1
            if m["event"] not in ("restored", "answer") and _in_quiet(
                m["at"], zones.get(customer_id), rules
            ):
                quiet += 1
        for n, m in enumerate(updates):
            later = updates[n + 1]["at"] if n + 1 < len(updates) else None
            promise = m.get("next_update_at")
            if promise and _dt(promise) <= until:
                if later is not None and _dt(later) <= _dt(promise) + tick:
                    kept += 1
                else:
                    broken += 1
                    broken_list.append(f"{customer_id}: promised {promise} after {m['at']}")
            estimate = _dt(m["etr"]) if m.get("etr") and m["event"] not in UNCAPPED else None
            if estimate and estimate <= until and (later is None or _dt(later) > estimate):
                warned_missing += 1
    firsts: dict[int, datetime] = {}
    for m in to_customers:
        if m["incident_id"] is not None:
            firsts.setdefault(m["incident_id"], _dt(m["at"]))
    waits = [(at - opened[i]).total_seconds() / 60 for i, at in firsts.items() if i in opened]
    cap = rules.max_per_incident
    return {
        "messages": len(to_customers),
        "public_posts": sum(
            1 for m in messages if m["direction"] == "out" and not m.get("customer_id")
        ),
        "customers_messaged": len(by_customer),
        # Per customer, every channel and incident together.
        "most_messages_to_one_customer": max((len(v) for v in by_customer.values()), default=0),
        "median_messages_per_customer": statistics.median(
            [len(v) for v in by_customer.values()] or [0]
        ),
        # Per customer, incident and channel, as the cap counts ("restored" and the
        # summary are never capped).
        "max_messages_per_customer_incident_channel": max(per_incident.values(), default=0),
        "over_cap": sum(1 for n in per_incident.values() if n > cap),
        "minutes_to_first_message": round(max(waits), 1) if waits else None,
        "promised_updates_kept": kept,
        "promised_updates_broken": broken,
        "broken_promises": broken_list[:20],
        "estimates_missed_without_warning": warned_missing,
        "routine_messages_in_quiet_hours": quiet,
        "replies": sum(1 for m in messages if m["direction"] == "in"),
    }


def _in_quiet(at: str, zone: str | None, rules: Any) -> bool:
    if rules.quiet_start is None or rules.quiet_end is None:
        return False
    clock = _dt(at).astimezone(ZoneInfo(zone or "UTC")).time()
    start, end = rules.quiet_start, rules.quiet_end
    return bool((start <= clock or clock < end) if start > end else (start <= clock < end))


def _write(out: Path, result: DrillResult) -> None:
    with (out / "messages.jsonl").open("w", encoding="utf-8") as handle:
        for m in result.messages:
            handle.write(json.dumps(m, ensure_ascii=False) + "\n")
    with (out / "page.jsonl").open("w", encoding="utf-8") as handle:
        for state in result.page:
            handle.write(json.dumps(state, ensure_ascii=False) + "\n")
    (out / "summary.json").write_text(json.dumps(result.summary, indent=2) + "\n")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
