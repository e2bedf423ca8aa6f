"""Geocoding premises through geopy, with results cached in the store."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from urllib.parse import urlsplit

from geopy.extra.rate_limiter import RateLimiter
from geopy.geocoders import Nominatim
from sqlalchemy import select
from sqlalchemy.engine import Connection

from forewarn.store import geocode_cache, insert_ignoring_conflicts

Point = tuple[float, float]
Geocoder = Callable[[str], Point | None]
USER_AGENT = "forewarn-network-import"


def nominatim(base_url: str | None, per_second: float, retry_wait_s: float = 5.0) -> Geocoder:
    """A geocoder for a Nominatim-compatible server (the public one when no URL is given)."""
    if base_url:
        parts = urlsplit(base_url)
        client = Nominatim(
            user_agent=USER_AGENT, domain=parts.netloc + parts.path.rstrip("/"), scheme=parts.scheme
        )
    else:
        client = Nominatim(user_agent=USER_AGENT)
    limited = RateLimiter(
        client.geocode,
        min_delay_seconds=1.0 / per_second,
        max_retries=2,
        error_wait_seconds=max(retry_wait_s, 1.0 / per_second),
        swallow_exceptions=False,
    )

    def lookup(query: str) -> Point | None:
        location = limited(query, exactly_one=True, timeout=10)
        if location is None:
            return None
        return float(location.latitude), float(location.longitude)

    return lookup


def geocode_all(
    conn: Connection, queries: Iterable[str], geocoder: Geocoder, now: datetime
) -> dict[str, Point | None]:
    """Look each distinct query up once: from the cache, else through the geocoder.

    A query the geocoder answered "not found" is cached as such; a query that failed
    (the service was unreachable) is left out of the result and asked again next time.
    """
    wanted = sorted(set(queries))
    found: dict[str, Point | None] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = conn.execute(select(geocode_cache).where(geocode_cache.c.query.in_(chunk)))
        for row in rows:
            found[row.query] = None if row.lat is None else (row.lat, row.lon)
    fresh = []
    for query in wanted:
        if query in found:
            continue
        try:
            point = geocoder(query)
        except Exception:  # geopy raises many kinds; any of them means "try again later"
            continue
        found[query] = point
        fresh.append(
            {
                "query": query,
                "lat": None if point is None else point[0],
                "lon": None if point is None else point[1],
                "looked_up_at": now,
            }
        )
    insert_ignoring_conflicts(conn, geocode_cache, fresh)
    return found
