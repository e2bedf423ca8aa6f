"""The ledger's queue: one row per (incident, update, customer, channel), written under a
unique key before anything is sent, so no message is lost or sent twice."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, func, select
from sqlalchemy.engine import Connection

from forewarn.channels import CHANNELS, customer_channels
from forewarn.incidents import follower_news, followers, lanes, record, safety
from forewarn.incidents.lock import incidents_lock
from forewarn.store import (
    customers,
    deliveries,
    incident_premises,
    incident_updates,
    incidents,
    insert_ignoring_conflicts,
)

# The ledger's customer_id for a public post (one per update, not per customer).
PUBLIC = ""


def channel_order(channels: str, event: str) -> list[str]:
    """A customer's channels in the order they are tried: their own preference, except
    that while their line is down what reaches them off it goes first (a text: they
    cannot read email over the line)."""
    order = [c for c in dict.fromkeys(channels.split(";")) if c]
    if event == "restored":
        return order
    first = [c for c in order if (known := CHANNELS.get(c)) is not None and known.first]
    return first + [c for c in order if c not in first]


@dataclass(frozen=True, slots=True)
class Queued:
    """How many ledger rows one update produced (`complete`: every recipient is in)."""

    incident_id: int
    seq: int
    rows: int
    complete: bool = True


def queue_deliveries(
    conn: Connection, now: datetime, partners: Sequence[str] = (), head: int | None = None
) -> list[Queued]:
    """Create ledger rows for every notifying update that has none yet (safe to repeat):
    one per affected customer and channel, and for a public incident one public post and
    one webhook per partner; customers with the highest priority first.

    With `head`, only the first `head` customers of each update are queued, so that their
    messages can start while a second call (without `head`) queues the rest; an update
    whose customers all fit is finished in the first call."""
    incidents_lock(conn)  # the updates' numbers and flags are the incidents' own
    pending = conn.execute(
        select(
            incident_updates.c.incident_id,
            incident_updates.c.seq,
            incident_updates.c.event,
            incidents.c.public,
        )
        .join(incidents, incidents.c.id == incident_updates.c.incident_id)
        .where(incident_updates.c.notify.is_(True), incident_updates.c.deliveries_queued.is_(False))
        .order_by(incident_updates.c.incident_id, incident_updates.c.seq)
    ).all()
    queued = []
    for incident_id, seq, event, public in pending:
        everyone = _recipients(conn, incident_id, seq, event)
        # Customers an earlier, partial call already queued are not queued again.
        done = set(
            conn.execute(
                select(deliveries.c.customer_id).where(
                    deliveries.c.incident_id == incident_id, deliveries.c.update_seq == seq
                )
            ).scalars()
        )
        if done:
            everyone = [r for r in everyone if r[0] not in done]
        complete = head is None or len(everyone) <= head
        now_told = everyone if complete else everyone[:head]
        # Each row in its priority lane (lanes.py): at-risk customers ahead of everyone
        # (and asked to confirm: safety.py), then restorations and missed estimates.
        recipients = [
            (customer_id, channel, lanes.rank_of(rank, event, bool(needs)))
            for customer_id, channels, needs in now_told
            for rank, channel in enumerate(channel_order(channels, event))
        ]
        if event in safety.CONFIRMING:
            safety.begin(conn, incident_id, [(c, n) for c, _, n in now_told if n], now)
        if public and PUBLIC not in done:
            # Public posts and hooks keep one lane: each thread and feed in update order.
            recipients += [(PUBLIC, c.name, 0) for c in CHANNELS.values() if c.public]
            hooks = [c.name for c in CHANNELS.values() if c.partners]
            recipients += [(partner, name, 0) for name in hooks for partner in partners]
        if public and complete:
            # Followers hear the page's news of it, once the customers are all in.
            told = _followers_told(conn, incident_id)
            heard = follower_news.recipients(conn, incident_id, seq, event, told)
            lane = lanes.rank_of(0, event, False)
            recipients += [(key, channel, lane) for key, channel in heard if key not in done]
        rows = [
            {
                "incident_id": incident_id,
                "update_seq": seq,
                "customer_id": customer_id,
                "channel": channel,
                "status": "queued",
                "attempts": 0,
                "rank": rank,
                "created_at": now,
                "next_attempt_at": now,
            }
            for customer_id, channel, rank in recipients
        ]
        insert_ignoring_conflicts(conn, deliveries, rows)
        if complete:
            record.mark_queued(conn, incident_id, seq)
        queued.append(Queued(incident_id, seq, len(rows), complete))
    follower_news.end_resolved(conn, now)
    return queued


def _followers_told(conn: Connection, incident_id: int) -> set[str]:
    """The followers already in an incident's ledger."""
    keys = select(deliveries.c.customer_id).where(
        deliveries.c.incident_id == incident_id,
        deliveries.c.customer_id.startswith(followers.PREFIX, autoescape=True),
    )
    return set(conn.execute(keys.distinct()).scalars())


