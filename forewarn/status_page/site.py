"""Everything the public site shows, gathered once, then rendered to files: HTML pages in
each locale, Statuspage's JSON, the Atom feed, the areas and the lookup index."""

from __future__ import annotations

import json
import string
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from sqlalchemy import select
from sqlalchemy.engine import Connection

from forewarn.cleantext import clean, clean_all
from forewarn.incidents.ledger.queue import telling
from forewarn.incidents.updates import rounded
from forewarn.network import NetworkIndex
from forewarn.quiet import zone_info
from forewarn.status_page import areas as area_maps
from forewarn.status_page.affected import affected_premises
from forewarn.status_page.components import Component, component_status, coverage
from forewarn.status_page.history import (
    ComponentHistory,
    component_histories,
    recent_public_incidents,
)
from forewarn.status_page.lookup import build_lookup
from forewarn.status_page.statuspage import (
    PageConfig,
    component_object,
    impact,
    incident_objects,
    iso,
    page_object,
    status_object,
)
from forewarn.store import incidents
from forewarn.texts import day_time, environment, said_in, zone_name

LOCALES = ("en", "es")  # the first is the default, at the site's root
RECENT = 50  # incidents.json lists the latest 50, as Statuspage does
PAGES_FOR_DAYS = 30  # resolved incidents keep their page this long (messages link to it)
MAX_PAGES = 500


@dataclass(slots=True)
class SiteData:
    """What the site shows; built by `collect`, turned into files by `render`."""

    page: PageConfig
    now: datetime
    page_object: dict[str, Any]
    status: dict[str, str]
    components: list[dict[str, Any]]
    active: list[dict[str, Any]]
    recent: list[dict[str, Any]]
    with_pages: list[dict[str, Any]]
    history: list[ComponentHistory]
    history_rows: list[Any]
    areas: list[area_maps.Area]
    lookup: dict[str, Any]
    maintenances: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """`api/v2/summary.json`."""
        return {
            "page": self.page_object,
            "status": self.status,
            "components": self.components,
            "incidents": self.active,
            "scheduled_maintenances": self.maintenances,
        }


def collect(
    conn: Connection,
    index: NetworkIndex,
    page: PageConfig,
    components: list[Component],
    now: datetime,
    send_rate: float | None = None,
) -> SiteData:
    """Read the store once for everything the site shows; `send_rate` (messages a second
    of the slowest paced channel) says when a fan-out is long enough to show."""
    public = incidents.c.public.is_(True) & (incidents.c.source != "maintenance")
    active_rows = conn.execute(
        select(incidents)
        .where(public, incidents.c.status != "resolved")
        .order_by(incidents.c.started_at.desc())
    ).all()
    page_rows = conn.execute(
        select(incidents)
        .where(public, incidents.c.opened_at >= now - timedelta(days=PAGES_FOR_DAYS))
        .order_by(incidents.c.opened_at.desc(), incidents.c.id.desc())
        .limit(MAX_PAGES)
    ).all()
    recent_rows = conn.execute(
        select(incidents)
        .where(public)
        .order_by(incidents.c.opened_at.desc(), incidents.c.id.desc())
        .limit(RECENT)
    ).all()
    rows = {r.id: r for r in [*active_rows, *page_rows, *recent_rows]}
    shares = {
        (row.id, c.id): coverage(index, c, row.root_element)
        for row in rows.values()
        for c in components
    }
    total = max(len(index.premise_ids), 1)
    impacts = {
        row_id: impact(
            max([row.premises_count / total] + [shares[(row_id, c.id)] for c in components]),
            page,
        )
        for row_id, row in rows.items()
    }
    # What the open faults reach together, per component and over the whole network.
    out_of = {c.id: min(sum(shares[(r.id, c.id)] for r in active_rows), 1.0) for c in components}
    out_overall = min(sum(r.premises_count for r in active_rows) / total, 1.0)
    component_objects = [
        component_object(
            c.id,
            c.name,
            component_status(out_of[c.id], page.major_share, page.critical_share),
            position,
            now,
            c.description,
        )
        for position, c in enumerate(components, start=1)
    ]
    by_id = {c["id"]: c for c in component_objects}
    components_of = {
        row_id: [by_id[c.id] for c in components if shares[(row_id, c.id)] > 0] for row_id in rows
    }
    objects = {
        o["id"]: o
        for o in incident_objects(conn, list(rows.values()), page, components_of, impacts)
    }
    active = [objects[str(r.id)] for r in active_rows]
    _show_telling(conn, active, send_rate, page.privacy_floor)
    history_rows = recent_public_incidents(conn, now)
    affected = affected_premises(conn, active)
    return SiteData(
        page=page,
        now=now,
        page_object=page_object(page, now),
        status=status_object(active, max([out_overall, *out_of.values()]), page),
        components=component_objects,
        active=active,
        recent=[objects[str(r.id)] for r in recent_rows],
        # every active incident has a page, and so has every recent one (messages link there)
        with_pages=[
            objects[str(i)] for i in dict.fromkeys(r.id for r in [*active_rows, *page_rows])
        ],
        history=component_histories(index, components, history_rows, now, page),
        history_rows=history_rows,
        areas=area_maps.incident_areas(active, affected, page.privacy_floor),
        lookup=build_lookup(conn, active, affected, page.privacy_floor),
        maintenances=_maintenances(conn, page, now),
    )


