"""What followers hear: which of them an incident's update reaches (the page's news of
their place), when an incident's follows end, and how their places stand (STATUS)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import String, and_, cast, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import ColumnElement

from forewarn.store import followers, incident_premises, incidents, premises

# What a follower hears: what the page says of an incident touching their place.
HEARD = frozenset({
    "opened", "expanded", "etr_set", "etr_changed", "etr_missed", "restored",
    "maintenance_notice", "maintenance_start", "maintenance_end",
})  # fmt: skip
# A follow is heard only in these states (ended: its incident's last words still go).
LISTENING = ("active", "ended")


def _in_place(incident_id: int, *premise_where: ColumnElement[bool]) -> ColumnElement[bool]:
    """Whether a follower's place has premises of this incident matching `premise_where`
    (correlated with the followers row in the outer query)."""
    f, ip, p = followers.c, incident_premises.c, premises.c
    touching = (
        select(ip.premise_id)
        .join(premises, p.premise_id == ip.premise_id)
        .where(
            ip.incident_id == incident_id,
            *premise_where,
            or_(
                and_(f.place_kind == "postcode", p.postcode == f.place),
                and_(f.place_kind == "premise", p.premise_id == f.place),
                and_(f.place_kind == "incident", f.place == str(incident_id)),
            ),
        )
    )
    return touching.exists()


def recipients(
    conn: Connection, incident_id: int, seq: int, event: str, told: set[str]
) -> list[tuple[str, str]]:
    """The followers who hear this update of a public incident, with their channel: for
    news of the incident (opening, estimates, planned work) those whose place it affects,
    and for a growth only those it reaches first; for a restoration those whose place has
    no premise of it still affected. `told` are the keys already in its ledger."""
    if event not in HEARD:
        return []
    ip = incident_premises.c
    if event == "restored":
        where = and_(
            _in_place(incident_id, ip.changed_seq == seq, ip.state == "restored"),
            ~_in_place(incident_id, ip.state == "affected"),
        )
    else:
        where = _in_place(incident_id, ip.state == "affected")
    f = followers.c
    rows = conn.execute(
        select(f.follower_id, f.channel)
        .where(f.state.in_(LISTENING), where)
        .order_by(f.follower_id)
    ).all()
    found = [(str(key), str(channel)) for key, channel in rows]
    if event == "expanded":
        found = [(key, channel) for key, channel in found if key not in told]
    return found


def end_resolved(conn: Connection, now: datetime) -> int:
    """Follows of incidents now resolved end (their last words are already queued)."""
    f = followers.c
    resolved = select(cast(incidents.c.id, String)).where(incidents.c.status == "resolved")
    ended = (
        update(followers)
        .where(f.place_kind == "incident", f.state == "active", f.place.in_(resolved))
        .values(state="ended", ended_at=now, end_reason="incident resolved")
    )
    return int(conn.execute(ended).rowcount)


@dataclass(frozen=True, slots=True)
class PlaceStatus:
    """A followed place now: the fault the page shows there (area None: none)."""

    label: str
    locale: str
    zone: str
    area: str | None = None
    etr: datetime | None = None
    next_update_at: datetime | None = None


def status_of(conn: Connection, contact: str) -> list[PlaceStatus]:
    """What a number or address follows now, each with the open public fault touching it
    (STATUS from a follower: a query per place, and a person follows a few)."""
    f = followers.c
    follows = conn.execute(
        select(f.label, f.locale, f.timezone, f.place_kind, f.place)
        .where(f.contact == contact, f.state == "active")
        .order_by(f.label)
    ).all()
    found = []
    for label, locale, zone, kind, key in follows:
        i, ip, p = incidents.c, incident_premises.c, premises.c
        query = (
            select(i.area_name, i.title, i.etr, i.next_update_at)
            .where(
                i.public,
                i.status != "resolved",
                i.source.not_in(("maintenance", "at_risk")),
            )
            .order_by(i.id)
            .limit(1)
        )
        if kind == "incident":
            query = query.where(i.id == int(key))
        else:
            here = p.postcode == key if kind == "postcode" else p.premise_id == key
            affected = (
                select(ip.premise_id)
                .join(premises, p.premise_id == ip.premise_id)
                .where(ip.incident_id == i.id, ip.state == "affected", here)
            )
            query = query.where(affected.exists())
        fault = conn.execute(query).first()
        if fault is None:
            found.append(PlaceStatus(str(label), str(locale), str(zone)))
            continue
        area = str(fault.area_name or fault.title)
        found.append(
            PlaceStatus(str(label), str(locale), str(zone), area, fault.etr, fault.next_update_at)
        )
    return found


__all__ = ["HEARD", "LISTENING", "PlaceStatus", "end_resolved", "recipients", "status_of"]
