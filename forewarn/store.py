"""The database schema shared by every stage, and small helpers around it.

SQLite by default, PostgreSQL by URL; each stage reads and writes its own tables.

Long because it is the one schema all stages share, read (and migrated) as a whole: every
table, stage by stage, then the few portable helpers (upsert, meta, locks) around them.
"""

from __future__ import annotations

import fcntl
import logging
import random
import secrets
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from pydantic import SecretStr
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import DBAPIError

from forewarn.migrations import upgrade

metadata = MetaData()
T = TypeVar("T")
log = logging.getLogger("forewarn.store")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, whatever the database."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use timezone-aware UTC")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


# --- network ---------------------------------------------------------------
elements = Table(
    "elements",
    metadata,
    Column("element_id", String(128), primary_key=True),
    Column("parent_id", String(128), nullable=True),
    Column("kind", String(64), nullable=False),
    Column("name", String(256), nullable=False),
    Column("lat", Float, nullable=True),
    Column("lon", Float, nullable=True),
)

premises = Table(
    "premises",
    metadata,
    Column("premise_id", String(128), primary_key=True),
    Column("element_id", String(128), nullable=False, index=True),
    Column("address", String(512), nullable=False),
    Column("postcode", String(32), nullable=False, index=True),
    Column("street", String(512), nullable=False, index=True),
    Column("lat", Float, nullable=True),
    Column("lon", Float, nullable=True),
)

