"""Each channel's send budget, shared by every worker on one store (or on one Prefect
server, as a global concurrency limit): what a SharedRateLimiter draws its grants from."""

from __future__ import annotations

import fcntl
import math
import time
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from forewarn.channels.rate import Grant
from forewarn.store import get_meta, insert_ignoring_conflicts, meta, writing


def limit_name(channel: str) -> str:
    """The Prefect global concurrency limit that is a channel's rate."""
    return f"forewarn-{channel}"


def prefect_grant(channel: str) -> Grant:
    """The send budget of `channel` as a Prefect global concurrency limit with slot decay
    (`prefect gcl create forewarn-sms --limit 100 --slot-decay-per-second 100`): each
    grant occupies its units' slots, waiting until the server has them free, and every
    worker on that server shares it. Strict: a missing limit is an error, never an
    unthrottled send."""
    from prefect.concurrency.sync import rate_limit

    name = limit_name(channel)

    def grant(units: float, rate: float, burst: float) -> float:
        rate_limit(name, occupy=max(1, math.ceil(units)), strict=True)
        return 0.0

    return grant


def rate_grant(engine: Engine, channel: str) -> Grant:
    """The shared send budget of `channel` for every worker on this store: a meta row
    holds the moment (seconds, the database's clock) the channel's next send is free.
    A grant of `units` at `rate` moves it on by units / rate, in one short transaction
    that holds the row (PostgreSQL) or the write lock (SQLite) for a moment; the answer
    is how many seconds from now the grant's first unit may go. A channel quiet for a
    while has up to `burst` units saved up, never more.

    On SQLite (every worker on this host) the moment is kept in a small file beside the
    database under an exclusive `flock` instead: the same budget, without joining the
    queue for SQLite's one write lock (claims, records and queueing hold it in turn, and
    a grant stuck behind them would hold up the channel's sends)."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if database and database != ":memory:":
        return _file_grant(Path(f"{database}.rate-{channel}"))
    key = f"rate:{channel}"
    writing(
        engine,
        lambda conn: insert_ignoring_conflicts(conn, meta, [{"key": key, "value": "0"}]),
        "rate budget",
    )
    hold = meta.update().where(meta.c.key == key).values(value=meta.c.value)

    def grant(units: float, rate: float, burst: float) -> float:
        def work(conn: Connection) -> float:
            conn.execute(hold)  # the row, or SQLite's write lock, is ours until commit
            now = _clock(conn)
            free = float(get_meta(conn, key) or 0)
            start = max(free, now - burst / rate)
            conn.execute(
                meta.update().where(meta.c.key == key), {"value": repr(start + units / rate)}
            )
            return start - now

        return writing(engine, work, f"{channel} send budget")

    return grant


def _file_grant(path: Path) -> Grant:
    """`rate_grant`'s budget in a file, for workers that share a host."""
    path.touch(exist_ok=True)

    def grant(units: float, rate: float, burst: float) -> float:
        with path.open("r+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
            now = time.time()
            free = float(handle.read() or 0)
            start = max(free, now - burst / rate)
            handle.seek(0)
            handle.write(repr(start + units / rate).ljust(24))
            return start - now

    return grant


def _clock(conn: Connection) -> float:
    """Now in seconds: the database's clock on PostgreSQL (workers on several hosts agree
    on it), this host's on SQLite (every worker is on this host)."""
    if conn.dialect.name == "postgresql":
        return float(
            conn.execute(text("SELECT extract(epoch FROM clock_timestamp())")).scalar_one()
        )
    return time.time()
