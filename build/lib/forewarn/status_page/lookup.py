"""The "Am I affected?" index: postcodes, districts and streets of active public incidents.

An area is listed only if the network has at least the privacy floor of premises in it;
a postcode too small to list is answered by its district instead. No premise, address or
house number is in the index.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from forewarn.network.address import district
from forewarn.status_page.affected import Affected
from forewarn.store import premises


def build_lookup(
    conn: Connection,
    incidents: Sequence[dict[str, Any]],
    affected: Mapping[str, Affected],
    floor: int,
) -> dict[str, Any]:
    """The lookup index for the active incidents big enough to be public."""
    areas: dict[str, set[str]] = defaultdict(set)
    shown: dict[str, dict[str, Any]] = {}
    for incident in incidents:
        where = affected.get(incident["id"])
        if where is None:
            continue  # below the privacy floor: not in the lookup
        for key in _listable(conn, where.postcodes, where.streets, floor):
            areas[key].add(incident["id"])
        shown[incident["id"]] = {
            "name": incident["name"],
            "status": incident["status"],
            "etr": incident["x_etr"],
            "url": f"incidents/{incident['id']}.html",
        }
    return {
        "areas": {key: sorted(ids, key=int) for key, ids in sorted(areas.items())},
        "incidents": shown,
    }


def _listable(
    conn: Connection, postcodes: frozenset[str], streets: frozenset[str], floor: int
) -> list[str]:
    """Keys for the areas with at least `floor` premises in the network."""
    keys: list[str] = []
    sizes = _premises_per(conn, premises.c.postcode, postcodes)
    for code in postcodes:
        keys.append(code if sizes.get(code, 0) >= floor else f"district:{district(code)}")
    street_sizes = _premises_per(conn, premises.c.street, streets)
    keys.extend(f"street:{s}" for s in streets if street_sizes.get(s, 0) >= floor)
    return keys


def _premises_per(conn: Connection, column: Any, values: frozenset[str]) -> dict[str, int]:
    """How many premises the network has for each of the values of an indexed column."""
    sizes: dict[str, int] = {}
    ordered = sorted(values)
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
        query = select(column, func.count()).where(column.in_(chunk)).group_by(column)
        sizes.update({str(value): int(n) for value, n in conn.execute(query)})
    return sizes
