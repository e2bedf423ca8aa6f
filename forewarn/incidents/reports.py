"""Customers' reports as evidence of a fault: OUT replies from several lines behind one
element, within a window, open an area incident at that element ("found by reports"),
as monitoring's signals would, for equipment nothing monitors. A line monitoring has
reported up (within the day detection remembers it) does not count: monitoring wins. A
single report stays the case of its line."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from forewarn.incidents.lock import incidents_lock
from forewarn.incidents.matching import NewIncident, covered_premises, merge, open_incident
from forewarn.incidents.places import public_place
from forewarn.incidents.updates import Policy, rounded
from forewarn.network import NetworkIndex
from forewarn.network.tree import IntArray
from forewarn.store import customers, element_states, incident_premises, incidents, replies
from forewarn.texts import title_words, update_words


def open_reported(
    conn: Connection, index: NetworkIndex, now: datetime, policy: Policy
) -> list[int]:
    """Open an incident at the lowest element at least `policy.reports_min` reported lines
    share, for reports of the last `policy.reports_window`, folding their cases into it;
    the incidents opened."""
    incidents_lock(conn)
    tree = index.tree
    cases = conn.execute(
        select(incidents.c.id, incidents.c.root_element, incidents.c.started_at).where(
            *_recent_reports(now, policy)
        )
    ).all()
    seen_up = set(
        conn.execute(
            select(element_states.c.element_id).where(element_states.c.state == "up")
        ).scalars()
    )
    reported = [c for c in cases if c.root_element in tree.index and c.root_element not in seen_up]
    if len(reported) < policy.reports_min:
        return []
    sharing: dict[int, list[int]] = defaultdict(list)
    for case in reported:
        node = int(tree.parent[tree.index[case.root_element]])
        while node >= 0:
            sharing[node].append(case.id)
            node = int(tree.parent[node])
    covered = set(covered_premises(conn, index).tolist())
    started = {c.id: c.started_at for c in reported}
    opened: list[int] = []
    taken: set[int] = set()
    # The lowest element first: the cabinet the reports share, not the exchange above it.
    for node in sorted(sharing, key=lambda n: -int(tree.depth[n])):
        ids = [i for i in sharing[node] if i not in taken]
        rows = index.premises_under(tree.ids[node])
        if len(ids) < policy.reports_min or covered & set(rows.tolist()):
            continue
        opened.append(_open(conn, index, tree.ids[node], rows, ids, started, now, policy))
        taken |= set(ids)
    return opened


def next_due(conn: Connection, now: datetime, policy: Policy) -> list[datetime]:
    """When the reports stage next has work: at the next cycle while any report of the
    window is still a line's own case (the next report may make it an area's)."""
    recent = conn.execute(select(incidents.c.opened_at).where(*_recent_reports(now, policy)))
    return list(recent.scalars())


def _recent_reports(now: datetime, policy: Policy) -> tuple[ColumnElement[bool], ...]:
    """The open cases that customers' reports of the window opened: OUT from a line in no
    incident (not a "still out" after a restoration, which reopens a case of its parent)."""
    return (
        incidents.c.source == "reply",
        incidents.c.scope == "premise",
        incidents.c.status != "resolved",
        incidents.c.parent_id.is_(None),
        incidents.c.opened_at >= now - policy.reports_window,
    )


def reports_since(conn: Connection, since: datetime) -> int:
    """How many OUT reports customers have sent since `since` (for `forewarn status`)."""
    return int(
        conn.execute(
            select(func.count()).where(
                replies.c.action == "out",
                replies.c.customer_id.is_not(None),
                replies.c.received_at >= since,
            )
        ).scalar_one()
    )


def reports_behind(conn: Connection, incident: Any, window: timedelta) -> list[datetime]:
    """When the customers of a reports incident's premises said OUT, in the window before
    it opened (what `incident show` says it was found by)."""
    return list(
        conn.execute(
            select(replies.c.received_at)
            .join(customers, customers.c.customer_id == replies.c.customer_id)
            .join(incident_premises, incident_premises.c.premise_id == customers.c.premise_id)
            .where(
                incident_premises.c.incident_id == incident.id,
                replies.c.action == "out",
                replies.c.received_at >= incident.opened_at - window,
                replies.c.received_at <= incident.opened_at,
            )
            .order_by(replies.c.received_at)
        ).scalars()
    )


def _open(
    conn: Connection,
    index: NetworkIndex,
    element: str,
    rows: IntArray,
    cases: list[int],
    started: dict[int, datetime],
    now: datetime,
    policy: Policy,
) -> int:
    floor = policy.privacy_floor
    area = public_place(conn, index, element, floor, numbered=True)
    premises = rounded(len(rows), floor)
    incident_id = open_incident(
        conn, index, NewIncident(
            rows=rows,
            title=title_words("outage", area=area), source="reports", root_element=element,
            notify=True, started=min(started[c] for c in cases),
            body=update_words("reported", premises=premises, floor=floor, area=area),
            area=area,
        ), now, policy,
    )  # fmt: skip
    for case in cases:
        merge(conn, case, incident_id, now)  # each reporter hears of the area's incident now
    return incident_id