customers = Table(
    "customers",
    metadata,
    Column("customer_id", String(128), primary_key=True),
    Column("premise_id", String(128), nullable=False, index=True),
    Column("phone", String(32), nullable=True),
    Column("email", String(320), nullable=True),
    Column("social", String(320), nullable=True),
    Column("channels", String(128), nullable=False),
    Column("locale", String(16), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("opted_out", Boolean, nullable=False, default=False),
)

geocode_cache = Table(
    "geocode_cache",
    metadata,
    Column("query", String(700), primary_key=True),
    Column("lat", Float, nullable=True),
    Column("lon", Float, nullable=True),
    Column("looked_up_at", UTCDateTime, nullable=False),
)

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# --- feeds -----------------------------------------------------------------
inbox = Table(
    "inbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(64), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("processed_at", UTCDateTime, nullable=True, index=True),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("reason", Text, nullable=False),
    Column("raw", Text, nullable=False),
)

feed_cursors = Table(
    "feed_cursors",
    metadata,
    Column("source", String(512), primary_key=True),
    Column("position", Integer, nullable=False),
)

# --- detection -------------------------------------------------------------
element_states = Table(
    "element_states",
    metadata,
    Column("element_id", String(128), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("since", UTCDateTime, nullable=False),
    Column("observed_at", UTCDateTime, nullable=False),
    Column("source", String(64), nullable=False),
    # Confirmed: down long enough to count, and not yet up long enough to clear.
    Column("confirmed", Boolean, nullable=False),
    Column("down_since", UTCDateTime, nullable=True),
)

# --- incidents -------------------------------------------------------------
# Which incidents are cases, at most one open per line (migration 0006 says the same).
ONE_OPEN_CASE = text(
    "scope = 'premise' AND status <> 'resolved' AND source IN ('detected', 'reply')"
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("title", String(256), nullable=False),
    # What the title says (templates/words/<locale>/title_<kind>.txt) and its values as
    # JSON, for the page's other locales; NULL for a title ops wrote.
    Column("title_kind", String(48), nullable=True),
    Column("title_params", Text, nullable=True),
    Column("status", String(16), nullable=False),
    Column("scope", String(16), nullable=False),
    Column("source", String(16), nullable=False),
    Column("root_element", String(128), nullable=True, index=True),
    Column("public", Boolean, nullable=False),
    Column("notify", Boolean, nullable=False),
    Column("cause", Text, nullable=True),
    Column("etr", UTCDateTime, nullable=True),
    Column("area_name", String(256), nullable=True),
    Column("premises_count", Integer, nullable=False, default=0),
    Column("customers_count", Integer, nullable=False, default=0),
    Column("started_at", UTCDateTime, nullable=False),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime, nullable=True),
    Column("next_update_at", UTCDateTime, nullable=True),
    # The incident a single-premise case was split from (still down, or an OUT reply).
    Column("parent_id", Integer, nullable=True),
    # The announced estimate that customers were already warned would be missed.
    Column("etr_warned", UTCDateTime, nullable=True),
    # Planned work: when it starts and ends.
    Column("scheduled_for", UTCDateTime, nullable=True),
    Column("scheduled_until", UTCDateTime, nullable=True),
    # One open case per line: a single-premise incident of the detection cycle or of an
    # OUT reply (a case, restoration.open_case) is never opened twice for one element.
    Index(
        "uq_incidents_one_open_case",
        "root_element",
        unique=True,
        sqlite_where=ONE_OPEN_CASE,
        postgresql_where=ONE_OPEN_CASE,
    ),
)

incident_updates = Table(
    "incident_updates",
    metadata,
    Column("incident_id", Integer, ForeignKey("incidents.id"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("event", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("body", Text, nullable=False),
    # What the body says, so the page can say it in any locale: the kind of words
    # (templates/words/<locale>/update_<kind>.txt) and their values as JSON; NULL for free
    # text (an ops note), shown as written.
    Column("kind", String(48), nullable=True),
    Column("params", Text, nullable=True),
    Column("etr", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("next_update_at", UTCDateTime, nullable=True),
    Column("notify", Boolean, nullable=False),
    Column("deliveries_queued", Boolean, nullable=False, default=False),
)

etr_history = Table(
    "etr_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=False, index=True),
    Column("etr", UTCDateTime, nullable=True),
    Column("set_at", UTCDateTime, nullable=False),
    Column("reason", Text, nullable=False),
    # Whether customers were told this estimate (small wobbles are kept, not announced).
    Column("announced", Boolean, nullable=False, default=True),
)

incident_premises = Table(
    "incident_premises",
    metadata,
    Column("incident_id", Integer, ForeignKey("incidents.id"), primary_key=True),
    Column("premise_id", String(128), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("added_seq", Integer, nullable=False),
    # The update that last changed this premise's state (who hears "restored" when).
    Column("changed_seq", Integer, nullable=True),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", Integer, nullable=False),
    Column("update_seq", Integer, nullable=False),
    # The customer, or "" for a public post; a partner key for webhooks.
    Column("customer_id", String(128), nullable=False),
    Column("channel", String(32), nullable=False),
    # queued -> sending -> sent | failed | cancelled; retryable failures go back to queued.
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("rank", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("claimed_at", UTCDateTime, nullable=True),
    # Who holds a `sending` row ("host:pid:start"), until when (renewed while its sends
    # run), and the claim's token: only the claim that still holds a row records it.
    Column("claimed_by", String(128), nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("claim_token", String(32), nullable=True),
    Column("sent_at", UTCDateTime, nullable=True),
    # What was sent, to whom, and the provider's id for it: the customer's history, and
    # what a restart compares with the provider before it resends anything.
    Column("recipient", String(512), nullable=True),
    Column("subject", Text, nullable=True),
    Column("body", Text, nullable=True),
    Column("provider_ref", String(256), nullable=True, index=True),
    Column("provider_status", String(32), nullable=True),
    Column("error", Text, nullable=True),
    UniqueConstraint("incident_id", "update_seq", "customer_id", "channel", name="uq_delivery"),
    # The dispatch queue in the order it is served; what a customer was already sent.
    Index("ix_deliveries_queue", "status", "rank", "id"),
    Index("ix_deliveries_customer", "customer_id", "incident_id"),
)


# --- conversation -----------------------------------------------------------
replies = Table(
    "replies",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("channel", String(32), nullable=False),
    Column("sender", String(512), nullable=False),
    # Null when the sender matches no customer.
    Column("customer_id", String(128), nullable=True, index=True),
    Column("body", Text, nullable=False),
    Column("provider_ref", String(256), nullable=True),
    # What forewarn made of it: stop, start, help, or other.
    Column("action", String(16), nullable=False),
    Column("answer", Text, nullable=True),
)

# Webhook requests already handled, by the sender's idempotency token.
seen_requests = Table(
    "seen_requests",
    metadata,
    Column("token", String(256), primary_key=True),
    Column("received_at", UTCDateTime, nullable=False),
)


def make_engine(url: str | SecretStr, busy_timeout_s: float = 30.0) -> Engine:
    """Create an engine for `url` and bring its schema to this version of forewarn.

    On SQLite a writer finding the write lock taken waits up to `busy_timeout_s`, then
    `writing` makes it step back and try again."""
    engine = create_engine(url.get_secret_value() if isinstance(url, SecretStr) else url)
    if engine.dialect.name == "sqlite":
        event.listen(
            engine, "connect", partial(_sqlite_pragmas, busy_ms=int(busy_timeout_s * 1000))
        )
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            serialize(conn, "schema")  # two processes starting at once upgrade once
        upgrade(conn, metadata)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, busy_ms: int = 30000) -> None:
    # WAL lets the receiver write while a cycle reads; NORMAL sync is durable in WAL mode
    # across a process crash (only an OS crash can lose the last transaction).
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={busy_ms:d}")
    # SQLite copies the log back into the database (a checkpoint) in the commit that takes
    # the log past this many pages: at the default 1,000 that was often a channel's claim,
    # 0.7 s late, after the queueing of an outage had filled the log. The queueing now
    # checkpoints after each chunk (`checkpoint`); this is the backstop (about 40 MB).
    cursor.execute("PRAGMA wal_autocheckpoint=10000")
    cursor.close()


# SQLite's "database is locked"/"busy"; PostgreSQL's serialization failure, deadlock and
# lock timeout: the store was busy, nothing was written, the same transaction may go again.
_BUSY_SQLSTATES = frozenset({"40001", "40P01", "55P03"})
WRITE_ATTEMPTS = 12
# Jitter from the system's entropy: no shared generator state touched from many threads.
_JITTER = random.SystemRandom()


def is_busy(err: DBAPIError) -> bool:
    """Whether `err` says only that another writer held the store (worth trying again)."""
    message = str(err.orig).lower()
    if "database is locked" in message or "database is busy" in message:
        return True
    return getattr(err.orig, "sqlstate", None) in _BUSY_SQLSTATES


def writing(
    engine: Engine,
    work: Callable[[Connection], T],
    what: str = "write",
    attempts: int = WRITE_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `work` in a transaction of its own; if the store is busy (SQLite's write lock
    held past the busy timeout by another writer, a PostgreSQL deadlock), roll back, wait
    a growing, jittered moment and run it again, up to `attempts` times, saying so in the
    log. `work` must do nothing outside the store that cannot be done twice.

    On SQLite the writers of this process take turns in the order they came."""
    with _turns(engine):
        for attempt in range(1, attempts + 1):
            try:
                with engine.begin() as conn:
                    return work(conn)
            except DBAPIError as err:
                if attempt == attempts or not is_busy(err):
                    raise
                pause = min(0.05 * 2 ** (attempt - 1), 2.0) * (0.5 + _JITTER.random())
                log.warning(
                    "store busy during %s (attempt %d of %d): %s; trying again in %.2f s",
                    what, attempt, attempts, err.orig, pause,
                )  # fmt: skip
                sleep(pause)
    raise AssertionError("unreachable")  # pragma: no cover


class Turns:
    """A reentrant lock served first come, first served. SQLite's waiters for its write
    lock poll, so a writer that goes again at once (queueing a big outage's rows chunk
    after chunk) kept the others (the channels' claims) waiting through all of it."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._issued = self._serving = 0
        self._owner: int | None = None
        self._depth = 0

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Wait for this thread's turn (at once if it already has it), then hold it."""
        me = threading.get_ident()
        with self._changed:
            if self._owner != me:
                ticket, self._issued = self._issued, self._issued + 1
                self._changed.wait_for(lambda: self._serving == ticket)
                self._owner = me
            self._depth += 1
        try:
            yield
        finally:
            with self._changed:
                self._depth -= 1
                if not self._depth:
                    self._owner, self._serving = None, self._serving + 1
                    self._changed.notify_all()


_TURNS: dict[str, Turns] = {}
_TURNS_LOCK = threading.Lock()


def _turns(engine: Engine) -> AbstractContextManager[None]:
    """The turns of this process's writers to `engine`'s SQLite file (none elsewhere)."""
    if engine.dialect.name != "sqlite":
        return nullcontext()
    with _TURNS_LOCK:
        turns = _TURNS.setdefault(str(engine.url.database), Turns())
    return turns.turn()


def checkpoint(engine: Engine) -> None:
    """Copy SQLite's write-ahead log back into the database now, without waiting for or
    holding back readers and writers (a bulk writer's chore, off everyone else's commit)."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")


def now_utc() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)


def _insert(conn: Connection, table: Table) -> Any:
    dialect = conn.dialect.name
    if dialect == "sqlite":
        return sqlite.insert(table)
    if dialect == "postgresql":
        return postgresql.insert(table)
    raise NotImplementedError(f"upserts are not implemented for {dialect}")


def upsert(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], chunk: int = 20_000
) -> None:
    """Insert rows, updating every non-key column of rows whose primary key already exists."""
    if not rows:
        return
    keys = [c.name for c in table.primary_key.columns]
    stmt = _insert(conn, table)
    stmt = stmt.on_conflict_do_update(
        index_elements=keys, set_={c: stmt.excluded[c] for c in rows[0] if c not in keys}
    )
    _insert_fast(conn, table, stmt, rows, chunk)


def insert_ignoring_conflicts(
    conn: Connection, table: Table, rows: Iterable[Mapping[str, Any]], chunk: int = 20_000
) -> None:
    """Insert rows, silently skipping any that would break a unique constraint."""
    batch = list(rows)
    if batch:
        _insert_fast(conn, table, _insert(conn, table).on_conflict_do_nothing(), batch, chunk)


def _insert_fast(
    conn: Connection, table: Table, stmt: Any, rows: Sequence[Mapping[str, Any]], chunk: int
) -> None:
    """Run an insert over many rows (all with the same keys) as one compiled statement."""
    columns = list(rows[0])
    # Compiled once, with plain tuples handed to the driver: SQLAlchemy's per-row parameter
    # handling costs more than SQLite's insert itself on the hot paths (import, states).
    compiled = stmt.compile(dialect=conn.dialect, column_keys=columns)
    order = compiled.positiontup
    # Columns the rows leave out take their scalar defaults, as SQLAlchemy would give them.
    defaults = {
        c.name: getattr(c.default, "arg", None)
        for c in table.columns
        if c.name not in columns and c.default is not None and c.default.is_scalar
    }
    processors = {
        c: p for c in columns if (p := table.c[c].type.bind_processor(conn.dialect)) is not None
    }

    names = list(order) if order is not None else [*columns, *defaults]
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        # Column by column: a list per column and one zip cost far less than a function
        # call per cell, which had been most of the import's time outside SQLite.
        values = [
            _column_values(part, c, defaults.get(c), c not in columns, processors.get(c))
            for c in names
        ]
        if order is not None:
            params: list[Any] = list(zip(*values, strict=True))
        else:
            params = [dict(zip(names, v, strict=True)) for v in zip(*values, strict=True)]
        conn.exec_driver_sql(str(compiled), params)


def _column_values(
    rows: Sequence[Mapping[str, Any]],
    column: str,
    default: Any,
    absent: bool,
    convert: Callable[[Any], Any] | None,
) -> list[Any]:
    """One column's values for the driver, converted by the type's bind processor."""
    if absent:
        return [default if convert is None or default is None else convert(default)] * len(rows)
    raw = [row[column] for row in rows]
    if convert is None:
        return raw
    # Many rows share one value (the ledger's fan-out stamps every row with the same
    # moment): a conversion is reused while the same object repeats.
    out: list[Any] = []
    last_raw: Any = _NOTHING
    last: Any = None
    for value in raw:
        if value is None:
            out.append(None)
            continue
        if value is not last_raw:
            last_raw, last = value, convert(value)
        out.append(last)
    return out


_NOTHING = object()


def get_meta(conn: Connection, key: str) -> str | None:
    """Read one value from the key/value meta table."""
    row = conn.execute(meta.select().where(meta.c.key == key)).first()
    return None if row is None else str(row.value)


def serialize(conn: Connection, name: str) -> None:
    """Hold the lock `name` until this transaction ends, so that two workers doing the
    same job (two detection cycles) take turns: an advisory lock on PostgreSQL, the
    database's write lock on SQLite. Taking it again in the same transaction costs
    nothing."""
    current = conn.get_nested_transaction() or conn.get_transaction()
    held: dict[str, object] = conn.info.setdefault(_HELD_LOCKS, {})
    # Remembered per transaction (a savepoint rolled back may have let the lock go).
    if current is not None and held.get(name) is current:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": zlib.crc32(name.encode())})
    else:
        set_meta(conn, f"lock:{name}", "held")
    held[name] = current


# conn.info key: the locks this connection holds, each with the transaction holding it.
_HELD_LOCKS = "forewarn.held_locks"


def secret_key(conn: Connection, name: str) -> bytes:
    """A random key made on first use and kept in the store (e.g. to sign unsubscribe links)."""
    key = f"secret:{name}"
    insert_ignoring_conflicts(conn, meta, [{"key": key, "value": secrets.token_hex(32)}])
    return bytes.fromhex(get_meta(conn, key) or "")


def set_meta(conn: Connection, key: str, value: str) -> None:
    """Write one value to the key/value meta table."""
    upsert(conn, meta, [{"key": key, "value": value}])


def rate_grant(engine: Engine, channel: str) -> Callable[[float, float, float], float]:
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
    with engine.begin() as conn:
        insert_ignoring_conflicts(conn, meta, [{"key": key, "value": "0"}])
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


def _file_grant(path: Path) -> Callable[[float, float, float], float]:
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