# A fan-out still this long from done (at the slowest paced channel's rate) is on the page.
TELLING_SHOWN_S = 180.0


def _show_telling(
    conn: Connection, active: list[dict[str, Any]], rate: float | None, floor: int
) -> None:
    """Add `x_telling` ({"customers", "told"}, rounded as every count on the page) to the
    open incidents whose messages will take more than a few minutes yet to go out."""
    if rate is None:
        return
    found = telling(conn, [int(i["id"]) for i in active])
    for incident in active:
        everyone, told = found.get(int(incident["id"]), (0, 0))
        if (everyone - told) / rate > TELLING_SHOWN_S:
            # Customers, not premises: one reached is no line's secret, but the total
            # is rounded as every count on the page.
            incident["x_telling"] = {
                "customers": rounded(everyone, floor),
                "told": rounded(told, 1) or "0",
            }


# Statuspage's maintenance statuses for forewarn's planned-work states.
MAINTENANCE_STATUS = {"scheduled": "scheduled", "in_progress": "in_progress"}


def _maintenances(conn: Connection, page: PageConfig, now: datetime) -> list[dict[str, Any]]:
    """Public planned work: upcoming, in progress, and finished in the last week."""
    rows = conn.execute(
        select(incidents)
        .where(
            incidents.c.source == "maintenance",
            incidents.c.public.is_(True),
            (incidents.c.status != "resolved") | (incidents.c.resolved_at >= now - timedelta(7)),
        )
        .order_by(incidents.c.scheduled_for)
        .limit(50)
    ).all()
    found = incident_objects(conn, list(rows), page, {})
    for row, item in zip(rows, found, strict=True):
        item["status"] = MAINTENANCE_STATUS.get(row.status, "completed")
        item["impact"] = "maintenance"
        item["scheduled_for"] = iso(row.scheduled_for)
        item["scheduled_until"] = iso(row.scheduled_until)
        for u in item["incident_updates"]:
            u["status"] = MAINTENANCE_STATUS.get(u["status"], "completed")
    return found


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = environment(lstrip_blocks=True).overlay()
    env.filters["when"] = _when
    env.filters["place"] = place_label
    env.filters["words"] = jinja2.pass_context(
        lambda context, update, locale: said_in(
            update["body"], update.get("x_kind"), update.get("x_params"), locale, "update",
            context.get("zone"),
        )
    )  # fmt: skip
    env.filters["title_in"] = lambda row, locale: said_in(
        row.title, row.title_kind, json.loads(row.title_params or "{}"), locale, "title"
    )
    env.filters["name_in"] = lambda incident, locale: said_in(
        incident["name"], incident.get("x_name_kind"), incident.get("x_name_params"), locale,
        "title",
    )  # fmt: skip
    return env


# Leaflet (as the xstatic-leaflet package ships it), copied into the site: the page loads
# nothing from anyone else's server but the tiles the operator chose.
LEAFLET_FILES = ("leaflet.js", "leaflet.css", "images/layers.png", "images/layers-2x.png")


@lru_cache(maxsize=1)
def street_map_assets() -> dict[str, bytes]:
    """The map library's files, by their path in the site."""
    from xstatic.pkg import leaflet

    root = Path(leaflet.BASE_DIR)
    return {f"assets/leaflet/{name}": (root / name).read_bytes() for name in LEAFLET_FILES}


def place_label(key: str) -> str:
    """A lookup key as a place is written: "street:mill road" is Mill Road (the index
    keeps streets in lower case to match what people type), a postcode as it is."""
    kind, _, name = key.partition(":")
    if not name:
        return kind
    return string.capwords(name) if kind == "street" else name


