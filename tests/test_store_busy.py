"""A busy store makes a writer wait and try again, never crash: SQLite's write lock held
by another writer past the busy timeout raised `database is locked` (issue 12, item 8:
`run-once` died after 251,809 messages of an exchange-sized fault)."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from forewarn.store import get_meta, make_engine, set_meta, writing


def hold_write_lock(db: Path, seconds: float) -> threading.Event:
    """Another writer takes SQLite's write lock for `seconds`; set once it holds it."""
    held = threading.Event()

    def hold() -> None:
        other = sqlite3.connect(db, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(seconds)
        other.execute("COMMIT")
        other.close()

    threading.Thread(target=hold, daemon=True).start()
    assert held.wait(10)
    return held


def test_a_write_meeting_a_held_lock_raises_without_writing(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    engine = make_engine(f"sqlite:///{db}", busy_timeout_s=0.1)
    hold_write_lock(db, 1.0)
    with pytest.raises(OperationalError, match="database is locked"), engine.begin() as conn:
        set_meta(conn, "k", "v")
    engine.dispose()


def test_a_write_meeting_a_held_lock_waits_and_goes_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "store.db"
    engine = make_engine(f"sqlite:///{db}", busy_timeout_s=0.1)
    hold_write_lock(db, 1.0)
    with caplog.at_level(logging.WARNING, logger="forewarn.store"):
        writing(engine, lambda conn: set_meta(conn, "k", "v"), "test write")
    with engine.connect() as conn:
        assert get_meta(conn, "k") == "v"
    assert any("store busy during test write" in r.getMessage() for r in caplog.records)
    engine.dispose()


def test_a_store_busy_for_too_long_still_says_so(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    engine = make_engine(f"sqlite:///{db}", busy_timeout_s=0.05)
    hold_write_lock(db, 3.0)
    with pytest.raises(OperationalError, match="database is locked"):
        writing(engine, lambda conn: set_meta(conn, "k", "v"), attempts=2, sleep=lambda s: None)
    engine.dispose()


def test_other_errors_are_not_retried(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    calls: list[int] = []

    def broken(conn: Connection) -> None:
        calls.append(1)
        raise OperationalError("SELECT nonsense", {}, sqlite3.OperationalError("no such table"))

    with pytest.raises(OperationalError):
        writing(engine, broken)
    assert calls == [1]
    engine.dispose()


def test_writers_of_one_process_take_turns_in_the_order_they_came(tmp_path: Path) -> None:
    # One writer goes again at once, 20 times (a big outage queued chunk after chunk);
    # another asks once, early. SQLite's waiters poll, so the second one used to wait
    # through most of the first one's writes (a channel's claim behind the whole queue).
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    order: list[str] = []
    started = threading.Event()

    def chunk(n: int) -> None:
        def work(conn: Connection) -> None:
            set_meta(conn, "chunk", str(n))
            started.set()
            time.sleep(0.03)  # the lock held a moment, as a chunk of rows holds it
            order.append(f"chunk {n}")

        writing(engine, work, "queueing")

    def queue_all() -> None:
        for n in range(20):
            chunk(n)

    def claim() -> None:
        def work(conn: Connection) -> None:
            set_meta(conn, "claim", "1")
            order.append("claim")

        writing(engine, work, "claim")

    queueing = threading.Thread(target=queue_all)
    queueing.start()
    assert started.wait(10)
    claiming = threading.Thread(target=claim)
    claiming.start()
    queueing.join(30)
    claiming.join(30)
    engine.dispose()
    assert len(order) == 21
    assert order.index("claim") <= 2, order  # behind the chunk it found, not all of them


def test_the_log_is_copied_back_by_the_bulk_writer_not_by_the_next_commit(
    tmp_path: Path,
) -> None:
    # At SQLite's default (a checkpoint in the commit that takes the log past 1,000
    # pages) a channel's claim paid 0.7 s for the log an outage's queueing had written.
    from sqlalchemy import text

    from forewarn.store import checkpoint

    db = tmp_path / "store.db"
    engine = make_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE chunk (n INTEGER, padding TEXT)"))
    for _ in range(3):  # three bulk chunks, ~6 MB of log: past 1,000 pages
        with engine.begin() as conn:
            rows = [{"n": n, "padding": "x" * 1000} for n in range(2000)]
            conn.execute(text("INSERT INTO chunk VALUES (:n, :padding)"), rows)
    before = db.stat().st_size  # the rows are still only in the log
    checkpoint(engine)
    after = db.stat().st_size
    engine.dispose()
    assert before < 1_000_000 < 6_000_000 < after, (before, after)
