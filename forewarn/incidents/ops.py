"""What ops do by hand: open an incident the monitoring has not seen, change its status,
cause and estimate, add notes, resolve it, send a heads-up, and schedule planned work.
Every change goes through the same updates (and so the same messages and page) as a
detected fault."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Row

from forewarn.cleantext import clean
from forewarn.feeds.safejson import Unreadable, loads
from forewarn.incidents import record
from forewarn.incidents.lock import incidents_lock
from forewarn.incidents.matching import NewIncident, open_incident
from forewarn.incidents.restoration import lines_still_down, open_case, resolve
from forewarn.incidents.updates import (
    CLEAR,
    KEEP,
    Change,
    Keep,
    NewUpdate,
    Policy,
    Set,
    incident_zones,
    rounded,
)
from forewarn.network import NetworkIndex
from forewarn.network.tree import IntArray
from forewarn.store import (
    customers,
    deliveries,
    etr_history,
    incident_updates,
    incidents,
    premises,
)
from forewarn.texts import stamp, update_words

# Statuspage's statuses that ops may set on an open incident (FACTS.md).
OPS_STATUSES = ("investigating", "identified", "monitoring")


class OpsError(ValueError):
    """A request ops must correct: unknown incident, bad area, estimate in the past..."""


@dataclass(frozen=True, slots=True)
class Target:
    """The premises an incident or planned work covers, and the element naming its area."""

    rows: IntArray
    element: str


def find_target(
    index: NetworkIndex,
    element: str | None = None,
    area: str | None = None,
    point: tuple[float, float] | None = None,
    radius_m: float | None = None,
) -> Target:
    """The premises ops name, one way of three: an element, a GeoJSON area, or a point
    (lat, lon) and a radius. The one resolver behind the CLI and the drill."""
    if sum(x is not None for x in (element, area, point)) != 1:
        raise OpsError("name the place one way: an element, an area, or a point and a radius")
    if element is not None:
        return by_element(index, element)
    if area is not None:
        return by_area(index, area)
    assert point is not None
    if radius_m is None:
        raise OpsError("a point needs a radius")
    return by_radius(index, point[0], point[1], radius_m)


def by_element(index: NetworkIndex, element_id: str) -> Target:
    """Every premise served by `element_id`."""
    try:
        rows = index.premises_under(element_id)
    except KeyError:
        raise OpsError(f"unknown element {element_id!r}") from None
    return _target(index, rows, "element " + element_id)


def by_area(index: NetworkIndex, geojson: str) -> Target:
    """Every premise inside a GeoJSON Polygon (or Feature/MultiPolygon of them)."""
    try:
        shape = loads(geojson)
    except Unreadable as err:
        raise OpsError(f"the area is {err}") from None
    rings = list(_outer_rings(shape))
    found = [index.premises_in_polygon(ring) for ring in rings]
    rows = np.unique(np.concatenate(found)) if found else np.array([], dtype=np.int64)
    return _target(index, rows, "the area")


def by_radius(index: NetworkIndex, lat: float, lon: float, radius_m: float) -> Target:
    """Every premise within `radius_m` metres of a point."""
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or not 0 < radius_m <= 100_000:
        raise OpsError("the point or radius is out of range (radius 1 m to 100 km)")
    return _target(index, np.sort(index.premises_within(lat, lon, radius_m)), "that radius")


def _target(index: NetworkIndex, rows: IntArray, what: str) -> Target:
    if len(rows) == 0:
        raise OpsError(f"no premises in {what}")
    return Target(rows, index.lowest_common_element(rows))


def _outer_rings(shape: Any) -> Any:
    """The outer rings of a GeoJSON geometry, Feature or FeatureCollection, as (lon, lat)."""
    if not isinstance(shape, dict):
        raise OpsError("the area must be a GeoJSON object")
    kind = shape.get("type")
    if kind == "FeatureCollection":
        for feature in shape.get("features") or []:
            yield from _outer_rings(feature)
    elif kind == "Feature":
        yield from _outer_rings(shape.get("geometry"))
    elif kind in ("Polygon", "MultiPolygon"):
        coordinates = shape.get("coordinates") or []
        polygons = [coordinates] if kind == "Polygon" else coordinates
        for polygon in polygons:
            try:
                ring = [(float(x), float(y)) for x, y, *_ in polygon[0]]
            except (TypeError, ValueError, IndexError):
                raise OpsError("polygon coordinates must be [[lon, lat], ...] rings") from None
            if len(ring) < 4 or len(ring) > 100_000:
                raise OpsError("a polygon ring needs 4 to 100,000 points")
            yield ring
    else:
        raise OpsError(f"unsupported GeoJSON type {kind!r} (use Polygon or MultiPolygon)")


def open_by_ops(
    conn: Connection,
    index: NetworkIndex,
    target: Target,
    title: str,
    now: datetime,
    policy: Policy,
    started: datetime | None = None,
) -> int:
    """Open an incident for a fault the monitoring has not seen; customers hear at once."""
    title = _clean(title, "title", 200)
    floor = policy.privacy_floor
    count = rounded(len(target.rows), floor)
    body = update_words("opened_ops", title=title, premises=count, floor=floor)
    new = NewIncident(
        target.rows, title, source="ops", root_element=target.element, notify=True, body=body,
        started=started,
    )  # fmt: skip
    return open_incident(conn, index, new, now, policy)


@dataclass(slots=True)
class Outcome:
    """What an ops change did, to print back."""

    incident_id: int
    said: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)


def update_by_ops(
    conn: Connection,
    incident_id: int,
    now: datetime,
    policy: Policy,
    status: str | None = None,
    cause: str | None = None,
    estimate: Change[datetime] = KEEP,
    note: str | None = None,
) -> Outcome:
    """Change status, cause, estimate (keep, clear or set) or add a note; customers hear
    what matters."""
    incidents_lock(conn)
    row = get(conn, incident_id)
    outcome = Outcome(incident_id)
    if status is not None and status not in OPS_STATUSES:
        raise OpsError(f"status must be one of {', '.join(OPS_STATUSES)}")
    if cause is not None:
        cause = _clean(cause, "cause", 1000)
        record.change(conn, row.id, cause=cause)
    note = _clean(note, "note", 2000) if note is not None else None
    if row.status == "resolved":
        if not isinstance(estimate, Keep) or status is not None:
            raise OpsError(f"incident {incident_id} is resolved; only --cause and --note apply")
        if cause is not None:
            body = update_words("summary", cause=cause, note=note)
            summary = NewUpdate("summary", "postmortem", body, row.notify, next_update=CLEAR)
            record.add_update(conn, row.id, summary, now, policy)
            outcome.said.append("summary to everyone the incident reached whose line is back")
            waiting = conn.execute(
                select(func.count()).where(
                    incidents.c.parent_id == row.id, incidents.c.status != "resolved"
                )
            ).scalar_one()
            if waiting:
                outcome.held.append(
                    f"summary for {waiting} line(s) still down (open cases): each hears it"
                    " when its line is back"
                )
        elif note is not None:
            quiet_note = NewUpdate("note", "resolved", note, False, next_update=CLEAR)
            record.add_update(conn, row.id, quiet_note, now, policy)
            outcome.said.append("note on the page")
        return outcome
    event = "note"
    announced: Change[datetime] = KEEP
    etr = estimate.value if isinstance(estimate, Set) else None
    if not isinstance(estimate, Keep):
        if etr is not None and etr <= now:
            raise OpsError("the estimate must be in the future")
        announce = _meaningful(row.etr, etr, policy)
        # The first estimate customers are told is news of a fix time, not a change.
        first = etr is not None and not _told_an_estimate(conn, row.id)
        record.add_estimate(conn, row.id, etr, now, reason=note or "set by ops", announced=announce)
        if announce:
            record.change(conn, row.id, etr_warned=None)
            announced = estimate
            event = "etr_set" if first else "etr_changed"
            outcome.said.append(f"estimate {etr:%Y-%m-%d %H:%M} UTC" if etr else "no estimate")
        else:
            outcome.held.append(
                f"estimate kept, not announced (within {policy.etr_threshold} of the last one)"
            )
    new_status = status or row.status
    if status is not None and status != row.status:
        record.change(conn, row.id, status=status)
        outcome.said.append(f"status {status}")
    if cause is not None:
        outcome.said.append("cause")
    if note is not None:
        outcome.said.append("note")
    if event == "note" and not (status and status != row.status) and cause is None and not note:
        return outcome  # only a wobble of the estimate: nothing to say
    body = update_words("ops", note=note, cause=cause, etr_changed=event.startswith("etr_"),
                        first=event == "etr_set", etr=stamp(etr), status=new_status)  # fmt: skip
    news = NewUpdate(event, new_status, body, row.notify, etr=announced)
    record.add_update(conn, row.id, news, now, policy)
    return outcome


def _told_an_estimate(conn: Connection, incident_id: int) -> bool:
    """Whether customers of this incident were ever told an estimate."""
    told = conn.execute(
        select(etr_history.c.id)
        .where(
            etr_history.c.incident_id == incident_id,
            etr_history.c.etr.is_not(None),
            etr_history.c.announced,
        )
        .limit(1)
    ).first()
    return told is not None


def _meaningful(announced: datetime | None, proposed: datetime | None, policy: Policy) -> bool:
    """Whether a new estimate is worth a message: a first one, none any more, or a move of
    at least the threshold (smaller wobbles are kept but not announced)."""
    if announced is None or proposed is None:
        return announced != proposed
    return abs(proposed - announced) >= policy.etr_threshold


def resolve_by_ops(
    conn: Connection,
    index: NetworkIndex,
    incident_id: int,
    down_elements: Collection[str],
    now: datetime,
    policy: Policy,
) -> None:
    """Ops say it is fixed: premises whose own line is still down stay in as cases. A case
    whose own line still looks down is refused: resolving it would only open another case
    for the same line and tell its customer "still looks down" again."""
    incidents_lock(conn)
    row = get(conn, incident_id)
    if row.status == "resolved":
        raise OpsError(f"incident {incident_id} is already resolved")
    down = (
        lines_still_down(conn, index, incident_id, down_elements) if row.scope == "premise" else []
    )
    if down:
        raise OpsError(
            f"incident {incident_id} is the case of one line ({', '.join(down)}), which still"
            " looks down to the monitoring: nothing changed. It resolves by itself when the"
            " line is back; its customer keeps hearing on the promised cadence."
        )
    resolve(conn, index, incident_id, down_elements, now, policy)


def heads_up(
    conn: Connection, incident_id: int, note: str | None, now: datetime, policy: Policy
) -> None:
    """Turn an at-risk incident into a heads-up to the customers it would affect."""
    incidents_lock(conn)
    row = get(conn, incident_id)
    if row.source != "at_risk" or row.status == "resolved":
        raise OpsError(f"incident {incident_id} is not an open at-risk incident")
    body = _clean(note, "note", 2000) if note else update_words("at_risk")
    record.change(conn, row.id, notify=True)
    record.add_update(conn, row.id, NewUpdate("at_risk", row.status, body, True), now, policy)


def add_maintenance(
    conn: Connection,
    index: NetworkIndex,
    target: Target,
    title: str,
    starts: datetime,
    ends: datetime,
    now: datetime,
    policy: Policy,
) -> int:
    """Schedule planned work; notices go to the affected premises ahead, at start, at end."""
    if not now < starts < ends:
        raise OpsError("planned work must start in the future and end after it starts")
    title = _clean(title, "title", 200)
    body = update_words("maintenance", title=title, starts=stamp(starts), ends=stamp(ends))
    new = NewIncident(
        target.rows, title, source="maintenance", root_element=target.element, notify=False,
        body=body, started=starts, status="scheduled", event="scheduled", scheduled=(starts, ends),
    )  # fmt: skip
    return open_incident(conn, index, new, now, policy)


def reopen_for_customer(
    conn: Connection, customer_id: str, now: datetime, policy: Policy
) -> Row[Any] | None:
    """A customer says they are still out (an OUT reply): open their own case, linked to
    the incident that last told them "restored". Returns the case."""
    incidents_lock(conn)  # an OUT reply and the cycle at once: one case, numbered updates
    premise = conn.execute(
        select(premises.c.premise_id, premises.c.element_id)
        .join(customers, customers.c.premise_id == premises.c.premise_id)
        .where(customers.c.customer_id == customer_id)
    ).first()
    if premise is None:
        return None
    last_restored = conn.execute(
        select(deliveries.c.incident_id)
        .join(
            incident_updates,
            (incident_updates.c.incident_id == deliveries.c.incident_id)
            & (incident_updates.c.seq == deliveries.c.update_seq),
        )
        .where(
            deliveries.c.customer_id == customer_id,
            deliveries.c.status == "sent",
            incident_updates.c.event.in_(("restored", "maintenance_end")),
        )
        .order_by(deliveries.c.sent_at.desc())
        .limit(1)
    ).scalar()
    parent = get(conn, int(last_restored)) if last_restored is not None else None
    # The OUT reply gets its answer straight away; the case promises the next update.
    case = open_case(
        conn, premise.premise_id, premise.element_id, parent, "reopened", now, policy, False
    )
    promise = policy.cadence.next_update(now, now, incident_zones(conn, case))
    record.change(conn, case, notify=True, next_update_at=promise)
    return get(conn, case)


def get(conn: Connection, incident_id: int) -> Row[Any]:
    """One incident, or a clear error."""
    row = conn.execute(select(incidents).where(incidents.c.id == incident_id)).first()
    if row is None:
        raise OpsError(f"no incident {incident_id}")
    return row


def _clean(text: str | None, what: str, limit: int) -> str:
    # Whatever was typed or pasted, what is kept (and shown to customers and the public)
    # has no control or bidi characters, and one space between words.
    value = " ".join(clean(text or "").split())
    if not value:
        raise OpsError(f"the {what} is empty")
    if len(value) > limit:
        raise OpsError(f"the {what} is longer than {limit} characters")
    return value
