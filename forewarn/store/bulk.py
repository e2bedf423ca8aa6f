"""Writing many rows at once, portably: upserts and inserts that skip conflicts."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection


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
