"""`forewarn status` and `forewarn quarantine`: what is going on now, and what keeps
forewarn from seeing a fault or telling a customer (a cycle with nothing to watch, channels
failing now, input set aside)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy import exists, func, select
from sqlalchemy.engine import Connection

from forewarn.cli.terminal import console, fail, shown
from forewarn.config import Settings
from forewarn.store import elements, get_meta, incidents, make_engine, now_utc
from forewarn.store import quarantine as quarantined

if TYPE_CHECKING:
    from forewarn.context import Context
    from forewarn.incidents.ledger.waiting import Failing

# How far back `forewarn status` looks for failures for good: a channel that failed
# yesterday and has sent since is not failing now.
FAILING_WINDOW = timedelta(hours=24)


def nothing_to_watch(ctx: Context) -> list[str]:
    """What keeps a cycle from detecting anything: no network to map faults onto, or no
    feed to read. Not errors (the cycle still sends what is due and publishes), but a
    cycle that cannot see a fault must say so."""
    gaps = []
    with ctx.engine.connect() as conn:
        if not conn.execute(select(exists().select_from(elements))).scalar():
            gaps.append(
                "no network imported: faults cannot be mapped to customers; run "
                "`forewarn import-network TOPOLOGY CUSTOMERS` first"
            )
    s = ctx.settings
    if not (s.alertmanager_url or s.jsonl_feed or s.webhook_token):
        gaps.append(
            "no feed configured: nothing can be detected; set FOREWARN_ALERTMANAGER_URL or "
            "FOREWARN_JSONL_FEED (or FOREWARN_WEBHOOK_TOKEN, with `forewarn serve` taking "
            "Alertmanager's webhooks)"
        )
    return gaps


@dataclass(slots=True)
class Health:
    """The channels failing now, and how much input is quarantined (the latest when)."""

    failing: list[Failing] = field(default_factory=list)
    quarantined: int = 0
    latest_quarantined: datetime | None = None
    dropped: int = 0  # rejects the quarantine's bounds let go


def read_health(conn: Connection, now: datetime) -> Health:
    """Failing channels and quarantined input, in two grouped queries."""
    from forewarn.feeds.inbox import dropped_count
    from forewarn.incidents.ledger.waiting import failing_channels

    held, latest = conn.execute(select(func.count(), func.max(quarantined.c.at))).one()
    failing = failing_channels(conn, now - FAILING_WINDOW)
    return Health(failing, int(held), latest, dropped_count(conn))


def print_health(health: Health, zone: str) -> None:
    """`forewarn status`'s last lines: what is failing, what was set aside."""
    if health.failing:
        console.print("[red]channels failing now:[/red]")
    for f in health.failing:
        console.print(
            f"  {f.channel}: {f.retrying:,} waiting to retry, {f.failed:,} failed for good in "
            f"the last 24 h; latest at {shown(f.latest_at, zone)}: {f.latest}",
            markup=False, highlight=False, style="red", soft_wrap=True,
        )  # fmt: skip
    if health.quarantined:
        dropped = f"; {health.dropped:,} older ones dropped" if health.dropped else ""
        console.print(
            f"quarantined input: {health.quarantined:,}, the latest at "
            f"{shown(health.latest_quarantined, zone)}{dropped} (`forewarn quarantine` lists them)",
            markup=False, highlight=False, style="yellow", soft_wrap=True,
        )  # fmt: skip


def _read_at(stored: str | None, zone: str) -> str:
    """When the feeds were last read, as ops read times ('never' before the first)."""
    if not stored:
        return "never"
    try:
        return shown(datetime.fromisoformat(stored), zone)
    except ValueError:
        return stored


def status() -> None:
    """What is going on now: open incidents, deliveries by state, queue age, last feed read,
    channels failing now and quarantined input."""
    from forewarn.incidents.followers import counts as follow_counts
    from forewarn.incidents.ledger import counts_by_status, failure_reasons, oldest_due
    from forewarn.incidents.reports import reports_since
    from forewarn.incidents.safety import counts as safety_counts

    settings = Settings()
    zone = settings.time_zone
    engine = make_engine(settings.db_url)
    now = now_utc()
    with engine.connect() as conn:
        rows = conn.execute(
            select(incidents).where(incidents.c.status != "resolved").order_by(incidents.c.id)
        ).all()
        counts = counts_by_status(conn)
        failures = failure_reasons(conn)
        waiting_since = oldest_due(conn, now)
        last_read = _read_at(get_meta(conn, "last_feed_read"), zone)
        health = read_health(conn, now)
        reported = reports_since(conn, now - timedelta(hours=24))
        follows = follow_counts(conn)
        checks = safety_counts(conn)
    table = Table("id", "title", "status", "scope", "premises", "customers", "started")
    for row in rows:
        table.add_row(
            str(row.id),
            escape(row.title),
            row.status,
            row.scope,
            f"{row.premises_count:,}",
            f"{row.customers_count:,}",
            shown(row.started_at, zone),
        )
    console.print(table if rows else "No open incidents.")
    console.print("deliveries: " + (", ".join(f"{k} {v:,}" for k, v in counts.items()) or "none"))
    for reason, n in failures:
        console.print(f"  failed {n:,}: {reason}", markup=False, highlight=False)
    if waiting_since is not None:
        minutes = (now - waiting_since).total_seconds() / 60
        console.print(f"oldest due message has waited {minutes:,.1f} min")
    console.print(f"last feed read: {last_read}")
    by_customers, by_others = reported
    if by_customers:
        console.print(f"customers' OUT reports in the last 24 h: {by_customers:,}")
    if by_others:
        console.print(f"reports from the site and other numbers in the last 24 h: {by_others:,}")
    if follows:
        console.print("followers: " + ", ".join(f"{k} {v:,}" for k, v in sorted(follows.items())))
    if checks.get("visit") or checks.get("calling") or checks.get("asked"):
        console.print(
            f"at-risk customers: {checks.get('visit', 0):,} visit needed, "
            f"{checks.get('calling', 0):,} being called, "
            f"{checks.get('asked', 0):,} asked to confirm (forewarn at-risk)"
        )
    print_health(health, zone)


def quarantine(
    limit: Annotated[int, typer.Option(help="How many to list, newest first.")] = 20,
) -> None:
    """Input set aside as unusable (malformed feed lines, unknown states), newest first,
    each with its reason."""
    if limit < 1:
        fail(f"--limit: at least 1, not {limit}")
    settings = Settings()
    zone = settings.time_zone
    engine = make_engine(settings.db_url)
    q = quarantined.c
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(quarantined)).scalar_one()
        rows = conn.execute(
            select(q.at, q.source, q.reason, q.raw).order_by(q.at.desc(), q.id.desc()).limit(limit)
        ).all()
    engine.dispose()
    if not rows:
        console.print("Nothing quarantined.")
        return
    # Lines, not a table: a raw input line is long, and ops grep and paste these.
    for row in rows:
        console.print(
            f"{shown(row.at, zone)}  {row.source}: {row.reason}\n    {row.raw}",
            markup=False, highlight=False, soft_wrap=True,
        )  # fmt: skip
    if total > len(rows):
        console.print(f"{len(rows):,} of {total:,} shown (use --limit)")
