"""At-risk customers' safety checks. A customer is at risk when their line keeps
something alive (a telecare alarm, a medical device, their only phone: the customers
file's `needs`). In an outage each is told first, on every channel they have, whatever
the hour (the night policy's one safety override), and asked to confirm: YES to the
text, the email's link. One who has not confirmed within `Policy.confirm_within` is
listed for a visit (`forewarn at-risk`) until ops mark them reached. A check ends by
itself when their line is back.

One check per customer and incident: asked -> confirmed, or asked -> visit -> reached;
ended when the line is back first. Every step is kept, for the customer's history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql.expression import ColumnElement

from forewarn.channels import CHANNELS, customer_channels
from forewarn.store import (
    customers,
    incident_premises,
    incidents,
    insert_ignoring_conflicts,
    premises,
    safety_checks,
)

# The updates whose message asks an at-risk customer to confirm: news that the line is out.
CONFIRMING = frozenset({"opened", "expanded", "still_down"})
OPEN = ("asked", "visit")
# What an at-risk customer hears at any hour, over the day's ceiling too: the night policy's
# one override (their line may be keeping them safe).
SAFETY = frozenset({"opened", "expanded", "still_down", "etr_missed"})
# Where an at-risk customer's messages sit in the queue: ahead of everyone's (the ranks of
# other rows are their channels' order, from 0).
AHEAD = -1000


def every_channel(row: Any) -> str:
    """Every customer channel an at-risk customer can be reached on (`row` has their
    contact fields), out of band first: more than their preference, for their safety."""
    reached = [name for name in customer_channels() if getattr(row, CHANNELS[name].contact or "")]
    return ";".join(reached)


def begin(
    conn: Connection, incident_id: int, who: Sequence[tuple[str, str]], now: datetime
) -> None:
    """Start a check for each (customer, needs) told of this incident (none twice)."""
    rows = [
        {"customer_id": customer_id, "incident_id": incident_id, "needs": needs,
         "state": "asked", "asked_at": now}
        for customer_id, needs in who
    ]  # fmt: skip
    insert_ignoring_conflicts(conn, safety_checks, rows)


def confirm(
    conn: Connection,
    customer_ids: Sequence[str],
    how: str,
    now: datetime,
    incident_id: int | None = None,
) -> int:
    """Confirm these customers' open checks (of one incident, if given); how many."""
    if not customer_ids:
        return 0
    where: list[ColumnElement[bool]] = [
        safety_checks.c.customer_id.in_(customer_ids),
        safety_checks.c.state.in_(OPEN),
    ]
    if incident_id is not None:
        where.append(safety_checks.c.incident_id == incident_id)
    changed = conn.execute(
        update(safety_checks)
        .where(*where)
        .values(state="confirmed", confirmed_at=now, confirmed_by=how)
    )
    return int(changed.rowcount)


@dataclass(slots=True)
class Escalated:
    """What one pass did: checks listed for a visit, and checks ended (the line is back)."""

    visits: list[int] = field(default_factory=list)
    ended: list[int] = field(default_factory=list)


def escalate(conn: Connection, now: datetime, within: Any) -> Escalated:
    """End the checks whose line is back, and list for a visit those unconfirmed for
    `within` (a timedelta) since they were asked."""
    done = Escalated()
    still_out = (
        select(incident_premises.c.incident_id)
        .join(customers, customers.c.premise_id == incident_premises.c.premise_id)
        .join(incidents, incidents.c.id == incident_premises.c.incident_id)
        .where(
            incident_premises.c.incident_id == safety_checks.c.incident_id,
            customers.c.customer_id == safety_checks.c.customer_id,
            incident_premises.c.state.in_(("affected", "still_down")),
            incidents.c.status != "resolved",
        )
        .exists()
    )
    back = conn.execute(
        select(safety_checks.c.id).where(safety_checks.c.state.in_(OPEN), ~still_out)
    ).scalars()
    done.ended = list(back)
    if done.ended:
        conn.execute(
            update(safety_checks)
            .where(safety_checks.c.id.in_(done.ended))
            .values(state="ended", ended_at=now)
        )
    late = conn.execute(
        select(safety_checks.c.id).where(
            safety_checks.c.state == "asked", safety_checks.c.asked_at <= now - within
        )
    ).scalars()
    done.visits = list(late)
    if done.visits:
        conn.execute(
            update(safety_checks)
            .where(safety_checks.c.id.in_(done.visits))
            .values(state="visit", visit_at=now)
        )
    return done


def next_due(conn: Connection, within: Any) -> list[datetime]:
    """When checks still waiting for a confirmation fall due for escalation."""
    asked = select(safety_checks.c.asked_at).where(safety_checks.c.state == "asked")
    return [moment + within for moment in conn.execute(asked).scalars()]


def reached(conn: Connection, check_id: int, note: str, now: datetime) -> bool:
    """Ops reached the customer of a check (a visit, a call by hand); False: no open check."""
    changed = conn.execute(
        update(safety_checks)
        .where(safety_checks.c.id == check_id, safety_checks.c.state.in_(OPEN))
        .values(state="reached", reached_at=now, note=note)
    )
    return bool(changed.rowcount)


def listing(conn: Connection, states: Sequence[str] = OPEN) -> list[Row[Any]]:
    """Checks in these states with whom and where: those needing a visit first, then the
    longest unconfirmed."""
    a = safety_checks.c
    return list(
        conn.execute(
            select(
                a.id, a.customer_id, a.incident_id, a.needs, a.state, a.asked_at, a.visit_at,
                customers.c.phone, premises.c.address, premises.c.postcode,
            )
            .join(customers, customers.c.customer_id == a.customer_id)
            .join(premises, premises.c.premise_id == customers.c.premise_id)
            .where(a.state.in_(states))
            .order_by((a.state == "visit").desc(), a.asked_at, a.id)
        )
    )  # fmt: skip


def counts(conn: Connection) -> dict[str, int]:
    """Checks by state, for `forewarn status`."""
    rows = conn.execute(select(safety_checks.c.state, func.count()).group_by(safety_checks.c.state))
    return {str(state): int(n) for state, n in rows}


def of_customer(conn: Connection, customer_id: str) -> list[Row[Any]]:
    """One customer's checks, for their history."""
    return list(
        conn.execute(
            select(safety_checks)
            .where(and_(safety_checks.c.customer_id == customer_id))
            .order_by(safety_checks.c.id)
        )
    )


__all__ = [
    "AHEAD",
    "CONFIRMING",
    "SAFETY",
    "Escalated",
    "begin",
    "confirm",
    "counts",
    "escalate",
    "every_channel",
    "listing",
    "next_due",
    "of_customer",
    "reached",
]
