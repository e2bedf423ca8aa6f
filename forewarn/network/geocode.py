"""Geocoding premises through geopy, with results cached in the store."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime
from urllib.parse import urlsplit

from geopy.exc import GeocoderRateLimited, GeocoderTimedOut, GeocoderUnavailable, GeopyError
from geopy.extra.rate_limiter import RateLimiter
from geopy.geocoders import Nominatim
from sqlalchemy import select
from sqlalchemy.engine import Connection

from forewarn.cleantext import without_credentials
from forewarn.store import geocode_cache, insert_ignoring_conflicts

Point = tuple[float, float]
Geocoder = Callable[[str], Point | None]
USER_AGENT = "forewarn-network-import"


class GeocodeError(Exception):
    """The geocoder gave no answer (the query itself may be fine); says why in a few words."""


class GeocoderUnreachable(GeocodeError):
    """No connection to the geocoder: every other query would fail the same way."""


def nominatim(
    base_url: str | None, per_second: float, retry_wait_s: float = 5.0, retries: int = 2
) -> Geocoder:
    """A geocoder for a Nominatim-compatible server (the public one when no URL is given).

    A timeout or a "slow down" is tried again after a pause; a refused connection is not
    (it raises GeocoderUnreachable at once). Failures raise GeocodeError, and nothing is
    logged: the caller says what failed, once."""
    if base_url:
        parts = urlsplit(base_url)
        client = Nominatim(
            user_agent=USER_AGENT, domain=parts.netloc + parts.path.rstrip("/"), scheme=parts.scheme
        )
    else:
        client = Nominatim(user_agent=USER_AGENT)
    where = without_credentials(base_url or "nominatim.openstreetmap.org")
    # No retries inside the rate limiter: it logs a traceback for each one.
    limited = RateLimiter(
        client.geocode, min_delay_seconds=1.0 / per_second, max_retries=0,
        swallow_exceptions=False,
    )  # fmt: skip
    pause = max(retry_wait_s, 1.0 / per_second)

    def lookup(query: str) -> Point | None:
        for attempt in range(retries + 1):
            try:
                location = limited(query, exactly_one=True, timeout=10)
            except (GeocoderTimedOut, GeocoderRateLimited) as err:
                if attempt == retries:
                    raise GeocodeError(
                        without_credentials(f"the geocoder at {where} did not answer: {err}")
                    ) from None
                time.sleep(pause)
                continue
            except GeocoderUnavailable as err:
                raise GeocoderUnreachable(
                    f"cannot reach the geocoder at {where}: {_why(err)}"
                ) from None
            except GeopyError as err:
                raise GeocodeError(
                    without_credentials(f"the geocoder at {where} failed: {err}")
                ) from None
            if location is None:
                return None
            return float(location.latitude), float(location.longitude)
        raise AssertionError("unreachable")  # the loop returns or raises

    return lookup


def _why(err: GeopyError) -> str:
    """A connection failure in a few words (geopy passes on the HTTP library's essay)."""
    text = str(err).lower()
    for needle, words in (("refused", "connection refused"), ("name or service", "unknown host"),
                          ("temporary failure in name", "unknown host"),
                          ("timed out", "no answer")):  # fmt: skip
        if needle in text:
            return words
    return "service unavailable"


def geocode_all(
    conn: Connection, queries: Iterable[str], geocoder: Geocoder, now: datetime
) -> dict[str, Point | None]:
    """Look each distinct query up once: from the cache, else through the geocoder.

    A query the geocoder answered "not found" is cached as such; a query that failed is
    left out of the result and asked again next time. Once the geocoder cannot be reached,
    the rest of the queries are left out too rather than each failing in turn.
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
        except GeocoderUnreachable:
            break
        except Exception:  # any failure of one query means "try again later"
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
