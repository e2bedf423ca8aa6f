"""Opening the store: an engine for its URL, SQLite's connection settings, and the schema
brought up to this version of forewarn."""

from __future__ import annotations

from functools import partial
from typing import Any

from pydantic import SecretStr
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine

from forewarn.migrations import upgrade
from forewarn.store.schema import metadata
from forewarn.store.transactions import serialize


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
