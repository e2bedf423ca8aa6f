"""Matching faults to incidents: open, fold in, expand, merge, and resolve what no fault
holds open any more (restoration.py says how); the premises already covered elsewhere,
and the coarse area an incident is named after.

One incident per root cause; every change is an ordered, numbered update (updates.py).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.engine import Connection, Row

from forewarn.detection import Fault
from forewarn.incidents import record
from forewarn.incidents.lock import incidents_lock
from forewarn.incidents.places import public_place
from forewarn.incidents.restoration import resolve, restore_partly
from forewarn.incidents.updates import CLEAR, ON_CADENCE, NewUpdate, OnCadence, Policy, rounded
from forewarn.network import NetworkIndex
from forewarn.network.tree import IntArray
from forewarn.store import (
    incident_premises,
    incidents,
)
from forewarn.texts import title_columns, title_words, update_words


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
    incidents_lock(conn)  # one writer of incidents at a time: never two opened
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
    # A line whose customer's OUT reply opened a case is already being talked to: a lone
    # fault there is that case's (one open case per line), not a second incident.
    cases = conn.execute(
        select(incidents.c.id, incidents.c.root_element, incidents.c.source).where(
            incidents.c.source.in_(("reply", "report")),
            incidents.c.scope == "premise",
            incidents.c.status != "resolved",
        )
    ).all()
    reply_cases = {c.root_element for c in cases if c.source == "reply"}
    # A line only someone's report opened a case for is nobody's conversation yet: when
    # monitoring sees it down, detection tells its customers, and the silent case folds in.
    report_cases = {c.root_element: c.id for c in cases if c.source == "report"}
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
        if fault.root in reply_cases:
            continue
        incident_id = _open(conn, index, fault, now, policy, planned)
        if fault.root in report_cases:
            _merge(conn, report_cases.pop(fault.root), incident_id, now)
        by_root[fault.root] = incident_id
        matched.add(incident_id)
        changes.opened.append(incident_id)
    for incident_id in sorted(matched & set(open_rows)):
        if open_rows[incident_id].scope == "area" and restore_partly(
            conn, index, incident_id, down_elements, now, policy
        ):
            changes.expanded.append(incident_id)
    for incident_id in sorted(set(open_rows) - matched):
        resolve(conn, index, incident_id, down_elements, now, policy)
        changes.resolved.append(incident_id)
    return changes


def covered_premises(conn: Connection, index: NetworkIndex) -> IntArray:
    """Premise rows whose faults are already accounted for, sorted: inside planned work in
    progress (expected), or in an open incident ops opened by hand or customers' reports
    opened (already being told)."""
    working = conn.execute(
        select(incident_premises.c.premise_id)
        .join(incidents, incidents.c.id == incident_premises.c.incident_id)
        .where(
            ((incidents.c.source == "maintenance") & (incidents.c.status == "in_progress"))
            # Opened by hand, or from customers' reports: already being told.
            | (incidents.c.source.in_(("ops", "reports")) & (incidents.c.status != "resolved"))
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


# The public name of the place a fault reaches (places.py): from the premises' addresses,
# never from equipment, distinct among open incidents.
area_of = public_place


def _open(
    conn: Connection,
    index: NetworkIndex,
    fault: Fault,
    now: datetime,
    policy: Policy,
    planned: IntArray,
) -> int:
    rows = _reached(index, fault.root, planned)
    is_area = fault.scope == "area"
    area = area_of(conn, index, fault.root, policy.privacy_floor, numbered=is_area)
    floor = policy.privacy_floor
    return open_incident(
        conn, index, NewIncident(
            rows=rows,
            title=(
                title_words("outage", area=area)
                if is_area
                else title_words("line_down", element=fault.root)
            ),
            source="detected", root_element=fault.root,
            notify=is_area or policy.notify_single_premise, public=is_area, started=fault.since,
            body=update_words("opened", premises=rounded(len(rows), floor), floor=floor, area=area),
            area=area,
        ), now, policy,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class NewIncident:
    """An incident to open over premise rows (detected, by ops, at risk or planned), with
    the first update's event, status and body."""

    rows: IntArray
    title: str
    source: str
    root_element: str
    notify: bool
    body: str
    # None: public when it is an area at least the privacy floor big.
    public: bool | None = None
    # When the fault began (default: now); the cadence counts from here.
    started: datetime | None = None
    status: str = "investigating"
    event: str = "opened"
    # Planned work: (from, until); its notices promise no follow-ups.
    scheduled: tuple[datetime, datetime] | None = None
    # The public place name, when the caller has named it already (None: named here).
    area: str | None = None


def open_incident(
    conn: Connection, index: NetworkIndex, new: NewIncident, now: datetime, policy: Policy
) -> int:
    """Open an incident over these premise rows (detected, by ops, at risk or planned)."""
    incidents_lock(conn)
    rows, public, scheduled = new.rows, new.public, new.scheduled
    area = new.area or area_of(conn, index, new.root_element, policy.privacy_floor)
    is_area = len(rows) > 1
    values = {
        **title_columns(new.title),
        "status": new.status,
        "scope": "area" if is_area else "premise",
        "source": new.source,
        "root_element": new.root_element,
        "public": is_area and len(rows) >= policy.privacy_floor if public is None else public,
        "notify": new.notify,
        "area_name": area,
        "premises_count": len(rows),
        "customers_count": len(index.customers_of(rows)),
        "started_at": new.started or now,
        "opened_at": now,
        "updated_at": now,
        "scheduled_for": scheduled[0] if scheduled else None,
        "scheduled_until": scheduled[1] if scheduled else None,
    }
    incident_id = record.create(conn, **values)
    record.add_premises(conn, incident_id, [index.premise_ids[int(r)] for r in rows], seq=1)
    first = NewUpdate(
        new.event, new.status, new.body, new.notify, next_update=CLEAR if scheduled else ON_CADENCE
    )
    record.add_update(conn, incident_id, first, now, policy)
    record.add_estimate(conn, incident_id, None, now, reason="no estimate yet")
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
    seq = record.next_seq(conn, row.id)
    record.add_premises(conn, row.id, [p for p in ids if p not in have], seq)
    # Named as it will be: public, and apart from the others open (its old name aside).
    area = area_of(conn, index, fault.root, policy.privacy_floor, own=row.id)
    # An incident nobody was told about (a lone line) becomes news for everyone now.
    event = "expanded" if row.notify else "opened"
    floor = policy.privacy_floor
    body = update_words("expanded", premises=rounded(len(rows), floor), floor=floor, area=area)
    started = min(row.started_at, fault.since)
    news = NewUpdate(event, row.status, body, True, next_update=OnCadence(started))
    record.add_update(conn, row.id, news, now, policy)
    record.change(
        conn,
        row.id,
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


def merge(conn: Connection, incident_id: int, into: int, now: datetime) -> None:
    """Fold one open incident into another that now covers it (no message of its own)."""
    _merge(conn, incident_id, into, now)


def _merge(conn: Connection, incident_id: int, into: int, now: datetime) -> None:
    seq = record.next_seq(conn, incident_id)
    body = update_words("merged", into=into)
    record.insert_update(
        conn, incident_id, seq, now, event="merged", status="resolved", body=body,
        notify=False, deliveries_queued=True,
    )  # fmt: skip
    record.change(
        conn, incident_id, status="resolved", resolved_at=now, updated_at=now, next_update_at=None
    )
