"""Reports as evidence of a fault: customers' OUT replies and anyone's reports
(incidents/reporting.py) from several lines behind one element, within a window, open an
area incident at that element ("found by reports"), as monitoring's signals would, for
equipment nothing monitors; one origin counts for one line. A line monitoring has
reported up (within the day detection remembers it) does not count: monitoring wins. A
single report stays the case of its line."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from forewarn.incidents.lock import incidents_lock
from forewarn.incidents.matching import NewIncident, covered_premises, merge, open_incident
from forewarn.incidents.places import public_place
from forewarn.incidents.reporting import counted_since, origins_of
from forewarn.incidents.updates import Policy, rounded
from forewarn.network import NetworkIndex
from forewarn.network.tree import IntArray
from forewarn.store import (
    customers,
    element_states,
    incident_premises,
    incidents,
    replies,
    reports,
)
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
        select(
            incidents.c.id, incidents.c.root_element, incidents.c.started_at, incidents.c.source
        ).where(*_recent_reports(now, policy))
    ).all()
    seen_up = set(
        conn.execute(
            select(element_states.c.element_id).where(element_states.c.state == "up")
        ).scalars()
    )
    counted = _one_line_per_origin(conn, cases, now - policy.reports_window)
    reported = [
        c
        for c in cases
        if c.id in counted and c.root_element in tree.index and c.root_element not in seen_up
    ]
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
        # Every case of a line behind it folds in, counted or not (one origin's others).
        start, end = int(tree.order[node]), int(tree.order[node] + tree.size[node])
        behind = {
            c.id
            for c in cases
            if c.root_element in tree.index
            and start <= int(tree.order[tree.index[c.root_element]]) < end
        }
        first = min(started[i] for i in ids)
        folded = sorted((behind | set(ids)) - taken)
        opened.append(_open(conn, index, tree.ids[node], rows, folded, first, now, policy))
        taken |= set(folded)
    return opened


def _one_line_per_origin(conn: Connection, cases: Sequence[Any], since: datetime) -> set[int]:
    """The cases that count as evidence: a customer's own OUT counts for its line; of the
    lines one origin reported (an IP, a number), only the first, so that one person
    naming five addresses is one report, not five."""
    counted = {c.id for c in cases if c.source == "reply"}
    first: dict[str, tuple[datetime, int]] = {}
    for row in origins_of(conn, [c.id for c in cases if c.source == "report"], since):
        seen = first.get(row.origin)
        if seen is None or (row.received_at, row.incident_id) < seen:
            first[row.origin] = (row.received_at, row.incident_id)
    return counted | {case_id for _, case_id in first.values()}


def next_due(conn: Connection, now: datetime, policy: Policy) -> list[datetime]:
    """When the reports stage next has work: at the next cycle while any report of the
    window is still a line's own case (the next report may make it an area's)."""
    recent = conn.execute(select(incidents.c.opened_at).where(*_recent_reports(now, policy)))
    return list(recent.scalars())


def _recent_reports(now: datetime, policy: Policy) -> tuple[ColumnElement[bool], ...]:
    """The open cases reports of the window opened: a customer's OUT from a line in no
    incident (not a "still out" after a restoration, which reopens a case of its parent),
    or anyone's report of a line."""
    return (
        incidents.c.source.in_(("reply", "report")),
        incidents.c.scope == "premise",
        incidents.c.status != "resolved",
        incidents.c.parent_id.is_(None),
        incidents.c.opened_at >= now - policy.reports_window,
    )


def reports_since(conn: Connection, since: datetime) -> tuple[int, int]:
    """How many OUT reports customers have sent since `since`, and how many reports
    anyone else made (for `forewarn status`)."""
    by_customers = conn.execute(
        select(func.count()).where(
            replies.c.action == "out",
            replies.c.customer_id.is_not(None),
            replies.c.received_at >= since,
        )
    ).scalar_one()
    return int(by_customers), counted_since(conn, since)


@dataclass(frozen=True, slots=True)
class Behind:
    """The reports an incident was found by: customers' OUT replies, others' reports."""

    customers: list[datetime]
    others: list[datetime]


def reports_behind(conn: Connection, incident: Any, window: timedelta) -> Behind:
    """When the customers of an incident's premises said OUT, and when anyone reported
    them, in the window before it opened (what `incident show` says it was found by)."""
    since, until = incident.opened_at - window, incident.opened_at
    ours = incident_premises.c.incident_id == incident.id
    said = conn.execute(
        select(replies.c.received_at)
        .join(customers, customers.c.customer_id == replies.c.customer_id)
        .join(incident_premises, incident_premises.c.premise_id == customers.c.premise_id)
        .where(
            ours,
            replies.c.action == "out",
            replies.c.received_at >= since,
            replies.c.received_at <= until,
        )
        .order_by(replies.c.received_at)
    ).scalars()
    others = conn.execute(
        select(reports.c.received_at)
        .join(incident_premises, incident_premises.c.premise_id == reports.c.premise_id)
        .where(ours, reports.c.received_at >= since, reports.c.received_at <= until)
        .order_by(reports.c.received_at)
    ).scalars()
    return Behind(list(said), list(others))


def _open(
    conn: Connection,
    index: NetworkIndex,
    element: str,
    rows: IntArray,
    cases: list[int],
    started: datetime,
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
            notify=True, started=started,
            body=update_words("reported", premises=premises, floor=floor, area=area),
            area=area,
        ), now, policy,
    )  # fmt: skip
    for case in cases:
        merge(conn, case, incident_id, now)  # each reporter hears of the area's incident now
    return incident_id
