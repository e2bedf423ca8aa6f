"""What every import pass shares: the report, a row's reason to be skipped, identifiers."""

from __future__ import annotations

from dataclasses import dataclass, field

from forewarn.network.csvfile import Problem

MAX_ID = 128


class RowError(ValueError):
    """A reason to skip one row."""


@dataclass(slots=True)
class ImportReport:
    """What an import did, and every row it skipped or kept with a warning."""

    elements: int = 0
    premises: int = 0
    customers: int = 0
    geocoded: int = 0
    problems: list[Problem] = field(default_factory=list)


def identifier(raw: dict[str, str], column: str) -> str:
    value = raw[column]
    if not value:
        raise RowError(f"{column} is empty")
    if len(value) > MAX_ID:
        raise RowError(f"{column} longer than {MAX_ID} characters")
    return value


def coordinates(raw: dict[str, str]) -> tuple[float | None, float | None]:
    if not raw["lat"] and not raw["lon"]:
        return None, None
    try:
        lat, lon = float(raw["lat"]), float(raw["lon"])
    except ValueError:
        raise RowError("lat/lon must both be numbers, or both empty") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise RowError(f"coordinates {lat},{lon} are out of range")
    return lat, lon
