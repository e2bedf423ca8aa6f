"""Statuspage's v2 JSON shapes (FACTS.md) with its exact status words; forewarn's extras
only in `x_` fields. Counts are rounded and shown only at or above the privacy floor;
areas are places that clear the floor (incidents/places.py). Impact follows the share of
premises out, not a head count."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection, Row

from forewarn.incidents.updates import rounded
from forewarn.store import etr_history, incident_updates

PAGE_ID = "forewarn"
SEVERITY = ("none", "minor", "major", "critical")
DESCRIPTIONS = {
    "none": "All Systems Operational",
    "minor": "Minor Service Outage",
    "major": "Partial System Outage",
    "critical": "Major Service Outage",
}


@dataclass(frozen=True, slots=True)
class PageConfig:
    """The page's name, public URL, colour, privacy floor and impact thresholds."""

    name: str
    url: str
    privacy_floor: int
    colour: str = "#1f5fa8"
    # The operator's zone: the page tells its times there, with the zone's name.
    time_zone: str = "UTC"
    # Shares of premises out (of a component, or of the network) that make an impact
    # "major" and "critical" (FOREWARN_IMPACT_MAJOR_SHARE, _CRITICAL_SHARE).
    major_share: float = 0.2
    critical_share: float = 0.5
    # A street map under the areas (FOREWARN_MAP_TILES): its tiles' URL, with {z}, {x}
    # and {y}, and the attribution its provider asks for; None: the drawn map alone.
    tiles: str | None = None
    attribution: str = ""
    # Where the page's follow forms post (the receiver's /follow); None: no forms.
    follow_url: str | None = None
    # Where the lookup's "report a problem" form posts (the receiver's /report).
    report_url: str | None = None


def iso(moment: datetime | None) -> str | None:
    """Statuspage's timestamp format (UTC, Z; milliseconds when there are any, as
    Statuspage writes them, and as HTML's `<time datetime>` allows: at most three)."""
    if moment is None:
        return None
    spec = "milliseconds" if moment.microsecond else "seconds"
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return aware.isoformat(timespec=spec).replace("+00:00", "Z")


def impact(share: float, page: PageConfig) -> str:
    """Statuspage impact from the share (0..1) of premises out: a few streets are "minor",
    a large share "major", most of the service "critical"."""
    if share >= page.critical_share:
        return "critical"
    if share >= page.major_share:
        return "major"
    return "minor"


def page_object(page: PageConfig, now: datetime) -> dict[str, Any]:
    """The `page` object every file starts with."""
    return {
        "id": PAGE_ID,
        "name": page.name,
        "url": page.url,
        # The operator's zone, as Statuspage names zones (IANA; UTC as Etc/UTC).
        "time_zone": "Etc/UTC" if page.time_zone == "UTC" else page.time_zone,
        "updated_at": iso(now),
    }


def status_object(
    open_incidents: Iterable[dict[str, Any]], share: float, page: PageConfig
) -> dict[str, str]:
    """The overall indicator and its description: the worst open incident's impact, and
    at least what the share of premises out across all of them says (a storm of many
    small faults is as bad as one big one)."""
    worst = max((SEVERITY.index(i["impact"]) for i in open_incidents), default=0)
    if share > 0:
        worst = max(worst, SEVERITY.index(impact(share, page)))
    return {"indicator": SEVERITY[worst], "description": DESCRIPTIONS[SEVERITY[worst]]}


def component_object(
    component_id: str,
    name: str,
    status: str,
    position: int,
    now: datetime,
    description: str | None = None,
) -> dict[str, Any]:
    """One component in Statuspage's shape."""
    return {
        "id": component_id,
        "name": name,
        "status": status,
        "created_at": iso(now),
        "updated_at": iso(now),
        "position": position,
        "description": description,
        "showcase": True,
        "start_date": None,
        "group_id": None,
        "page_id": PAGE_ID,
        "group": False,
        "only_show_if_degraded": False,
    }


def incident_objects(
    conn: Connection,
    rows: Sequence[Row[Any]],
    page: PageConfig,
    components_of: dict[int, list[dict[str, Any]]],
    impacts: dict[int, str] | None = None,
) -> list[dict[str, Any]]:
    """Incidents in Statuspage's shape, updates newest first (two queries for all), with
    their `impacts` by id ("minor" when not given)."""
    ids = [row.id for row in rows]
    updates: dict[int, list[Row[Any]]] = {i: [] for i in ids}
    estimates: dict[int, list[Row[Any]]] = {i: [] for i in ids}
    if ids:
        for u in conn.execute(
            select(incident_updates)
            .where(incident_updates.c.incident_id.in_(ids))
            .order_by(incident_updates.c.seq.desc())
        ):
            updates[u.incident_id].append(u)
        for e in conn.execute(
            select(etr_history).where(etr_history.c.incident_id.in_(ids)).order_by(etr_history.c.id)
        ):
            estimates[e.incident_id].append(e)
    return [
        _incident(
            row,
            page,
            updates[row.id],
            estimates[row.id],
            components_of.get(row.id, []),
            (impacts or {}).get(row.id, "minor"),
        )
        for row in rows
    ]


def _incident(
    row: Row[Any],
    page: PageConfig,
    updates: list[Row[Any]],
    estimates: list[Row[Any]],
    components: list[dict[str, Any]],
    impact_word: str,
) -> dict[str, Any]:
    shown = row.premises_count >= page.privacy_floor
    return {
        "id": str(row.id),
        "name": row.title,
        "status": row.status,
        "created_at": iso(row.opened_at),
        "updated_at": iso(row.updated_at),
        "monitoring_at": None,
        "resolved_at": iso(row.resolved_at),
        "impact": impact_word,
        "shortlink": f"{page.url.rstrip('/')}/incidents/{row.id}.html",
        "started_at": iso(row.started_at),
        "page_id": PAGE_ID,
        "incident_updates": [
            {
                "id": f"{row.id}-{u.seq}",
                "status": u.status,
                "body": u.body,
                "incident_id": str(row.id),
                "created_at": iso(u.created_at),
                "updated_at": iso(u.created_at),
                "display_at": iso(u.created_at),
                "affected_components": None,
                "deliver_notifications": bool(u.notify),
                "custom_tweet": None,
                "tweet_id": None,
                # What the body says, for the page's other locales (None: free text).
                "x_kind": u.kind,
                "x_params": json.loads(u.params) if u.params else None,
            }
            for u in updates
        ],
        "components": components,
        "x_etr": iso(row.etr),
        "x_etr_history": [
            {"etr": iso(e.etr), "set_at": iso(e.set_at), "reason": e.reason}
            for e in estimates
            # The page shows the estimates customers were told, never a kept wobble.
            if e.announced
        ],
        "x_premises_affected": rounded(row.premises_count, page.privacy_floor) if shown else None,
        # A place that clears the floor by construction, so named whatever the count.
        "x_area": row.area_name,
        "x_next_update_at": iso(row.next_update_at),
        # What the name says, for the page's other locales (None: a title ops wrote).
        "x_name_kind": row.title_kind,
        "x_name_params": json.loads(row.title_params) if row.title_params else None,
    }
