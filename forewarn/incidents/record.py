"""The one writer of incident records: incidents, their numbered updates, their
premises (each premise's case) and the history of their estimates. Every other module
reads these tables and asks this one to change them (tests/test_layout.py holds to it),
so "one record, ordered updates" holds by construction, not by convention."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from forewarn.incidents.lock import incidents_lock
from forewarn.incidents.updates import (
    Keep,
    NewUpdate,
    OnCadence,
    Policy,
    applied,
    incident_zones,
)
from forewarn.store import (
    etr_history,
    incident_premises,
    incident_updates,
    incidents,
    insert_ignoring_conflicts,
)
from forewarn.texts import update_columns


def create(conn: Connection, **values: Any) -> int:
    """A new incident row; returns its id (its first update is `add_update`'s)."""
    key = conn.execute(incidents.insert().values(**values)).inserted_primary_key
    assert key is not None
    return int(key[0])


def change(conn: Connection, incident_id: int, **values: Any) -> None:
    """Set fields of one incident (status, cause, notify, the promise, the warning...)."""
    conn.execute(update(incidents).where(incidents.c.id == incident_id).values(**values))


def add_update(
    conn: Connection, incident_id: int, new: NewUpdate, now: datetime, policy: Policy
) -> int:
    """Add the incident's next numbered update; returns its number."""
    incidents_lock(conn)
    row = conn.execute(
        select(incidents.c.etr, incidents.c.started_at, incidents.c.next_update_at).where(
            incidents.c.id == incident_id
        )
    ).one()
    estimate = applied(new.etr, row.etr)
    if isinstance(new.next_update, OnCadence):
        since = new.next_update.since or row.started_at
        zones = incident_zones(conn, incident_id) if new.notify else []
        promise = policy.cadence.next_update(since, now, zones) if new.notify else None
        if promise and estimate and now < estimate < promise:
            # "Fix by 14:00, next update 15:00" reads as a promise made for after the fix:
            # the next word is due by the estimate (its warning, or "restored", comes first).
            promise = policy.cadence.awake(estimate, zones)
    else:
        promise = applied(new.next_update, row.next_update_at)
    seq = next_seq(conn, incident_id)
    conn.execute(
        incident_updates.insert().values(
            incident_id=incident_id,
            seq=seq,
            event=new.event,
            status=new.status,
            body=new.body,
            **update_columns(new.body),
            created_at=now,
            etr=estimate,
            next_update_at=promise,
            notify=new.notify,
            deliveries_queued=not new.notify,
        )
    )
    values: dict[str, Any] = {"updated_at": now}
    if not isinstance(new.etr, Keep):
        values["etr"] = estimate
    if new.notify and not isinstance(new.next_update, Keep):
        values["next_update_at"] = promise
    conn.execute(update(incidents).where(incidents.c.id == incident_id).values(**values))
    return seq


def insert_update(
    conn: Connection, incident_id: int, seq: int, now: datetime, **values: Any
) -> None:
    """Write update `seq` as given: for the updates whose estimate and promise their
    writer settles itself (a merge, a partial restoration)."""
    body = values["body"]
    conn.execute(
        incident_updates.insert().values(
            incident_id=incident_id, seq=seq, created_at=now, **update_columns(body), **values
        )
    )


def mark_queued(conn: Connection, incident_id: int, seq: int) -> None:
    """Every delivery of update `seq` is in the ledger."""
    conn.execute(
        update(incident_updates)
        .where(incident_updates.c.incident_id == incident_id, incident_updates.c.seq == seq)
        .values(deliveries_queued=True)
    )


def next_seq(conn: Connection, incident_id: int) -> int:
    """The number the incident's next update gets (under the incidents lock: nobody else
    numbers one until this transaction ends)."""
    incidents_lock(conn)
    current = conn.execute(
        select(func.max(incident_updates.c.seq)).where(
            incident_updates.c.incident_id == incident_id
        )
    ).scalar()
    return int(current or 0) + 1


def add_premises(conn: Connection, incident_id: int, premise_ids: list[str], seq: int) -> None:
    """Premises join an incident, affected, at update `seq`."""
    insert_ignoring_conflicts(
        conn,
        incident_premises,
        [
            {"incident_id": incident_id, "premise_id": p, "state": "affected", "added_seq": seq}
            for p in premise_ids
        ],
    )


def set_state(
    conn: Connection, incident_id: int, premise_ids: Sequence[str], state: str, seq: int
) -> None:
    """Premises of an incident change state (restored, still down) at update `seq`."""
    for start in range(0, len(premise_ids), 10_000):
        conn.execute(
            update(incident_premises)
            .where(
                incident_premises.c.incident_id == incident_id,
                incident_premises.c.premise_id.in_(premise_ids[start : start + 10_000]),
            )
            .values(state=state, changed_seq=seq)
        )


def add_estimate(
    conn: Connection,
    incident_id: int,
    etr: datetime | None,
    now: datetime,
    reason: str,
    announced: bool = True,
) -> None:
    """Keep an estimate (or its absence) with when and why it was given, and whether
    customers were told it (a small wobble is kept, not announced)."""
    conn.execute(
        etr_history.insert().values(
            incident_id=incident_id, etr=etr, set_at=now, reason=reason, announced=announced
        )
    )


def estimate_announced(conn: Connection, estimate_id: int) -> None:
    """An estimate kept quiet before has now been told."""
    conn.execute(update(etr_history).where(etr_history.c.id == estimate_id).values(announced=True))
