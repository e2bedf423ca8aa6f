"""What a customer was told, as a claim needs it: each one's ledger for an incident, the
routine messages they had in the last day, and so when their next message may go (the
night, the day's ceiling of routine messages, never past what they were promised)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, select
from sqlalchemy.engine import Connection

from forewarn.incidents.ledger.due import DueDelivery
from forewarn.quiet import Night
from forewarn.store import deliveries, incident_updates

DAY = timedelta(days=1)
# News a customer who was told of the outage is waiting for: quiet hours do not hold it
# (sleep hours do), and it does not count against the day's ceiling of routine messages.
NEWS = frozenset({"opened", "expanded", "restored", "still_down", "etr_missed"})
# What may wait even as a customer's first word of an incident: nobody is woken to hear
# that something they never knew of is over, or of planned work.
AFTERWORDS = frozenset({
    "restored", "summary", "cleared", "maintenance_notice", "maintenance_start",
    "maintenance_end",
})  # fmt: skip


def is_routine(event: str, told_before: bool) -> bool:
    """Whether a message is routine (quiet hours hold it; the day's ceiling counts it):
    anything but news, except that a customer's first word of an outage is news."""
    return event not in NEWS if told_before else event in AFTERWORDS


@dataclass(frozen=True, slots=True)
class Told:
    """What one customer's ledger holds for one incident, as the claim needs it."""

    rows: tuple[Row, ...]

    @property
    def anything(self) -> bool:
        """Whether they were told anything of this incident, on any channel."""
        return any(r.status == "sent" for r in self.rows)

    def later_than(self, channel: str, seq: int) -> bool:
        """Whether a later update of the incident is on its way to them on `channel`."""
        live = ("queued", "sending", "sent")
        return any(r.channel == channel and r.seq > seq and r.status in live for r in self.rows)

    def owed_by(self, channel: str, warning: timedelta) -> datetime | None:
        """The latest the customer must hear from us again on `channel`: the update the
        last message sent promised, or the warning of the estimate it gave."""
        sent = [r for r in self.rows if r.channel == channel and r.status == "sent"]
        if not sent:
            return None
        last = max(sent, key=lambda r: r.seq)
        owed = [m for m in (last.promise, last.etr and last.etr - warning) if m is not None]
        return min(owed, default=None)


@dataclass(frozen=True, slots=True)
class Row:
    """One ledger row of a customer's, with what its update said."""

    channel: str
    seq: int
    status: str
    promise: datetime | None = None
    etr: datetime | None = None


def held_until(
    row: DueDelivery,
    told: Told,
    sent_today: list[datetime],
    now: datetime,
    night: Night,
    per_day: int,
    warning: timedelta,
) -> datetime | None:
    """Until when a customer's message waits, or None to send it now: the night holds it
    (sleep hours everything, quiet hours routine), and a routine message over the day's
    ceiling waits until the ceiling frees or the customer is owed word, whichever is first."""
    routine = is_routine(row.event, told.anything)
    zone = row.time_zone or "UTC"
    resume = night.held_until(now, zone, routine)
    if resume is not None or not routine or len(sent_today) < per_day:
        return resume
    frees = sorted(sent_today)[-per_day] + DAY
    owed = told.owed_by(row.channel, warning)
    wait = min(frees, owed) if owed is not None else frees
    if wait <= now:
        return None
    # Held past the evening, it goes when the night allows it, not later.
    return night.held_until(wait, zone, routine) or wait


def told(conn: Connection, rows: Sequence[DueDelivery]) -> dict[tuple[int, str], Told]:
    """Each batch customer's ledger for the batch's incidents, in one indexed query (a
    lookup per row inside the claim query let SQLite pick a status index and scan)."""
    customers_ = {r.customer_id for r in rows}
    incidents_ = {r.incident_id for r in rows}
    if not customers_:
        return {}
    d, u = deliveries.c, incident_updates.c
    ledger = conn.execute(
        select(d.incident_id, d.customer_id, d.channel, d.update_seq, d.status).where(
            d.customer_id.in_(customers_), d.incident_id.in_(incidents_)
        )
    ).all()
    # What each update promised, read once per update rather than joined to every row
    # (the join cost four times the ledger's own query).
    said = {
        (int(r.incident_id), int(r.seq)): (r.next_update_at, r.etr)
        for r in conn.execute(
            select(u.incident_id, u.seq, u.next_update_at, u.etr).where(
                u.incident_id.in_(incidents_), u.notify.is_(True)
            )
        )
    }
    found: dict[tuple[int, str], list[Row]] = defaultdict(list)
    for incident_id, customer_id, channel, seq, status in ledger:
        promise, etr = said.get((int(incident_id), int(seq)), (None, None))
        row = Row(str(channel), int(seq), str(status), promise, etr)
        found[(int(incident_id), str(customer_id))].append(row)
    return {key: Told(tuple(value)) for key, value in found.items()}


def routine_sent(
    conn: Connection, rows: Sequence[DueDelivery], now: datetime
) -> dict[tuple[str, str], list[datetime]]:
    """When each batch customer was sent routine messages in the last day, by channel, in
    every incident (one query for the batch)."""
    customers_ = {r.customer_id for r in rows}
    if not customers_:
        return {}
    d, u = deliveries.c, incident_updates.c
    found: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    # The status is checked here, not in SQL: given `status = 'sent'`, SQLite walked the
    # queue index through every message ever sent (0.28 s a claim at 200,000, growing
    # with the outage) instead of looking up the batch's customers.
    for customer_id, channel, status, sent_at, event in conn.execute(
        select(d.customer_id, d.channel, d.status, d.sent_at, u.event)
        .join(incident_updates, and_(u.incident_id == d.incident_id, u.seq == d.update_seq))
        .where(d.customer_id.in_(customers_), d.sent_at > now - DAY)
    ):
        if status == "sent" and is_routine(str(event), True):
            found[(str(customer_id), str(channel))].append(sent_at)
    return found


__all__ = ["AFTERWORDS", "NEWS", "Row", "Told", "held_until", "is_routine", "routine_sent", "told"]