def _recipients(
    conn: Connection, incident_id: int, seq: int, event: str
) -> list[tuple[str, str, str | None]]:
    """Who hears about this update (customer, channels, needs): the newly added, those
    restored by it, everyone the incident ever reached whose own line is back (the
    summary afterwards), or everyone still affected. An at-risk customer hears on every
    channel they have."""
    where = [incident_premises.c.incident_id == incident_id, customers.c.opted_out.is_(False)]
    if event == "summary":
        # "It is over, we are sorry" is wrong for a line still down: its case (split from
        # this incident, still open) keeps talking to it, and passes the summary on when
        # the line is back (restoration.resolve).
        case_premises = incident_premises.alias("case_premises")
        waiting = (
            select(case_premises.c.premise_id)
            .join(incidents, incidents.c.id == case_premises.c.incident_id)
            .where(incidents.c.parent_id == incident_id, incidents.c.status != "resolved")
        )
        where.append(incident_premises.c.premise_id.not_in(waiting))
    elif event == "expanded":
        where.append(incident_premises.c.added_seq == seq)
    elif event == "restored":
        where.append(incident_premises.c.state == "restored")
        where.append(incident_premises.c.changed_seq == seq)
    else:
        where.append(incident_premises.c.state == "affected")
    c = customers.c
    query = (
        select(c.customer_id, c.channels, c.needs, c.phone, c.email, c.social)
        .join(incident_premises, incident_premises.c.premise_id == c.premise_id)
        .where(and_(*where))
        # At-risk customers first: a big fault's first batch, queued and sent while the
        # rest are queued, is theirs.
        .order_by(c.needs.is_(None), c.priority.desc(), c.customer_id)
    )
    return [
        (str(r.customer_id), safety.every_channel(r) if r.needs else str(r.channels), r.needs)
        for r in conn.execute(query)
    ]


def oldest_due(conn: Connection, now: datetime) -> datetime | None:
    """When the longest-waiting due delivery became due (None: nothing is waiting)."""
    return conn.execute(
        select(func.min(deliveries.c.next_attempt_at)).where(
            deliveries.c.status == "queued", deliveries.c.next_attempt_at <= now
        )
    ).scalar_one_or_none()


def next_due(conn: Connection) -> list[datetime]:
    """When queued deliveries fall due (retries after their pause, messages held for the
    morning or the daily ceiling)."""
    due = select(deliveries.c.next_attempt_at).where(deliveries.c.status == "queued")
    return list(conn.execute(due).scalars())


def counts_by_status(conn: Connection) -> dict[str, int]:
    """Deliveries by state, for `forewarn status` and the demo."""
    rows = conn.execute(select(deliveries.c.status, func.count()).group_by(deliveries.c.status))
    return {str(status): int(n) for status, n in rows}


def failure_reasons(
    conn: Connection, incident_ids: Sequence[int] | None = None, top: int = 5
) -> list[tuple[str, int]]:
    """Why deliveries failed for good, the most common reasons first (of these incidents,
    or of all): what `forewarn status` and `forewarn incident show` print."""
    query = (
        select(deliveries.c.error, func.count())
        .where(deliveries.c.status == "failed")
        .group_by(deliveries.c.error)
        .order_by(func.count().desc(), deliveries.c.error)
        .limit(top)
    )
    if incident_ids is not None:
        query = query.where(deliveries.c.incident_id.in_(incident_ids))
    return [(str(error or "no reason recorded"), int(n)) for error, n in conn.execute(query)]


@dataclass(slots=True)
class Progress:
    """How an incident's messages stand, per channel: {channel: {status: count}}."""

    incident_id: int
    by_channel: dict[str, dict[str, int]]

    @property
    def percent(self) -> float:
        """Share of the incident's deliveries that are settled (sent, failed or cancelled)."""
        counts = [n for statuses in self.by_channel.values() for n in statuses.values()]
        settled = sum(
            n
            for statuses in self.by_channel.values()
            for status, n in statuses.items()
            if status in ("sent", "failed", "cancelled")
        )
        return 100.0 * settled / sum(counts) if counts else 100.0

    def summary(self) -> str:
        """One line per channel, e.g. "sms: 4 sent, 1 queued (of 5)"."""
        lines = []
        for channel, statuses in sorted(self.by_channel.items()):
            parts = ", ".join(f"{n:,} {status}" for status, n in sorted(statuses.items()))
            lines.append(f"{channel}: {parts} (of {sum(statuses.values()):,})")
        return "\n".join(lines)


def progress(conn: Connection, incident_ids: Sequence[int]) -> list[Progress]:
    """Delivery progress of these incidents, in one query."""
    if not incident_ids:
        return []
    rows = conn.execute(
        select(deliveries.c.incident_id, deliveries.c.channel, deliveries.c.status, func.count())
        .where(deliveries.c.incident_id.in_(incident_ids))
        .group_by(deliveries.c.incident_id, deliveries.c.channel, deliveries.c.status)
    )
    found: dict[int, dict[str, dict[str, int]]] = {}
    for incident_id, channel, status, n in rows:
        found.setdefault(int(incident_id), {}).setdefault(str(channel), {})[str(status)] = int(n)
    return [Progress(i, found[i]) for i in sorted(found)]


def telling(conn: Connection, incident_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """For each incident, its latest fan-out to customers: (customers it reaches, those
    already sent it), counted once a customer however many channels they have; one query
    for all of them (the site asks on every publication)."""
    if not incident_ids:
        return {}
    d = deliveries.c
    personal = and_(
        d.incident_id.in_(incident_ids),
        d.channel.in_(customer_channels()),
        d.customer_id != PUBLIC,
        ~d.customer_id.startswith(followers.PREFIX, autoescape=True),
    )
    latest = (
        select(d.incident_id.label("incident_id"), func.max(d.update_seq).label("seq"))
        .where(personal)
        .group_by(d.incident_id)
        .subquery()
    )
    sent = case((d.status == "sent", d.customer_id))
    rows = conn.execute(
        select(d.incident_id, func.count(d.customer_id.distinct()), func.count(sent.distinct()))
        .join(latest, and_(latest.c.incident_id == d.incident_id, latest.c.seq == d.update_seq))
        .where(personal)
        .group_by(d.incident_id)
    )
    return {int(incident): (int(everyone), int(told)) for incident, everyone, told in rows}
