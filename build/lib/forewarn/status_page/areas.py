"""Coarse areas of active incidents: a padded convex hull around the affected premises,
rounded to about 100 m, drawn only for incidents at or above the privacy floor."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from forewarn.status_page.affected import Affected

FloatArray = npt.NDArray[np.float64]
PAD_M = 150.0  # hulls grow by this much, so no edge runs through a house
DECIMALS = 3  # about 110 m of latitude
MIN_FRAME_DEG = 0.01  # the map shows at least about a kilometre around the areas


@dataclass(frozen=True, slots=True)
class Area:
    """One incident's area as a closed ring of (lon, lat) corners."""

    incident_id: str
    name: str
    status: str
    premises: str  # rounded, for display
    ring: tuple[tuple[float, float], ...]


def hull(points: FloatArray) -> FloatArray:
    """Convex hull (Andrew's monotone chain), counter-clockwise, not closed."""
    unique = np.unique(points, axis=0)
    if len(unique) < 3:
        return unique

    def half(pts: FloatArray) -> list[FloatArray]:
        chain: list[FloatArray] = []
        for p in pts:
            while len(chain) >= 2 and _cross(chain[-2], chain[-1], p) <= 0:
                chain.pop()
            chain.append(p)
        return chain

    lower, upper = half(unique), half(unique[::-1])
    return np.array(lower[:-1] + upper[:-1])


def _cross(o: FloatArray, a: FloatArray, b: FloatArray) -> float:
    return float((a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]))


def coarse_ring(points: FloatArray) -> tuple[tuple[float, float], ...]:
    """A hull padded by PAD_M all round (a hull of small circles around its corners),
    rounded to about 100 m, and closed as GeoJSON wants."""
    corners = hull(points)
    lat0 = float(np.mean(points[:, 1]))
    pad_lat = math.degrees(PAD_M / 6_371_000)
    pad_lon = pad_lat / max(math.cos(math.radians(lat0)), 1e-6)
    angles = np.linspace(0, 2 * math.pi, 12, endpoint=False)
    circle = np.column_stack((np.cos(angles) * pad_lon, np.sin(angles) * pad_lat))
    padded = (corners[:, None, :] + circle[None, :, :]).reshape(-1, 2)
    ring = [(round(float(x), DECIMALS), round(float(y), DECIMALS)) for x, y in hull(padded)]
    ring = [p for i, p in enumerate(ring) if p != ring[i - 1]] or ring[:1]
    return (*ring, ring[0])


def incident_areas(
    incidents: Sequence[dict[str, Any]], affected: Mapping[str, Affected], floor: int
) -> list[Area]:
    """Areas for the active incidents that are big enough to show."""
    areas = []
    for incident in incidents:
        if incident["id"] not in affected:
            continue  # below the privacy floor: no shape at all
        points = affected[incident["id"]].points
        if len(points) < floor:
            continue
        areas.append(
            Area(
                incident["id"],
                incident["name"],
                incident["status"],
                incident["x_premises_affected"],
                coarse_ring(points),
            )
        )
    return areas


def geojson(areas: Sequence[Area]) -> dict[str, Any]:
    """`areas.geojson`: one polygon per area."""
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": area.incident_id,
                "properties": {
                    "incident_id": area.incident_id,
                    "name": area.name,
                    "status": area.status,
                    "premises_affected": area.premises,
                },
                "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in area.ring]]},
            }
            for area in areas
        ],
    }


@dataclass(frozen=True, slots=True)
class MapShape:
    """An area projected into the SVG's coordinates."""

    area: Area
    points: str  # "x,y x,y ..." for <polygon points=...>
    label_x: float
    label_y: float


def project(areas: Sequence[Area], width: int = 640) -> tuple[list[MapShape], int, int]:
    """Project areas into an SVG `width` wide, framed around them with some context."""
    if not areas:
        return [], width, 0
    xs = [p[0] for area in areas for p in area.ring]
    ys = [p[1] for area in areas for p in area.ring]
    margin = max(max(xs) - min(xs), max(ys) - min(ys), MIN_FRAME_DEG) * 0.6
    lon0, lon1, lat0, lat1 = min(xs) - margin, max(xs) + margin, min(ys) - margin, max(ys) + margin
    scale_x = math.cos(math.radians((lat0 + lat1) / 2))
    span_x = max((lon1 - lon0) * scale_x, 1e-6)
    span_y = max(lat1 - lat0, 1e-6)
    height = max(int(width * span_y / span_x), 120)
    scale = min((width - 20) / span_x, (height - 20) / span_y)

    def xy(lon: float, lat: float) -> tuple[float, float]:
        return 10 + (lon - lon0) * scale_x * scale, height - 10 - (lat - lat0) * scale

    shapes = []
    for area in areas:
        corners = [xy(x, y) for x, y in area.ring]
        text = " ".join(f"{x:.1f},{y:.1f}" for x, y in corners)
        cx = sum(c[0] for c in corners) / len(corners)
        cy = sum(c[1] for c in corners) / len(corners)
        shapes.append(MapShape(area, text, round(cx, 1), round(cy, 1)))
    return shapes, width, height
