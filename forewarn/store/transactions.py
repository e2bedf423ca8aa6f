"""Transactions on the store: writes retried while it is busy, writers taking turns,
named locks held until commit, and SQLite's log copied back on a bulk writer's time."""

from __future__ import annotations

import logging
import random
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from forewarn.store.schema import set_meta

T = TypeVar("T")
# Named for the package, as before it was split: log lines and filters on "forewarn.store"
# (tests/test_store_busy.py) stay as they were.
log = logging.getLogger("forewarn.store")

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


# By SQLite file, not by engine: SQLite's write lock is the file's, and every engine of
# this process on one file (the receiver's, a drill's, a test's workers') queues for it.
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
