"""The topology pass of an import: every element row checked, orphans and cycles
dropped with their line and reason, the rest upserted in one go."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.engine import Connection

from forewarn.network.csvfile import TOPOLOGY_COLUMNS, Problem, read_rows
from forewarn.network.rows import MAX_ID, ImportReport, RowError, coordinates, identifier
from forewarn.network.tree import unrooted
from forewarn.store import elements, upsert


def import_topology(
    conn: Connection, path: Path, report: ImportReport, encoding: str | None = None
) -> None:
    rows: dict[str, tuple[int, dict[str, Any]]] = {}
    for item in read_rows(path, TOPOLOGY_COLUMNS, encoding):
        if isinstance(item, Problem):
            report.problems.append(item)
            continue
        line, raw = item
        try:
            row = _element_row(raw)
        except RowError as err:
            report.problems.append(Problem(path.name, line, str(err)))
            continue
        first = rows.get(row["element_id"])
        if first is not None:
            reason = f"duplicate element_id {row['element_id']!r} (first on line {first[0]})"
            report.problems.append(Problem(path.name, line, reason))
            continue
        rows[row["element_id"]] = (line, row)

    stored = {r[0]: r[1] for r in conn.execute(select(elements.c.element_id, elements.c.parent_id))}
    _drop_orphans(rows, stored, path.name, report)
    _drop_cycles(rows, stored, path.name, report)
    batch = [row for _, row in rows.values()]
    upsert(conn, elements, batch)
    report.elements = len(batch)


def _element_row(raw: dict[str, Any]) -> dict[str, Any]:
    """The row to store, made from the one read (each row is read into a dict of its own,
    and reusing it saves a million dicts on a large network)."""
    element_id = identifier(raw, "element_id")
    parent = raw["parent_id"] or None
    if parent is not None and len(parent) > MAX_ID:
        raise RowError(f"parent_id longer than {MAX_ID} characters")
    if parent == element_id:
        raise RowError("element is its own parent")
    if not raw["kind"]:
        raise RowError("kind is empty")
    raw["lat"], raw["lon"] = coordinates(raw)
    raw["parent_id"] = parent
    raw["kind"] = raw["kind"][:64].lower()
    raw["name"] = (raw["name"] or element_id)[:256]
    return raw


def _drop_orphans(
    rows: dict[str, tuple[int, dict[str, Any]]],
    stored: dict[str, str | None],
    name: str,
    report: ImportReport,
) -> None:
    """Skip rows whose parent is nowhere, then rows whose parent was skipped, and so on."""
    children: dict[str, list[str]] = {}
    for element_id, (_, row) in rows.items():
        if row["parent_id"]:
            children.setdefault(row["parent_id"], []).append(element_id)
    missing = [
        (e, f"unknown parent_id {row['parent_id']!r}")
        for e, (_, row) in rows.items()
        if row["parent_id"] and row["parent_id"] not in rows and row["parent_id"] not in stored
    ]
    while missing:
        element_id, reason = missing.pop()
        line, _ = rows.pop(element_id)
        report.problems.append(Problem(name, line, reason))
        for child in children.get(element_id, []):
            if child in rows and child not in stored:
                missing.append((child, f"parent {element_id!r} was skipped"))


def _drop_cycles(
    rows: dict[str, tuple[int, dict[str, Any]]],
    stored: dict[str, str | None],
    name: str,
    report: ImportReport,
) -> None:
    merged = dict(stored)
    merged.update({e: row["parent_id"] for e, (_, row) in rows.items()})
    ids = list(merged)
    index = {e: i for i, e in enumerate(ids)}
    parent = np.fromiter(
        (index.get(merged[e] or "", -1) for e in ids), dtype=np.int64, count=len(ids)
    )
    for position in np.flatnonzero(unrooted(parent)):
        element_id = ids[int(position)]
        if element_id in rows:
            line, _ = rows.pop(element_id)
            report.problems.append(Problem(name, line, "parent links form a cycle"))
