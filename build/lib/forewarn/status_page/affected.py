"""Where each public incident's affected premises are: read once per build, shared by the
map (coordinates) and the lookup (postcodes and streets)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.engine import Connection

from forewarn.store import incident_premises, premises


@dataclass(frozen=True, slots=True)
class Affected:
    """An incident's affected premises as the page may use them: never one by one."""

    points: npt.NDArray[np.float64]  # (lon, lat) rows, for premises with coordinates
    postcodes: frozenset[str]
    streets: frozenset[str]


def affected_premises(conn: Connection, incidents: Sequence[dict[str, Any]]) -> dict[str, Affected]:
    """For each incident shown with a premise count (at or above the floor), its premises."""
    found = {}
    for incident in incidents:
        if incident["x_premises_affected"] is None:
            continue  # below the privacy floor: nothing about where it is
        rows = conn.execute(
            select(premises.c.lon, premises.c.lat, premises.c.postcode, premises.c.street)
            .join(incident_premises, incident_premises.c.premise_id == premises.c.premise_id)
            .where(
                incident_premises.c.incident_id == int(incident["id"]),
                incident_premises.c.state == "affected",
            )
        ).all()
        points = np.array(
            [(lon, lat) for lon, lat, _, _ in rows if lat is not None], dtype=np.float64
        ).reshape(-1, 2)
        found[incident["id"]] = Affected(
            points,
            frozenset(p for _, _, p, _ in rows if p),
            frozenset(s for _, _, _, s in rows if s),
        )
    return found
