"""Incident lifecycle for detected faults: open, fold in, expand, resolve.

One incident per root cause; every change is an ordered, numbered update, and the
updates that customers should hear about are marked `notify`.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection, Row

from forewarn.detection import Fault
from forewarn.network import NetworkIndex
from forewarn.store import (
    elements,
    etr_history,
    incident_premises,
    incident_updates,
    incidents,
    premises,
)


@dataclass(frozen=True, slots=True)
class Policy:
    """How incidents are presented; from Settings."""

    update_every: timedelta = timedelta(hours=2)
    privacy_floor: int = 10
    notify_single_premise: bool = False


@dataclass(slots=True)
class Changes:
    """What one reconciliation did, by incident id."""

    opened: list[int] = field(default_factory=list)
    expanded: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    merged: list[int] = field(default_factory=list)

    @property
    def any(self) -> bool:
        """True when something changed that the page and customers should see."""
        return bool(self.opened or self.expanded or self.resolved or self.merged)


def reconcile(
    conn: Connection,
    index: NetworkIndex,
    faults: Sequence[Fault],
    down_elements: set[str],
    now: datetime,
    policy: Policy,
) -> Changes:
    """Bring detected incidents in line with the current faults."""
    tree = index.tree
    changes = Changes()
    open_rows = {
        row.id: row
        for row in conn.execute(
            select(incidents).where(
                incidents.c.source == "detected", incidents.c.status != "resolved"
            )
        )
        if row.root_element in tree.index
    }
    by_root = {row.root_element: row.id for row in open_rows.values()}
    matched: set[int] = set()
    # Area faults first, widest first; then lone lines, which do not keep an area incident
    # open on their own: when the area fault clears, a line still down gets its own case.
    ordered = sorted(faults, key=lambda f: (f.scope != "area", int(tree.depth[tree.index[f.root]])))
    for fault in ordered:
        node = tree.index[fault.root]
        holder = _holder(index, by_root, node)
        if holder is not None and (
            fault.scope == "area" or holder in matched or by_root.get(fault.root) == holder
        ):
            matched.add(holder)
            continue
        below = _open_below(index, open_rows.values(), node)
        if below:
            main, *others = sorted(below)
            _expand(conn, index, open_rows[main], fault, now, policy)
            for other in others:
                _merge(conn, other, main, now)
                changes.merged.append(other)
                del by_root[open_rows.pop(other).root_element]
            by_root.pop(open_rows[main].root_element, None)
            by_root[fault.root] = main
            matched.add(main)
            changes.expanded.append(main)
            continue
        incident_id = _open(conn, index, fault, now, policy)
        by_root[fault.root] = incident_id
        matched.add(incident_id)
        changes.opened.append(incident_id)
    for incident_id in sorted(set(open_rows) - matched):
        _resolve(conn, incident_id, down_elements, now)
        changes.resolved.append(incident_id)
    return changes


def _holder(index: NetworkIndex, by_root: dict[str, int], node: int) -> int | None:
    """The open incident rooted at `node` or at one of its ancestors."""
    tree = index.tree
    while node >= 0:
        found = by_root.get(tree.ids[node])
        if found is not None:
            return found
        node = int(tree.parent[node])
    return None


def _open_below(index: NetworkIndex, rows: Any, node: int) -> list[int]:
    tree = index.tree
    ordered = sorted((int(tree.order[tree.index[r.root_element]]), r.id) for r in rows)
    start, end = int(tree.order[node]), int(tree.order[node] + tree.size[node])
    lo = bisect.bisect_left(ordered, (start, -1))
    hi = bisect.bisect_left(ordered, (end, -1))
    return [incident_id for _, incident_id in ordered[lo:hi]]


def area_of(conn: Connection, index: NetworkIndex, root: str, floor: int) -> str:
    """The name of the smallest element at or above `root` serving at least `floor` premises."""
    tree = index.tree
    node = tree.index[root]
    while tree.parent[node] >= 0 and tree.leaf_count[node] < floor:
        node = int(tree.parent[node])
    name = conn.execute(
        select(elements.c.name).where(elements.c.element_id == tree.ids[node])
    ).scalar_one()
    return str(name)


def _open(
    conn: Connection, index: NetworkIndex, fault: Fault, now: datetime, policy: Policy
) -> int:
    rows = index.premises_under(fault.root)
    area = area_of(conn, index, fault.root, policy.privacy_floor)
    is_area = fault.scope == "area"
    notify = is_area or policy.notify_single_premise
    values = {
        "title": f"Outage: {area}" if is_area else f"Line down at one premise ({fault.root})",
        "status": "investigating",
        "scope": fault.scope,
        "source": "detected",
        "root_element": fault.root,
        "public": is_area,
        "notify": notify,
        "area_name": area,
        "premises_count": len(rows),
        "customers_count": len(index.customers_of(rows)),
        "started_at": fault.since,
        "opened_at": now,
        "updated_at": now,
        "next_update_at": now + policy.update_every if notify else None,
    }
    key = conn.execute(incidents.insert().values(**values)).inserted_primary_key
    assert key is not None
    incident_id = int(key[0])
    _add_premises(conn, incident_id, [index.premise_ids[int(r)] for r in rows], seq=1)
    body = (
        f"We are investigating a fault affecting about {rounded(len(rows))} premises "
        f"in {area}. No estimate yet."
    )
    _add_update(conn, incident_id, 1, "opened", "investigating", body, now, policy, notify)
    conn.execute(
        etr_history.insert().values(
            incident_id=incident_id, etr=None, set_at=now, reason="no estimate yet"
        )
    )
    return incident_id


def _expand(
    conn: Connection,
    index: NetworkIndex,
    row: Row[Any],
    fault: Fault,
    now: datetime,
    policy: Policy,
) -> None:
    """The fault turned out bigger: move the root up and add the premises behind it."""
    rows = index.premises_under(fault.root)
    ids = [index.premise_ids[int(r)] for r in rows]
    have = set(
        conn.execute(
            select(incident_premises.c.premise_id).where(incident_premises.c.incident_id == row.id)
        ).scalars()
    )
    seq = _next_seq(conn, row.id)
    _add_premises(conn, row.id, [p for p in ids if p not in have], seq)
    area = area_of(conn, index, fault.root, policy.privacy_floor)
    # An incident nobody was told about (a lone line) becomes news for everyone now.
    event = "expanded" if row.notify else "opened"
    body = (
        f"The fault is wider than first seen: about {rounded(len(rows))} premises "
        f"in {area} are affected."
    )
    _add_update(conn, row.id, seq, event, row.status, body, now, policy, True)
    conn.execute(
        update(incidents)
        .where(incidents.c.id == row.id)
        .values(
            root_element=fault.root,
            scope="area" if fault.scope == "area" else row.scope,
            public=row.public or fault.scope == "area",
            notify=True,
            title=f"Outage: {area}",
            area_name=area,
            premises_count=len(rows),
            customers_count=len(index.customers_of(rows)),
            started_at=min(row.started_at, fault.since),
            updated_at=now,
            next_update_at=now + policy.update_every,
        )
    )


def _merge(conn: Connection, incident_id: int, into: int, now: datetime) -> None:
    seq = _next_seq(conn, incident_id)
    conn.execute(
        incident_updates.insert().values(
            incident_id=incident_id,
            seq=seq,
            event="merged",
            status="resolved",
            body=f"Merged into incident {into}.",
            created_at=now,
            notify=False,
            deliveries_queued=True,
        )
    )
    conn.execute(
        update(incidents)
        .where(incidents.c.id == incident_id)
        .values(status="resolved", resolved_at=now, updated_at=now, next_update_at=None)
    )


def _resolve(conn: Connection, incident_id: int, down_elements: set[str], now: datetime) -> None:
    """The fault cleared: premises whose own line is back are restored; the rest are not."""
    members = conn.execute(
        select(incident_premises.c.premise_id, premises.c.element_id)
        .join(premises, premises.c.premise_id == incident_premises.c.premise_id)
        .where(incident_premises.c.incident_id == incident_id)
    ).all()
    still_down = [p for p, element in members if element in down_elements]
    seq = _next_seq(conn, incident_id)
    conn.execute(
        update(incident_premises)
        .where(incident_premises.c.incident_id == incident_id)
        .values(state="restored")
    )
    if still_down:
        conn.execute(
            update(incident_premises)
            .where(
                incident_premises.c.incident_id == incident_id,
                incident_premises.c.premise_id.in_(still_down),
            )
            .values(state="still_down")
        )
    notify = bool(
        conn.execute(select(incidents.c.notify).where(incidents.c.id == incident_id)).scalar()
    )
    body = "Service has been restored. Thank you for your patience."
    conn.execute(
        incident_updates.insert().values(
            incident_id=incident_id,
            seq=seq,
            event="restored",
            status="resolved",
            body=body,
            created_at=now,
            notify=notify,
            deliveries_queued=not notify,
        )
    )
    conn.execute(
        update(incidents)
        .where(incidents.c.id == incident_id)
        .values(status="resolved", resolved_at=now, updated_at=now, next_update_at=None)
    )


def _add_premises(conn: Connection, incident_id: int, premise_ids: list[str], seq: int) -> None:
    if premise_ids:
        conn.execute(
            incident_premises.insert(),
            [
                {"incident_id": incident_id, "premise_id": p, "state": "affected", "added_seq": seq}
                for p in premise_ids
            ],
        )


def _add_update(
    conn: Connection,
    incident_id: int,
    seq: int,
    event: str,
    status: str,
    body: str,
    now: datetime,
    policy: Policy,
    notify: bool,
) -> None:
    conn.execute(
        incident_updates.insert().values(
            incident_id=incident_id,
            seq=seq,
            event=event,
            status=status,
            body=body,
            created_at=now,
            next_update_at=now + policy.update_every if notify else None,
            notify=notify,
            deliveries_queued=not notify,
        )
    )


def _next_seq(conn: Connection, incident_id: int) -> int:
    current = conn.execute(
        select(func.max(incident_updates.c.seq)).where(
            incident_updates.c.incident_id == incident_id
        )
    ).scalar()
    return int(current or 0) + 1


def rounded(count: int) -> str:
    """Counts on the page and in messages are rounded: no single premise stands out."""
    if count < 10:
        return str(count)
    magnitude = 10 ** max(len(str(count)) - 2, 0)
    return f"{round(count / magnitude) * magnitude:,}"
