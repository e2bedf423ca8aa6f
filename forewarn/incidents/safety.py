"""At-risk customers' safety checks. A customer is at risk when their line keeps
something alive (a telecare alarm, a medical device, their only phone: the customers
file's `needs`). In an outage each is told first, on every channel they have, whatever
the hour (the night policy's one safety override), and asked to confirm: YES to the
text, the email's link, a key on a call. One who has not confirmed within
`Policy.confirm_within` is called (where calls go: the voice channel has a sender), and
called once more `Policy.call_wait` after an unconfirmed call; then, or at once without
calls, a phone or a placeable call, they are listed for a visit (`forewarn at-risk`)
until ops mark them reached. A check ends by itself when their line is back.

One check per customer and incident: asked -> confirmed, or asked -> calling (call 1,
call 2) -> visit -> reached, confirmed at any step; ended when the line is back first.
Every step is kept, for the customer's history. Long because the escalation is one
state machine, and its steps read best together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql.expression import ColumnElement

from forewarn.channels import CHANNELS, customer_channels, voice
from forewarn.incidents.lanes import AT_RISK
from forewarn.store import (
    customers,
    deliveries,
    incident_premises,
    incident_updates,
    incidents,
    insert_ignoring_conflicts,
    premises,
    safety_checks,
)

# The updates whose message asks an at-risk customer to confirm: news that the line is out.
CONFIRMING = frozenset({"opened", "expanded", "still_down"})
OPEN = ("asked", "calling", "visit")
# The channel an unconfirmed customer is called on, and how many calls before a visit.
CALL = voice.CHANNEL.name
CALLS = 2
# What an at-risk customer hears at any hour, over the day's ceiling too: the night policy's
# one override (their line may be keeping them safe).
SAFETY = frozenset({"opened", "expanded", "still_down", "etr_missed"})
# Where an at-risk customer's messages sit in the queue: the first priority lane.
AHEAD = AT_RISK


def every_channel(row: Any) -> str:
    """Every channel an at-risk customer can be reached on (`row` has their channels and
    contact fields), out of band first: more than their preference, for their safety. A
    call only when they chose calls: otherwise a call is the escalation (`escalate`)."""
    chosen = set(str(row.channels or "").split(";"))
    reached = [
        name
        for name in customer_channels()
        if getattr(row, CHANNELS[name].contact or "")
        and (CHANNELS[name].tier is not None or name in chosen)
    ]
    return ";".join(reached)


def begin(
    conn: Connection, incident_id: int, who: Sequence[tuple[str, str]], now: datetime
) -> None:
    """Start a check for each (customer, needs) told of this incident, and for each
    at-risk customer out in it who hears nothing from us (opted out: a visit is their
    only way to be reached). None twice, and none for a customer whose check of another
    incident is still open (a line split off the area's incident keeps its clock)."""
    c = customers.c
    unreached = conn.execute(
        select(c.customer_id, c.needs)
        .join(incident_premises, incident_premises.c.premise_id == c.premise_id)
        .where(
            incident_premises.c.incident_id == incident_id,
            incident_premises.c.state.in_(("affected", "still_down")),
            c.opted_out.is_(True),
            c.needs.is_not(None),
            c.needs != "",
        )
    ).all()
    who = [*who, *((str(r.customer_id), str(r.needs)) for r in unreached)]
    if not who:
        return
    busy = set(
        conn.execute(
            select(safety_checks.c.customer_id).where(
                safety_checks.c.customer_id.in_({customer for customer, _ in who}),
                safety_checks.c.state.in_(OPEN),
                safety_checks.c.incident_id != incident_id,
            )
        ).scalars()
    )
    rows = [
        {"customer_id": customer_id, "incident_id": incident_id, "needs": needs,
         "state": "asked", "asked_at": now, "calls": 0}
        for customer_id, needs in dict(who).items()
        if customer_id not in busy
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
    """What one pass did: checks called (first call or retry), listed for a visit, and
    ended (the line is back)."""

    calls: list[int] = field(default_factory=list)
    visits: list[int] = field(default_factory=list)
    ended: list[int] = field(default_factory=list)


def escalate(
    conn: Connection,
    now: datetime,
    within: timedelta,
    calling: bool = False,
    call_wait: timedelta = timedelta(minutes=5),
) -> Escalated:
    """Move every open check along: ended when the customer's line is out in no open
    incident (a line still down after the area's fix keeps its check); unconfirmed
    `within` after they were asked, a call when `calling` (else, or without a phone, a
    visit); a call unconfirmed `call_wait` after it went, one more call, then a visit; a
    call that could not be placed, a visit at once."""
    done = Escalated()
    done.ended = _end_where_back(conn, now)
    a = safety_checks.c
    late = conn.execute(
        select(a.id, a.customer_id, a.incident_id, customers.c.phone)
        .join(customers, customers.c.customer_id == a.customer_id)
        .where(a.state == "asked", a.asked_at <= now - within)
    ).all()
    callable_ = [row for row in late if calling and row.phone]
    if callable_:
        seqs = _told_seq(conn, [(row.customer_id, row.incident_id) for row in callable_])
        callable_ = [row for row in callable_ if (row.customer_id, row.incident_id) in seqs]
        conn.execute(
            update(safety_checks)
            .where(a.id == bindparam("b_id"))
            .values(state="calling", calls=1, call_seq=bindparam("b_seq"), called_at=now),
            [{"b_id": r.id, "b_seq": seqs[(r.customer_id, r.incident_id)]} for r in callable_],
        )
        _call(conn, [(r.customer_id, r.incident_id, seqs[(r.customer_id, r.incident_id)])
                     for r in callable_], now)  # fmt: skip
        done.calls += [row.id for row in callable_]
    called = {row.id for row in callable_}
    done.visits += _visit(conn, [row.id for row in late if row.id not in called], now)
    retry, give_up = _calls_over(conn, now, call_wait)
    if retry:
        conn.execute(
            update(safety_checks)
            .where(a.id.in_([row.id for row in retry]))
            .values(calls=a.calls + 1, called_at=now)
        )
        _call(conn, [(r.customer_id, r.incident_id, r.call_seq) for r in retry], now)
        done.calls += [row.id for row in retry]
    done.visits += _visit(conn, give_up, now)
    return done


def _end_where_back(conn: Connection, now: datetime) -> list[int]:
    """End the open checks whose customer's line is out in no open incident."""
    a = safety_checks.c
    still_out = (
        select(incident_premises.c.incident_id)
        .join(customers, customers.c.premise_id == incident_premises.c.premise_id)
        .join(incidents, incidents.c.id == incident_premises.c.incident_id)
        .where(
            customers.c.customer_id == a.customer_id,
            incident_premises.c.state.in_(("affected", "still_down")),
            incidents.c.status != "resolved",
        )
        .exists()
    )
    ended = list(conn.execute(select(a.id).where(a.state.in_(OPEN), ~still_out)).scalars())
    if ended:
        conn.execute(
            update(safety_checks).where(a.id.in_(ended)).values(state="ended", ended_at=now)
        )
    return ended


def _visit(conn: Connection, check_ids: Sequence[int], now: datetime) -> list[int]:
    """List these checks for a visit."""
    if check_ids:
        conn.execute(
            update(safety_checks)
            .where(safety_checks.c.id.in_(check_ids))
            .values(state="visit", visit_at=now)
        )
    return list(check_ids)


def _told_seq(conn: Connection, who: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
    """For each (customer, incident), the latest update asking them to confirm that they
    were sent: what their call says."""
    d = deliveries.c
    rows = conn.execute(
        select(d.customer_id, d.incident_id, func.max(d.update_seq))
        .join(
            incident_updates,
            and_(incident_updates.c.incident_id == d.incident_id,
                 incident_updates.c.seq == d.update_seq),
        )
        .where(
            d.customer_id.in_({customer for customer, _ in who}),
            d.incident_id.in_({incident for _, incident in who}),
            incident_updates.c.event.in_(CONFIRMING),
        )
        .group_by(d.customer_id, d.incident_id)
    )  # fmt: skip
    wanted = set(who)
    return {(str(c), int(i)): int(seq) for c, i, seq in rows if (str(c), int(i)) in wanted}


def _call(conn: Connection, calls: Sequence[tuple[str, int, int]], now: datetime) -> None:
    """Queue a call for each (customer, incident, update), ahead of everyone; a call of
    that update already made (one they chose) goes again."""
    if not calls:
        return
    rows = [
        {"incident_id": incident, "update_seq": seq, "customer_id": customer,
         "channel": CALL, "status": "queued", "attempts": 0, "rank": AHEAD,
         "created_at": now, "next_attempt_at": now}
        for customer, incident, seq in calls
    ]  # fmt: skip
    insert_ignoring_conflicts(conn, deliveries, rows)
    d = deliveries.c
    conn.execute(
        update(deliveries)
        .where(d.incident_id == bindparam("b_incident"), d.update_seq == bindparam("b_seq"),
               d.customer_id == bindparam("b_customer"), d.channel == CALL,
               # settled (sent, failed, cancelled); equalities, as a batch takes no IN
               d.status != "queued", d.status != "sending")
        .values(status="queued", next_attempt_at=now, rank=AHEAD,
                error="not confirmed: calling again", provider_status=None),
        [{"b_customer": c, "b_incident": i, "b_seq": seq} for c, i, seq in calls],
    )  # fmt: skip


def _its_call() -> ColumnElement[bool]:
    """A check's call: the ledger row of its customer's call about its update."""
    a, d = safety_checks.c, deliveries.c
    return and_(
        d.incident_id == a.incident_id,
        d.update_seq == a.call_seq,
        d.customer_id == a.customer_id,
        d.channel == CALL,
    )


def _calls_over(conn: Connection, now: datetime, wait: timedelta) -> tuple[list[Any], list[int]]:
    """Calling checks whose call is over: (those to call once more, those to visit). A
    call is over `wait` after it was placed, or at once when it could not be placed."""
    a, d = safety_checks.c, deliveries.c
    rows = conn.execute(
        select(a.id, a.customer_id, a.incident_id, a.call_seq, a.calls, d.status, d.sent_at)
        .join(deliveries, _its_call())
        .where(a.state == "calling")
    ).all()  # fmt: skip
    over = [
        row for row in rows
        if row.status in ("failed", "cancelled")
        or (row.status == "sent" and row.sent_at is not None and row.sent_at <= now - wait)
    ]  # fmt: skip
    retry = [row for row in over if row.calls < CALLS and row.status == "sent"]
    return retry, [row.id for row in over if row not in retry]


def next_due(conn: Connection, within: timedelta, call_wait: timedelta) -> list[datetime]:
    """When open checks fall due for their next step: a call or a visit."""
    a = safety_checks.c
    asked = select(a.asked_at).where(a.state == "asked")
    due = [moment + within for moment in conn.execute(asked).scalars()]
    placed = (
        select(deliveries.c.sent_at)
        .join(safety_checks, _its_call())
        .where(a.state == "calling", deliveries.c.status == "sent")
    )  # fmt: skip
    return due + [moment + call_wait for moment in conn.execute(placed).scalars() if moment]


def reached(conn: Connection, check_id: int, note: str, now: datetime) -> bool:
    """Ops reached the customer of a check (a visit, a call by hand); False: no open check."""
    changed = conn.execute(
        update(safety_checks)
        .where(safety_checks.c.id == check_id, safety_checks.c.state.in_(OPEN))
        .values(state="reached", reached_at=now, note=note)
    )
    return bool(changed.rowcount)


def listing(conn: Connection, states: Sequence[str] = OPEN) -> list[Row[Any]]:
    """Checks in these states with whom and where: those needing a visit first, then those
    being called, then the longest unconfirmed."""
    a = safety_checks.c
    return list(
        conn.execute(
            select(
                a.id, a.customer_id, a.incident_id, a.needs, a.state, a.asked_at, a.visit_at,
                a.calls,
                customers.c.phone, premises.c.address, premises.c.postcode,
            )
            .join(customers, customers.c.customer_id == a.customer_id)
            .join(premises, premises.c.premise_id == customers.c.premise_id)
            .where(a.state.in_(states))
            .order_by((a.state == "visit").desc(), (a.state == "calling").desc(), a.asked_at, a.id)
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
