"""Reports of an outage from anyone: the site's "report a problem" form, or an OUT text
naming an address. Each is kept with where it came from and what it came to, and is a
weak signal for the line it names:

- a line nothing explains gets a case of its own, private and silent (a stranger's word
  sends its customers nothing; their own OUT, or monitoring, makes the case theirs);
- reports from several lines behind one element make it an area's fault
  (incidents/reports.py), each origin counting once, so one person cannot invent one;
- monitoring wins: a line it sees working is recorded and answered, and opens nothing;
- a line already in an open incident joins nothing new: the reporter may follow it.

The answer never says which of these happened: nobody learns who lives where."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import func, or_, select, update
from sqlalchemy.engine import Connection, Row

from forewarn.cleantext import clean
from forewarn.incidents import followers
from forewarn.incidents.lock import incidents_lock
from forewarn.incidents.restoration import open_case
from forewarn.incidents.updates import Policy
from forewarn.network.address import premise_at
from forewarn.store import element_states, incident_premises, incidents, reports

Via = Literal["web", "sms"]
Outcome = Literal["case", "known", "seen_up", "unknown", "limited"]


@dataclass(frozen=True, slots=True)
class ReportLimits:
    """How many reports one origin (an IP, a number) may make in an hour; beyond it they
    are answered alike and not kept (a flood must not fill the store)."""

    per_origin_hour: int = 5


REPORT_LIMITS = ReportLimits()


@dataclass(frozen=True, slots=True)
class Taken:
    """What a report came to (for the log and ops, never for the reporter), and what a
    reporter who gave a contact may follow: a public incident's id or the line's address."""

    outcome: Outcome
    report_id: int | None = None
    incident_id: int | None = None
    follow: str | None = None


def take(
    conn: Connection,
    via: Via,
    origin: str,
    text: str,
    now: datetime,
    policy: Policy,
    limits: ReportLimits = REPORT_LIMITS,
) -> Taken:
    """Record one report of the place `text` names and act on it (see the module)."""
    origin = origin[:128]
    place = " ".join(clean(text).split())[:200]
    recent = conn.execute(
        select(func.count()).where(
            reports.c.origin == origin, reports.c.received_at > now - timedelta(hours=1)
        )
    ).scalar_one()
    if recent >= limits.per_origin_hour:
        return Taken("limited")
    # Found before the lock (premises change only at an import): a lookup on a big
    # network must not hold up detection, replies and ops.
    premise = premise_at(conn, place)
    incidents_lock(conn)  # a report and the cycle at once: one case per line
    outcome: Outcome = "unknown"
    incident_id: int | None = None
    follow: str | None = None
    if premise is not None:
        named = f"{premise.address}, {premise.postcode}" if premise.postcode else premise.address
        follow = str(named)
        current = _open_incident_of(conn, str(premise.premise_id))
        if current is not None:
            outcome, incident_id = "known", int(current.id)
            follow = str(current.id) if current.public else follow
        elif _seen_up(conn, str(premise.element_id)):
            outcome = "seen_up"
        else:
            incident_id = open_case(
                conn, premise.premise_id, premise.element_id, None, "report", now, policy, False
            )
            outcome = "case"
    report_id = conn.execute(
        reports.insert().values(
            received_at=now,
            via=via,
            origin=origin,
            place=place,
            premise_id=None if premise is None else premise.premise_id,
            outcome=outcome,
            incident_id=incident_id,
        )
    ).inserted_primary_key
    return Taken(outcome, int(report_id[0]) if report_id else None, incident_id, follow)


def take_from_site(
    conn: Connection,
    origin: str,
    text: str,
    contact: tuple[str, str] | None,
    locale: str,
    zone: str,
    now: datetime,
    policy: Policy,
    limits: ReportLimits = REPORT_LIMITS,
    follow_limits: followers.Limits = followers.LIMITS,
) -> Taken:
    """A report from the site's form; a reporter who gave a (channel, contact) is asked to
    confirm a follow of what the line is in (its public incident, or the address)."""
    taken = take(conn, "web", origin, text, now, policy, limits)
    if contact is None or taken.follow is None or taken.report_id is None:
        return taken
    channel, address = contact
    asked = followers.ask(
        conn, channel, address, taken.follow, locale, zone, "web", origin, now, follow_limits
    )
    if asked.follower_id is not None:
        enrolled(conn, taken.report_id, asked.follower_id)
    return taken


def _open_incident_of(conn: Connection, premise_id: str) -> Row[Any, Any] | None:
    """The open incident that already explains a line (public ones first), if any: a
    fault, or planned work in progress; not equipment merely at risk."""
    i = incidents.c
    return conn.execute(
        select(i.id, i.public)
        .join(incident_premises, incident_premises.c.incident_id == i.id)
        .where(
            incident_premises.c.premise_id == premise_id,
            incident_premises.c.state.in_(("affected", "still_down")),
            i.status != "resolved",
            i.source != "at_risk",
            or_(i.source != "maintenance", i.status == "in_progress"),
        )
        .order_by(i.public.desc(), i.id)
        .limit(1)
    ).first()


def _seen_up(conn: Connection, element_id: str) -> bool:
    state = conn.execute(
        select(element_states.c.state).where(element_states.c.element_id == element_id)
    ).scalar()
    return state == "up"


def enrolled(conn: Connection, report_id: int, follower_id: str) -> None:
    """Note the follow a reporter was asked to confirm."""
    conn.execute(update(reports).where(reports.c.id == report_id).values(follower_id=follower_id))


def origins_of(conn: Connection, case_ids: list[int], since: datetime) -> list[Row[Any]]:
    """Who reported these cases since `since`: (incident_id, origin, received_at)."""
    if not case_ids:
        return []
    r = reports.c
    return list(
        conn.execute(
            select(r.incident_id, r.origin, r.received_at).where(
                r.incident_id.in_(case_ids), r.received_at >= since
            )
        )
    )


def counted_since(conn: Connection, since: datetime) -> int:
    """How many reports anyone has made since `since` (for `forewarn status`)."""
    return int(
        conn.execute(select(func.count()).where(reports.c.received_at >= since)).scalar_one()
    )


def of_premises(conn: Connection, premise_ids: list[str], limit: int = 200) -> list[Row[Any]]:
    """The newest reports naming these premises (for a customer's history)."""
    r = reports.c
    return list(
        conn.execute(
            select(r.received_at, r.via, r.origin, r.place, r.outcome, r.incident_id, r.premise_id)
            .where(r.premise_id.in_(premise_ids))
            .order_by(r.received_at.desc(), r.id.desc())
            .limit(limit)
        )
    )


__all__ = [
    "REPORT_LIMITS",
    "ReportLimits",
    "Taken",
    "counted_since",
    "enrolled",
    "of_premises",
    "origins_of",
    "take",
    "take_from_site",
]
