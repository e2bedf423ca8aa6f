"""Restoration and cases: an incident resolves when its fault is fixed (or part of it
comes back), and a premise still down after a fix becomes a single-premise case."""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Row

from forewarn.incidents import record
from forewarn.incidents.lock import incidents_lock
from forewarn.incidents.updates import CLEAR, NewUpdate, Policy, rounded
from forewarn.network import NetworkIndex
from forewarn.store import (
    customers,
    deliveries,
    incident_premises,
    incident_updates,
    incidents,
    premises,
)
from forewarn.texts import title_columns, title_words, update_words


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
    incidents_lock(conn)
    row = conn.execute(select(incidents).where(incidents.c.id == incident_id)).one()
    members, down = _affected(conn, index, incident_id, down_elements)
    still_down = [(p, e) for (p, e), is_down in zip(members, down, strict=True) if is_down]
    seq = record.next_seq(conn, incident_id)
    record.set_state(conn, incident_id, [p for p, _ in members], "restored", seq)
    record.set_state(conn, incident_id, [p for p, _ in still_down], "still_down", seq)
    # A count under the privacy floor is not said at all (the page names no few homes).
    count = rounded(len(still_down), policy.privacy_floor) if still_down else None
    body = update_words("restored", still_down=count)
    notify = bool(row.notify)
    news = NewUpdate("restored", "resolved", body, notify, next_update=CLEAR)
    record.add_update(conn, incident_id, news, now, policy)
    record.change(conn, incident_id, status="resolved", resolved_at=now, next_update_at=None)
    for premise_id, element_id in still_down:
        open_case(conn, premise_id, element_id, row, "still_down", now, policy, row.notify)
    if row.parent_id is not None and not still_down:
        _pass_on_summary(conn, row, now, policy)


def _pass_on_summary(conn: Connection, case: Row[Any], now: datetime, policy: Policy) -> None:
    """A case's line is back: if its incident's summary went to the others but not to this
    line (queue.py held it back while the case was open), it hears the summary now, with
    its own outage's length. A line that had it (an OUT reply after it) does not again."""
    summary = conn.execute(
        select(
            incident_updates.c.seq,
            incident_updates.c.body,
            incident_updates.c.kind,
            incident_updates.c.params,
            incident_updates.c.deliveries_queued,
        )
        .where(
            incident_updates.c.incident_id == case.parent_id,
            incident_updates.c.event == "summary",
        )
        .order_by(incident_updates.c.seq.desc())
        .limit(1)
    ).first()
    if summary is None or not summary.deliveries_queued:
        # None yet, or not queued yet: the queue finds this line back, and it hears the
        # summary with the others.
        return
    line = select(incident_premises.c.premise_id).where(incident_premises.c.incident_id == case.id)
    had_it = conn.execute(
        select(deliveries.c.id)
        .join(customers, customers.c.customer_id == deliveries.c.customer_id)
        .where(
            deliveries.c.incident_id == case.parent_id,
            deliveries.c.update_seq == summary.seq,
            customers.c.premise_id.in_(line),
        )
        .limit(1)
    ).first()
    if had_it is not None:
        return
    cause = conn.execute(select(incidents.c.cause).where(incidents.c.id == case.parent_id)).scalar()
    record.change(conn, case.id, cause=cause)
    body = (
        update_words(summary.kind, **json.loads(summary.params or "{}"))
        if summary.kind
        else summary.body
    )
    news = NewUpdate("summary", "postmortem", body, bool(case.notify), next_update=CLEAR)
    record.add_update(conn, case.id, news, now, policy)


def lines_still_down(
    conn: Connection, index: NetworkIndex, incident_id: int, down_elements: Collection[str]
) -> list[str]:
    """The elements of an incident's affected premises whose line still looks down."""
    members, down = _affected(conn, index, incident_id, down_elements)
    return [element for (_, element), is_down in zip(members, down, strict=True) if is_down]


def restore_partly(
    conn: Connection,
    index: NetworkIndex,
    incident_id: int,
    down_elements: Collection[str],
    now: datetime,
    policy: Policy,
) -> bool:
    """Part of an open incident is back: those premises hear "restored" now."""
    incidents_lock(conn)
    members, down = _affected(conn, index, incident_id, down_elements)
    back = [p for (p, _), is_down in zip(members, down, strict=True) if not is_down]
    if not back or len(back) == len(members):
        return False  # nothing back yet, or everything: that is the incident resolving
    row = conn.execute(select(incidents).where(incidents.c.id == incident_id)).one()
    seq = record.next_seq(conn, incident_id)
    record.set_state(conn, incident_id, back, "restored", seq)
    floor = policy.privacy_floor
    left = len(members) - len(back)
    body = update_words(
        "restored_partly", back=rounded(len(back), floor), left=rounded(left, floor), floor=floor
    )
    # A partial restoration promises nothing new to those still waiting: only the restored
    # hear of it, so the incident's promised update stays as it was.
    record.insert_update(
        conn, incident_id, seq, now, event="restored", status=row.status, body=body,
        etr=row.etr, notify=bool(row.notify), deliveries_queued=not row.notify,
    )  # fmt: skip
    record.change(conn, incident_id, updated_at=now)
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


# Who opens a line's case: detection (still down after a fix), its customer (an OUT), or
# anyone's report of it.
CASE_SOURCES = {"still_down": "detected", "reopened": "reply", "report": "report"}


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
    """A single-premise case split from `parent` (still down after a fix, or an OUT reply),
    or opened by someone's report of the line (event "report": silent, since a stranger's
    word tells its customers nothing): private, followed up on the cadence when told,
    resolved when the line is back or by ops.

    One open case per line: under the incidents lock the check below sees every case
    committed before it, and the store refuses a second (uq_incidents_one_open_case)."""
    incidents_lock(conn)
    source = CASE_SOURCES[event]
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
        # A reported line's case becomes its customer's (or detection's) when they speak.
        taken_over = existing.source == "report" and source != "report"
        record.change(
            conn,
            incident_id,
            source=source if taken_over else existing.source,
            notify=existing.notify or notify,
            parent_id=parent.id if parent is not None else existing.parent_id,
            started_at=min(existing.started_at, started),
        )
    else:
        customer_count = conn.execute(
            select(func.count()).where(customers.c.premise_id == premise_id)
        ).scalar_one()
        incident_id = record.create(
            conn,
            **title_columns(title_words("reported_line" if event == "report" else "still_down")),
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
        record.add_premises(conn, incident_id, [premise_id], seq=1)
    record.add_update(
        conn, incident_id, NewUpdate(event, "investigating", body, notify), now, policy
    )
    return incident_id
