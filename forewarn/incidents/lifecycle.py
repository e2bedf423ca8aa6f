"""Incident lifecycle for detected faults: open, fold in, expand, resolve.

One incident per root cause; every change is an ordered, numbered update, and the
updates that customers should hear about are marked `notify`.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection, Row

from forewarn.detection import Fault
from forewarn.detection.tree import IntArray
from forewarn.incidents.cadence import Cadence
from forewarn.network import NetworkIndex
from forewarn.store import (
    customers,
    elements,
    etr_history,
    incident_premises,
    incident_updates,
    incidents,
    insert_ignoring_conflicts,
    premises,
)
from forewarn.texts import title_columns, title_words, update_columns, update_words


@dataclass(frozen=True, slots=True)
class Policy:
    """How incidents are presented and followed up; from Settings."""

    cadence: Cadence = field(default_factory=Cadence)
    privacy_floor: int = 10
    notify_single_premise: bool = False
    # Estimate changes smaller than this are kept, not announced (no flip-flopping).
    etr_threshold: timedelta = timedelta(minutes=30)
    # Customers hear this long before an estimate passes that it will be missed.
    etr_warning: timedelta = timedelta(minutes=30)
    # An element degraded this long opens an at-risk incident.
    degraded_after: timedelta = timedelta(minutes=15)
    # Planned work is announced this long before it starts (and again at start and end).
    notices: tuple[timedelta, ...] = (timedelta(hours=72), timedelta(hours=24))


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
    """Bring detected incidents in line with the current faults (faults wholly inside
    planned work in progress, or inside an open incident ops opened, are suppressed)."""
    tree = index.tree
    changes = Changes()
    planned = covered_premises(conn, index)
    faults = [f for f in faults if len(planned) == 0 or len(_reached(index, f.root, planned))]
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
            _expand(conn, index, open_rows[main], fault, now, policy, planned)
            for other in others:
                _merge(conn, other, main, now)
                changes.merged.append(other)
                del by_root[open_rows.pop(other).root_element]
            by_root.pop(open_rows[main].root_element, None)
            by_root[fault.root] = main
            matched.add(main)
            changes.expanded.append(main)
            continue
        incident_id = _open(conn, index, fault, now, policy, planned)
        by_root[fault.root] = incident_id
        matched.add(incident_id)
        changes.opened.append(incident_id)
    for incident_id in sorted(matched & set(open_rows)):
        if open_rows[incident_id].scope == "area" and _restore_partly(
            conn, index, incident_id, down_elements, now, policy
        ):
            changes.expanded.append(incident_id)
    for incident_id in sorted(set(open_rows) - matched):
        resolve(conn, index, incident_id, down_elements, now, policy)
        changes.resolved.append(incident_id)
    return changes


def covered_premises(conn: Connection, index: NetworkIndex) -> IntArray:
    """Premise rows whose faults are already accounted for, sorted: inside planned work in
    progress (expected), or in an open incident ops opened by hand (already being told)."""
    working = conn.execute(
        select(incident_premises.c.premise_id)
        .join(incidents, incidents.c.id == incident_premises.c.incident_id)
        .where(
            ((incidents.c.source == "maintenance") & (incidents.c.status == "in_progress"))
            | ((incidents.c.source == "ops") & (incidents.c.status != "resolved"))
        )
    ).scalars()
    wanted = set(working)
    if not wanted:
        return np.array([], dtype=np.int64)
    return np.array(
        [row for row, premise in enumerate(index.premise_ids) if premise in wanted], dtype=np.int64
    )


def _reached(index: NetworkIndex, root: str, planned: IntArray) -> IntArray:
    """The premise rows a fault at `root` reaches, less those already covered."""
    rows = index.premises_under(root)
    return rows if len(planned) == 0 else np.setdiff1d(rows, planned, assume_unique=True)


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
    conn: Connection,
    index: NetworkIndex,
    fault: Fault,
    now: datetime,
    policy: Policy,
    planned: IntArray,
) -> int:
    rows = _reached(index, fault.root, planned)
    area = area_of(conn, index, fault.root, policy.privacy_floor)
    is_area = fault.scope == "area"
    title = (
        title_words("outage", area=area)
        if is_area
        else title_words("line_down", element=fault.root)
    )
    return open_incident(
        conn, index, rows,
        title,
        now, policy, source="detected", root_element=fault.root,
        notify=is_area or policy.notify_single_premise, public=is_area, started=fault.since,
        body=update_words("opened", premises=rounded(len(rows)), area=area),
    )  # fmt: skip


def open_incident(
    conn: Connection,
    index: NetworkIndex,
    rows: IntArray,
    title: str,
    now: datetime,
    policy: Policy,
    *,
    source: str,
    root_element: str,
    notify: bool,
    body: str,
    public: bool | None = None,
    started: datetime | None = None,
    status: str = "investigating",
    event: str = "opened",
    scheduled: tuple[datetime, datetime] | None = None,
) -> int:
    """Open an incident over these premise rows (detected, by ops, at risk or planned)."""
    area = area_of(conn, index, root_element, policy.privacy_floor)
    is_area = len(rows) > 1
    values = {
        **title_columns(title),
        "status": status,
        "scope": "area" if is_area else "premise",
        "source": source,
        "root_element": root_element,
        "public": is_area and len(rows) >= policy.privacy_floor if public is None else public,
        "notify": notify,
        "area_name": area,
        "premises_count": len(rows),
        "customers_count": len(index.customers_of(rows)),
        "started_at": started or now,
        "opened_at": now,
        "updated_at": now,
        "scheduled_for": scheduled[0] if scheduled else None,
        "scheduled_until": scheduled[1] if scheduled else None,
    }
    key = conn.execute(incidents.insert().values(**values)).inserted_primary_key
    assert key is not None
    incident_id = int(key[0])
    _add_premises(conn, incident_id, [index.premise_ids[int(r)] for r in rows], seq=1)
    promise: bool | None = None if scheduled else True
    add_update(conn, incident_id, event, status, body, now, notify, policy, next_update=promise)
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
    planned: IntArray,
) -> None:
    """The fault turned out bigger: move the root up and add the premises behind it."""
    rows = _reached(index, fault.root, planned)
    ids = [index.premise_ids[int(r)] for r in rows]
    have = set(
        conn.execute(
            select(incident_premises.c.premise_id).where(incident_premises.c.incident_id == row.id)
        ).scalars()
    )
    seq = next_seq(conn, row.id)
    _add_premises(conn, row.id, [p for p in ids if p not in have], seq)
    area = area_of(conn, index, fault.root, policy.privacy_floor)
    # An incident nobody was told about (a lone line) becomes news for everyone now.
    event = "expanded" if row.notify else "opened"
    body = update_words("expanded", premises=rounded(len(rows)), area=area)
    started = min(row.started_at, fault.since)
    add_update(conn, row.id, event, row.status, body, now, True, policy, started=started)
    conn.execute(
        update(incidents)
        .where(incidents.c.id == row.id)
        .values(
            root_element=fault.root,
            scope="area" if fault.scope == "area" else row.scope,
            public=row.public or fault.scope == "area",
            notify=True,
            **title_columns(title_words("outage", area=area)),
            area_name=area,
            premises_count=len(rows),
            customers_count=len(index.customers_of(rows)),
            started_at=started,
        )
    )


def _merge(conn: Connection, incident_id: int, into: int, now: datetime) -> None:
    seq = next_seq(conn, incident_id)
    body = update_words("merged", into=into)
    conn.execute(
        incident_updates.insert().values(
            incident_id=incident_id,
            seq=seq,
            event="merged",
            status="resolved",
            body=body,
            **update_columns(body),
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


def resolve(
    conn: Connection,
    index: NetworkIndex,
    incident_id: int,
    down_elements: Collection[str],
    now: datetime,
    policy: Policy,
) -> None:
    """The fault is fixed: premises whose own line is back hear "restored"; those still
    down become single-premise cases of their own ("your line still looks down")."""
    row = conn.execute(select(incidents).where(incidents.c.id == incident_id)).one()
    members, down = _affected(conn, index, incident_id, down_elements)
    still_down = [(p, e) for (p, e), is_down in zip(members, down, strict=True) if is_down]
    seq = next_seq(conn, incident_id)
    _set_state(conn, incident_id, [p for p, _ in members], "restored", seq)
    _set_state(conn, incident_id, [p for p, _ in still_down], "still_down", seq)
    body = update_words("restored", still_down=rounded(len(still_down)) if still_down else None)
    notify = bool(row.notify)
    add_update(
        conn, incident_id, "restored", "resolved", body, now, notify, policy, next_update=None
    )
    conn.execute(
        update(incidents)
        .where(incidents.c.id == incident_id)
        .values(status="resolved", resolved_at=now, next_update_at=None)
    )
    for premise_id, element_id in still_down:
        open_case(conn, premise_id, element_id, row, "still_down", now, policy, row.notify)


def _restore_partly(
    conn: Connection,
    index: NetworkIndex,
    incident_id: int,
    down_elements: Collection[str],
    now: datetime,
    policy: Policy,
) -> bool:
    """Part of an open incident is back: those premises hear "restored" now."""
    members, down = _affected(conn, index, incident_id, down_elements)
    back = [p for (p, _), is_down in zip(members, down, strict=True) if not is_down]
    if not back or len(back) == len(members):
        return False  # nothing back yet, or everything: that is the incident resolving
    row = conn.execute(select(incidents).where(incidents.c.id == incident_id)).one()
    seq = next_seq(conn, incident_id)
    _set_state(conn, incident_id, back, "restored", seq)
    body = update_words(
        "restored_partly", back=rounded(len(back)), left=rounded(len(members) - len(back))
    )
    # A partial restoration promises nothing new to those still waiting: only the restored
    # hear of it, so the incident's promised update stays as it was.
    conn.execute(
        incident_updates.insert().values(
            incident_id=incident_id,
            seq=seq,
            event="restored",
            status=row.status,
            body=body,
            **update_columns(body),
            created_at=now,
            etr=row.etr,
            notify=bool(row.notify),
            deliveries_queued=not row.notify,
        )
    )
    conn.execute(update(incidents).where(incidents.c.id == incident_id).values(updated_at=now))
    return True


def _affected(
    conn: Connection, index: NetworkIndex, incident_id: int, down_elements: Collection[str]
) -> tuple[list[Any], list[bool]]:
    """An incident's premises still affected, with their elements, and whether each one's
    own line (or anything above it) is still down."""
    members = conn.execute(
        select(incident_premises.c.premise_id, premises.c.element_id)
        .join(premises, premises.c.premise_id == incident_premises.c.premise_id)
        .where(
            incident_premises.c.incident_id == incident_id,
            incident_premises.c.state == "affected",
        )
    ).all()
    down = index.down_mask([element for _, element in members], down_elements)
    return list(members), [bool(d) for d in down]


def open_case(
    conn: Connection,
    premise_id: str,
    element_id: str,
    parent: Row[Any] | None,
    event: str,
    now: datetime,
    policy: Policy,
    notify: bool,
) -> int:
    """A single-premise case split from `parent` (still down after a fix, or an OUT reply):
    private, followed up on the cadence, resolved when the line is back or by ops."""
    source = "detected" if event == "still_down" else "reply"
    existing = conn.execute(
        select(incidents).where(
            incidents.c.root_element == element_id,
            incidents.c.scope == "premise",
            incidents.c.status != "resolved",
        )
    ).first()
    started = parent.started_at if parent is not None else now
    body = update_words(event)  # still_down or reopened
    if existing is not None:
        incident_id = int(existing.id)
        conn.execute(
            update(incidents)
            .where(incidents.c.id == incident_id)
            .values(
                notify=existing.notify or notify,
                parent_id=parent.id if parent is not None else existing.parent_id,
                started_at=min(existing.started_at, started),
            )
        )
    else:
        customer_count = conn.execute(
            select(func.count()).where(customers.c.premise_id == premise_id)
        ).scalar_one()
        key = conn.execute(
            incidents.insert().values(
                **title_columns(title_words("still_down")),
                status="investigating",
                scope="premise",
                source=source,
                root_element=element_id,
                public=False,
                notify=notify,
                area_name=parent.area_name if parent is not None else None,
                premises_count=1,
                customers_count=customer_count,
                started_at=started,
                opened_at=now,
                updated_at=now,
                parent_id=parent.id if parent is not None else None,
            )
        ).inserted_primary_key
        assert key is not None
        incident_id = int(key[0])
        _add_premises(conn, incident_id, [premise_id], seq=1)
    add_update(conn, incident_id, event, "investigating", body, now, notify, policy)
    return incident_id


def _set_state(
    conn: Connection, incident_id: int, premise_ids: Sequence[str], state: str, seq: int
) -> None:
    for start in range(0, len(premise_ids), 10_000):
        conn.execute(
            update(incident_premises)
            .where(
                incident_premises.c.incident_id == incident_id,
                incident_premises.c.premise_id.in_(premise_ids[start : start + 10_000]),
            )
            .values(state=state, changed_seq=seq)
        )


def _add_premises(conn: Connection, incident_id: int, premise_ids: list[str], seq: int) -> None:
    insert_ignoring_conflicts(
        conn,
        incident_premises,
        [
            {"incident_id": incident_id, "premise_id": p, "state": "affected", "added_seq": seq}
            for p in premise_ids
        ],
    )


def add_update(
    conn: Connection,
    incident_id: int,
    event: str,
    status: str,
    body: str,
    now: datetime,
    notify: bool,
    policy: Policy,
    etr: datetime | bool | None = True,
    started: datetime | None = None,
    next_update: datetime | bool | None = True,
) -> int:
    """Add the incident's next numbered update; one that customers hear promises the next
    one on the cadence (or `next_update`), and carries the announced estimate (or `etr`)."""
    row = conn.execute(
        select(incidents.c.etr, incidents.c.started_at).where(incidents.c.id == incident_id)
    ).one()
    if next_update is True:
        promise = policy.cadence.next_update(started or row.started_at, now) if notify else None
    else:
        promise = next_update or None
    estimate = row.etr if etr is True else (etr or None)
    seq = next_seq(conn, incident_id)
    conn.execute(
        incident_updates.insert().values(
            incident_id=incident_id,
            seq=seq,
            event=event,
            status=status,
            body=body,
            **update_columns(body),
            created_at=now,
            etr=estimate,
            next_update_at=promise,
            notify=notify,
            deliveries_queued=not notify,
        )
    )
    values: dict[str, Any] = {"updated_at": now}
    if notify:
        values["next_update_at"] = promise
    conn.execute(update(incidents).where(incidents.c.id == incident_id).values(**values))
    return seq


def next_seq(conn: Connection, incident_id: int) -> int:
    """The number the incident's next update gets."""
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
