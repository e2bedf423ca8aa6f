"""Build the public status data in Statuspage's v2 shape (FACTS.md), with forewarn's
extras only in `x_` fields. No personal data: areas are coarse, counts rounded."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from forewarn.incidents.lifecycle import rounded
from forewarn.network import NetworkIndex
from forewarn.store import elements, incident_updates, incidents

PAGE_ID = "forewarn"
DESCRIPTIONS = {
    "none": "All Systems Operational",
    "minor": "Minor Service Outage",
    "major": "Partial System Outage",
    "critical": "Major Service Outage",
}
SEVERITY = ["none", "minor", "major", "critical"]
RECENT = 50  # incidents.json lists the latest 50, as Statuspage does


@dataclass(frozen=True, slots=True)
class PageConfig:
    """The page's name, public URL and privacy floor."""

    name: str
    url: str
    privacy_floor: int


def impact(premises: int) -> str:
    """Statuspage impact from the number of premises affected."""
    if premises >= 10_000:
        return "critical"
    if premises >= 500:
        return "major"
    return "minor"


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def summary(
    conn: Connection, index: NetworkIndex, page: PageConfig, now: datetime
) -> dict[str, Any]:
    """The whole of `api/v2/summary.json`."""
    open_incidents = [
        _incident(conn, row, page)
        for row in conn.execute(
            select(incidents)
            .where(incidents.c.public.is_(True), incidents.c.status != "resolved")
            .order_by(incidents.c.started_at.desc())
        )
    ]
    components = _components(conn, index, open_incidents, page, now)
    worst = max((SEVERITY.index(i["impact"]) for i in open_incidents), default=0)
    for incident in open_incidents:
        incident["components"] = [c for c in components if c["id"] in incident.pop("_roots")]
    recent = [
        _incident(conn, row, page)
        for row in conn.execute(
            select(incidents)
            .where(incidents.c.public.is_(True))
            .order_by(incidents.c.opened_at.desc(), incidents.c.id.desc())
            .limit(RECENT)
        )
    ]
    for incident in recent:
        incident.pop("_roots")
        incident["components"] = []
    return {
        "page": {
            "id": PAGE_ID,
            "name": page.name,
            "url": page.url,
            "time_zone": "Etc/UTC",
            "updated_at": _iso(now),
        },
        "status": {"indicator": SEVERITY[worst], "description": DESCRIPTIONS[SEVERITY[worst]]},
        "components": components,
        "incidents": open_incidents,
        "scheduled_maintenances": [],
        # not part of summary.json: the latest incidents, for incidents.json and their pages
        "x_recent_incidents": recent,
    }


def _incident(conn: Connection, row: Any, page: PageConfig) -> dict[str, Any]:
    updates = conn.execute(
        select(incident_updates)
        .where(incident_updates.c.incident_id == row.id)
        .order_by(incident_updates.c.seq.desc())
    ).all()
    shown = row.premises_count >= page.privacy_floor
    return {
        "id": str(row.id),
        "name": row.title,
        "status": row.status,
        "created_at": _iso(row.opened_at),
        "updated_at": _iso(row.updated_at),
        "monitoring_at": None,
        "resolved_at": _iso(row.resolved_at),
        "impact": impact(row.premises_count),
        "shortlink": f"{page.url.rstrip('/')}/incidents/{row.id}.html",
        "started_at": _iso(row.started_at),
        "page_id": PAGE_ID,
        "incident_updates": [
            {
                "id": f"{row.id}-{u.seq}",
                "status": u.status,
                "body": u.body,
                "incident_id": str(row.id),
                "created_at": _iso(u.created_at),
                "updated_at": _iso(u.created_at),
                "display_at": _iso(u.created_at),
                "affected_components": None,
                "deliver_notifications": bool(u.notify),
                "custom_tweet": None,
                "tweet_id": None,
            }
            for u in updates
        ],
        "x_etr": _iso(row.etr),
        "x_premises_affected": rounded(row.premises_count) if shown else None,
        "x_area": row.area_name if shown else None,
        "x_next_update_at": _iso(row.next_update_at),
        "_roots": {row.root_element},
    }


def _components(
    conn: Connection,
    index: NetworkIndex,
    open_incidents: list[dict[str, Any]],
    page: PageConfig,
    now: datetime,
) -> list[dict[str, Any]]:
    """One component per top-level element (an exchange or region) until issue 4's config."""
    tree = index.tree
    status: dict[str, str] = {}
    for incident in open_incidents:
        for root in list(incident["_roots"]):
            node = tree.index.get(root)
            if node is None:
                continue
            top = node
            while tree.parent[top] >= 0:
                top = int(tree.parent[top])
            share = tree.leaf_count[node] / max(int(tree.leaf_count[top]), 1)
            state = "major_outage" if share >= 0.5 else "partial_outage"
            if status.get(tree.ids[top]) != "major_outage":
                status[tree.ids[top]] = state
            incident["_roots"].add(tree.ids[top])
    rows = conn.execute(
        select(elements.c.element_id, elements.c.name)
        .where(elements.c.parent_id.is_(None))
        .order_by(elements.c.element_id)
    ).all()
    return [
        {
            "id": element_id,
            "name": name,
            "status": status.get(element_id, "operational"),
            "created_at": _iso(now),
            "updated_at": _iso(now),
            "position": position,
            "description": None,
            "showcase": True,
            "start_date": None,
            "group_id": None,
            "page_id": PAGE_ID,
            "group": False,
            "only_show_if_degraded": False,
        }
        for position, (element_id, name) in enumerate(rows, start=1)
    ]