@jinja2.pass_context
def _when(context: Any, value: str | datetime | None) -> str:
    """A page time ("2026-11-23T14:00:00Z", or a stored moment) in the operator's zone,
    with its name."""
    if not value:
        return ""
    moment = (
        value
        if isinstance(value, datetime)
        else datetime.fromisoformat(value.replace("Z", "+00:00"))
    )
    local = moment.astimezone(zone_info(context.get("zone")))
    # In the words the updates on the same page use for their times, with the year.
    return day_time(local, context.get("locale"), dated=True, zone=zone_name(local), year=True)


@lru_cache(maxsize=1)
def strings() -> dict[str, dict[str, str]]:
    """The page's words in every locale (templates/site/strings.json)."""
    loader = _environment().loader
    assert loader is not None
    source, _, _ = loader.get_source(_environment(), "site/strings.json")
    table: dict[str, dict[str, str]] = json.loads(source)
    return table


def render(data: SiteData) -> dict[str, bytes]:
    """Every file of the site, by path relative to the site's root."""
    files: dict[str, bytes] = {}
    summary = data.summary()
    shapes, width, height = area_maps.project(data.areas)
    for locale in LOCALES:
        prefix = "" if locale == LOCALES[0] else f"{locale}/"
        base = {
            "data": data, "summary": summary, "shapes": shapes, "map_width": width,
            "map_height": height, "t": strings()[locale], "locale": locale,
            "locales": LOCALES, "colour": data.page.colour,
            "lang_names": {code: strings()[code]["lang_name"] for code in LOCALES},
            "zone": data.page.time_zone,
        }  # fmt: skip
        # `root` leads to the site's shared files (the JSON, the feed, the map's library),
        # `home` to this language's own pages: a Spanish page links to Spanish pages.
        for name in ("index", "history", "lookup"):
            context = base | {"root": "../" * prefix.count("/"), "home": "", "here": f"{name}.html"}
            files[f"{prefix}{name}.html"] = _page(f"site/{name}.html.j2", context)
        for incident in data.with_pages:
            context = base | {
                "root": "../" * (prefix.count("/") + 1),
                "home": "../",
                "here": f"incidents/{incident['id']}.html",
                "incident": incident,
            }
            files[f"{prefix}incidents/{incident['id']}.html"] = _page(
                "site/incident.html.j2", context
            )
    files["history.atom"] = _page("site/history.atom.j2", {"data": data})
    files["areas.geojson"] = _json(area_maps.geojson(data.areas))
    if data.page.tiles:
        files.update(street_map_assets())
    files["lookup.json"] = _json(data.lookup, compact=True)
    files.update(_api(data, summary))
    return files


def _api(data: SiteData, summary: dict[str, Any]) -> dict[str, bytes]:
    page = data.page_object
    scheduled = data.maintenances
    return {
        "api/v2/summary.json": _json(summary),
        "api/v2/status.json": _json({"page": page, "status": data.status}),
        "api/v2/components.json": _json({"page": page, "components": data.components}),
        "api/v2/incidents.json": _json({"page": page, "incidents": data.recent}),
        "api/v2/incidents/unresolved.json": _json({"page": page, "incidents": data.active}),
        "api/v2/scheduled-maintenances.json": _json(
            {"page": page, "scheduled_maintenances": scheduled}
        ),
        "api/v2/scheduled-maintenances/upcoming.json": _json(
            {
                "page": page,
                "scheduled_maintenances": [m for m in scheduled if m["status"] == "scheduled"],
            }
        ),
        "api/v2/scheduled-maintenances/active.json": _json(
            {
                "page": page,
                "scheduled_maintenances": [
                    m for m in scheduled if m["status"] in ("in_progress", "verifying")
                ],
            }
        ),
    }


# Every public file passes through `clean` on its way out: whatever ops typed or a feed
# named, no control character (which breaks XML) or bidi override (which makes a page say
# what it does not) reaches the public. The templates add none of their own.


def _page(template: str, context: dict[str, Any]) -> bytes:
    return clean(_environment().get_template(template).render(context)).encode()


def _json(data: object, compact: bool = False) -> bytes:
    data = clean_all(data)  # json.dumps would write a control character as \u0000
    if compact:
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    return json.dumps(data, indent=2, ensure_ascii=False).encode()


__all__ = ["LOCALES", "SiteData", "collect", "render"]
