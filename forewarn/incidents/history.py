"""One memory: who a customer is, which incidents reached them, and every message out
and reply in across channels, so an agent or a social reply knows what they were told."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.engine import Connection, Row

from forewarn.incidents.reporting import of_premises
from forewarn.incidents.safety import of_customer
from forewarn.network.importer import normalise_phones
from forewarn.store import (
    customers,
    deliveries,
    incident_premises,
    incident_updates,
    incidents,
    premises,
    replies,
)


def normalise_handle(handle: str) -> str:
    """'@Grace@social.example' -> 'grace@social.example'; '@grace' -> 'grace'."""
    return handle.strip().lstrip("@").lower()


def find_customers(conn: Connection, lookup: str, region: str = "US") -> list[Row[Any]]:
    """Customers matching an id, phone number, email, social handle or part of an address."""
    text = lookup.strip()
    if not text or len(text) > 320:
        return []
    tests = [customers.c.customer_id == text, func.lower(customers.c.email) == text.lower()]
    (phone,) = normalise_phones([text], region)
    if phone.startswith("+"):  # otherwise not a number, and the reason why
        tests.append(customers.c.phone == phone)
    handle = normalise_handle(text)
    tests += [
        func.lower(customers.c.social) == handle,
        func.lower(customers.c.social) == "@" + handle,
    ]
    query = (
        select(customers, premises.c.address, premises.c.element_id)
        .join(premises, premises.c.premise_id == customers.c.premise_id)
        .order_by(customers.c.customer_id)
    )
    found = list(conn.execute(query.where(or_(*tests)).limit(50)))
    if not found and len(text) >= 3:
        # Part of an address, literally (the wildcards in the text are escaped).
        # It starts the address or one of its words: "5 Church Lane" is not in "15 Church
        # Lane", and "church" finds both.
        literal = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        lowered = func.lower(premises.c.address)
        address = or_(
            lowered.like(literal + "%", escape="\\"),
            lowered.like("% " + literal + "%", escape="\\"),
        )
        found = list(conn.execute(query.where(address).limit(50)))
    return found


def incidents_of(conn: Connection, premise_id: str) -> list[Row[Any]]:
    """The incidents that reached a premise, newest first, with its state in each."""
    return list(
        conn.execute(
            select(incidents, incident_premises.c.state.label("premise_state"))
            .join(incident_premises, incident_premises.c.incident_id == incidents.c.id)
            .where(incident_premises.c.premise_id == premise_id)
            .order_by(incidents.c.opened_at.desc(), incidents.c.id.desc())
        )
    )


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of a customer's history: a message out or a reply in."""

    at: datetime
    direction: str  # "out" or "in"
    channel: str
    incident_id: int | None
    status: str  # sent, queued, failed... for messages; what forewarn made of a reply
    text: str
    answer: str | None = None


def history(conn: Connection, customer_id: str, limit: int = 200) -> list[Entry]:
    """Every message to and reply from one customer, newest first."""
    d = deliveries.c
    out = conn.execute(
        select(
            d.incident_id,
            d.channel,
            d.status,
            d.body,
            d.error,
            d.created_at,
            d.sent_at,
            incident_updates.c.body.label("update_body"),
            incident_updates.c.event,
        )
        .join(
            incident_updates,
            (incident_updates.c.incident_id == d.incident_id)
            & (incident_updates.c.seq == d.update_seq),
        )
        .where(d.customer_id == customer_id)
        .order_by(d.id.desc())
        .limit(limit)
    )
    entries = [
        Entry(
            at=row.sent_at or row.created_at,
            direction="out",
            channel=row.channel,
            incident_id=int(row.incident_id),
            status=row.status if row.status != "failed" else f"failed: {row.error}",
            # Until it is sent, what will go is the update itself.
            text=row.body or f"({row.event}) {row.update_body}",
        )
        for row in out
    ]
    received = conn.execute(
        select(replies)
        .where(replies.c.customer_id == customer_id)
        .order_by(replies.c.id.desc())
        .limit(limit)
    )
    entries += [
        Entry(row.received_at, "in", row.channel, None, row.action, row.body, row.answer)
        for row in received
    ]
    premise = conn.execute(
        select(customers.c.premise_id).where(customers.c.customer_id == customer_id)
    ).scalar()
    # Reports of their line by anyone (a tenant, a neighbour): what was said, not who.
    entries += [
        Entry(row.received_at, "in", f"report ({row.via})", row.incident_id,
              f"report: {row.outcome}", row.place)
        for row in of_premises(conn, [premise] if premise else [], limit)
    ]  # fmt: skip
    for check in of_customer(conn, customer_id):  # an at-risk customer's safety checks
        steps = [(check.asked_at, "asked to confirm"), (check.called_at, "called"),
                 (check.confirmed_at, "confirmed"), (check.visit_at, "visit needed"),
                 (check.reached_at, "reached"), (check.ended_at, "line back")]  # fmt: skip
        entries += [
            Entry(at, "in" if what in ("confirmed", "reached") else "out", "safety",
                  check.incident_id, f"at risk: {what}",
                  (check.confirmed_by or "") if what == "confirmed"
                  else f"{check.calls} call{'s' if check.calls != 1 else ''}" if what == "called"
                  else (check.note or "") if what == "reached" else check.needs)
            for at, what in steps
            if at is not None
        ]  # fmt: skip
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries[:limit]


def last_told(conn: Connection, customer_id: str, incident_id: int) -> Any:
    """The last message of an incident that reached this customer (any channel)."""
    return conn.execute(
        select(deliveries.c.channel, deliveries.c.sent_at, deliveries.c.body)
        .where(
            deliveries.c.customer_id == customer_id,
            deliveries.c.incident_id == incident_id,
            deliveries.c.status == "sent",
        )
        .order_by(deliveries.c.sent_at.desc(), deliveries.c.id.desc())
        .limit(1)
    ).first()
