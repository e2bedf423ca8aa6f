"""`forewarn import-network`: load or update topology and customers from CSV, idempotently.

Every bad row is reported with its line number and reason and skipped; the rest loads.
A customer row is skipped only when nothing in it can reach the customer: a bad contact
detail, priority, locale or zone is dropped with a warning (forewarn.network.fields).
The topology pass is forewarn.network.topology; the customers pass is here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from forewarn.network.address import normalise_postcode, street_of
from forewarn.network.csvfile import CUSTOMER_COLUMNS, CUSTOMER_OPTIONAL, Problem, read_rows
from forewarn.network.fields import ContactFields, Reach
from forewarn.network.geocode import Geocoder, geocode_all

# normalise_phones is re-exported: the customer look-up normalises a number the same way.
from forewarn.network.phones import Shortcut, normalise_slowly
from forewarn.network.phones import normalise_phones as normalise_phones
from forewarn.network.rows import MAX_ID, ImportReport, RowError, coordinates, identifier
from forewarn.network.topology import import_topology
from forewarn.store import (
    FOLLOWER_PREFIX,
    customers,
    elements,
    premises,
    set_meta,
    upsert,
    writing,
)

CHUNK_ROWS = 50_000
PHONE_WORKERS = max(os.cpu_count() or 1, 1)
# The store's note of the country the last customers import read national numbers in.
PHONE_REGION = "phone_region"


def import_network(
    engine: Engine,
    topology: Path | None,
    customer_file: Path | None,
    geocoder: Geocoder | None,
    now: datetime,
    default_region: str = "US",
    progress: Callable[[int], None] | None = None,
    encoding: str | None = None,
) -> ImportReport:
    """Load topology, then customers; each file in its own transaction. `progress` hears
    how many customer rows are done after each chunk (for a progress bar); `encoding`
    None reads UTF-8, or Windows-1252 where a file turns out not to be UTF-8."""
    report = ImportReport()
    if topology is not None:

        def topology_work(conn: Connection) -> None:
            import_topology(conn, topology, report, encoding)
            set_meta(conn, "network_version", now.isoformat())

        writing(engine, topology_work, "import topology", attempts=1)
    if customer_file is not None:

        def customers_work(conn: Connection) -> None:
            _import_customers(
                conn, customer_file, geocoder, now, default_region, report, progress, encoding
            )
            set_meta(conn, "network_version", now.isoformat())
            # Ops looking a customer up by a national number mean the import's country.
            set_meta(conn, PHONE_REGION, default_region.upper())

        # One attempt: the report fills as rows are read, so a second would count twice.
        writing(engine, customers_work, "import customers", attempts=1)
    return report


# --- customers -------------------------------------------------------------
def _import_customers(
    conn: Connection,
    path: Path,
    geocoder: Geocoder | None,
    now: datetime,
    region: str,
    report: ImportReport,
    progress: Callable[[int], None] | None = None,
    encoding: str | None = None,
) -> None:
    known = set(conn.execute(select(elements.c.element_id)).scalars())
    done = 0
    with ProcessPoolExecutor(PHONE_WORKERS) as pool:
        loader = _CustomerLoader(conn, path.name, known, pool, geocoder, now, region, report)
        for chunk in _chunks(read_rows(path, CUSTOMER_COLUMNS, encoding, CUSTOMER_OPTIONAL)):
            loader.load(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done)


@dataclass
class _CustomerLoader:
    """Validates and upserts customer rows chunk by chunk, remembering ids across chunks."""

    conn: Connection
    name: str
    known: set[str]
    pool: Executor
    geocoder: Geocoder | None
    now: datetime
    region: str
    report: ImportReport
    seen: dict[str, int] = field(default_factory=dict)
    premise_element: dict[str, str] = field(default_factory=dict)
    reach: Reach = field(default_factory=Reach.of_registry)

    def load(self, chunk: list[tuple[int, dict[str, str]] | Problem]) -> None:
        """Validate one chunk, geocode what needs it, and write it."""
        phones = _phones_of(chunk, self.region, self.pool)
        premise_rows: dict[str, dict[str, Any]] = {}
        customer_rows: list[dict[str, Any]] = []
        to_geocode: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        problems = self.report.problems
        for item in chunk:
            if isinstance(item, Problem):
                problems.append(item)
                continue
            line, raw = item
            try:
                premise, customer, warnings = _customer_rows(raw, self.known, phones, self.reach)
                _check_unique(premise, customer, self.seen, self.premise_element)
            except RowError as err:
                problems.append(Problem(self.name, line, str(err)))
                continue
            self.seen[customer["customer_id"]] = line
            self.premise_element[premise["premise_id"]] = premise["element_id"]
            problems.extend(Problem(self.name, line, w) for w in warnings)
            premise_rows[premise["premise_id"]] = premise
            customer_rows.append(customer)
            if premise["lat"] is None:
                query = f"{premise['address']}, {premise['postcode']}".strip(", ")
                if query:
                    to_geocode.setdefault(query, []).append((line, premise))
                else:
                    problems.append(
                        Problem(self.name, line, "kept without coordinates: no address")
                    )
        if to_geocode:
            _geocode(self.conn, to_geocode, self.geocoder, self.now, self.name, self.report)
        upsert(self.conn, premises, list(premise_rows.values()))
        upsert(self.conn, customers, customer_rows)
        self.report.premises += len(premise_rows)
        self.report.customers += len(customer_rows)


def _chunks(
    items: Iterator[tuple[int, dict[str, str]] | Problem],
) -> Iterator[list[tuple[int, dict[str, str]] | Problem]]:
    chunk: list[tuple[int, dict[str, str]] | Problem] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= CHUNK_ROWS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _check_unique(
    premise: dict[str, Any],
    customer: dict[str, Any],
    seen: dict[str, int],
    premise_element: dict[str, str],
) -> None:
    first = seen.get(customer["customer_id"])
    if first is not None:
        raise RowError(f"duplicate customer_id {customer['customer_id']!r} (first on line {first})")
    served_by = premise_element.get(premise["premise_id"])
    if served_by is not None and served_by != premise["element_id"]:
        raise RowError(
            f"premise {premise['premise_id']!r} is already served by element {served_by!r}"
        )


def _customer_rows(
    raw: dict[str, str], known: set[str], phones: dict[str, str], reach: Reach
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """The premise and customer of one row, and warnings for the fields it dropped.

    The row is skipped (RowError) only when it cannot name a customer on the network or
    nothing in it can reach them; a bad contact detail costs only that detail."""
    customer_id = identifier(raw, "customer_id")
    if customer_id.startswith(FOLLOWER_PREFIX):
        raise RowError(f"customer_id may not start with {FOLLOWER_PREFIX!r} (followers' keys do)")
    premise_id = identifier(raw, "premise_id")
    element_id = raw["element_id"]
    if element_id not in known:
        raise RowError(f"unknown element_id {element_id[:MAX_ID]!r}")
    fields = ContactFields(customer_id)
    phone = fields.phone(raw["phone"], phones)
    email = fields.email(raw["email"])
    social = fields.social(raw["social"])
    if phone is None and email is None and social is None:
        reasons = "; ".join(fields.dropped) or "no phone, email or social handle"
        raise RowError(f"customer {customer_id!r} cannot be reached: {reasons}")
    given = {name: raw[name] for name in ("phone", "email", "social")}
    reachable = {"phone": phone, "email": email, "social": social}
    channels = fields.channels(raw["channels"], reach, reachable, given)
    try:
        lat, lon = coordinates(raw)
    except RowError as err:
        fields.drop("coordinates", f"{err}; geocoding the address instead")
        lat = lon = None
    if not raw["address"]:
        fields.warnings.append(f"customer {customer_id!r}: address is empty")
    premise = {
        "premise_id": premise_id,
        "element_id": element_id,
        "address": raw["address"][:512],
        "postcode": _postcode(raw["postcode"]),
        "street": street_of(raw["address"])[:512],
        "lat": lat,
        "lon": lon,
    }
    customer = {
        "customer_id": customer_id,
        "premise_id": premise_id,
        "phone": phone,
        "email": email,
        "social": social,
        "channels": ";".join(channels),
        "locale": fields.locale(raw["locale"]),
        "timezone": fields.timezone(raw["timezone"]),
        "priority": fields.priority(raw["priority"]),
    }
    if "needs" in raw:  # a file without the column leaves what the store knows of needs
        customer["needs"] = fields.needs(raw["needs"])
    return premise, customer, fields.warnings


@lru_cache(maxsize=65536)
def _postcode(text: str) -> str:
    """The stored form of a postcode (a street's houses share one: worked out once)."""
    return normalise_postcode(text)[:32]


def _phones_of(
    chunk: list[tuple[int, dict[str, str]] | Problem], region: str, pool: Executor
) -> dict[str, str]:
    """Normalise a chunk's phone numbers: the home country's plain ones by the shortcut,
    the rest through phonenumbers, spread over the cores when there are many."""
    texts = {item[1]["phone"] for item in chunk if not isinstance(item, Problem)} - {""}
    shortcut = Shortcut.for_region(region)
    found: dict[str, str] = {}
    slow: list[str] = []
    for text in texts:
        e164 = shortcut.e164(text)
        if e164 is None:
            slow.append(text)
        else:
            found[text] = e164
    if len(slow) < 2000:
        found.update(zip(slow, normalise_slowly(slow, region), strict=True))
        return found
    parts = [slow[i::PHONE_WORKERS] for i in range(PHONE_WORKERS)]
    results = pool.map(normalise_slowly, parts, [region] * len(parts))
    for part, result in zip(parts, results, strict=True):
        found.update(zip(part, result, strict=True))
    return found


def _geocode(
    conn: Connection,
    wanted: dict[str, list[tuple[int, dict[str, Any]]]],
    geocoder: Geocoder | None,
    now: datetime,
    name: str,
    report: ImportReport,
) -> None:
    if geocoder is None:
        for rows in wanted.values():
            for line, _ in rows:
                report.problems.append(Problem(name, line, "kept without coordinates: no geocoder"))
        return
    points = geocode_all(conn, wanted, geocoder, now)
    for query, rows in wanted.items():
        point = points.get(query)
        for line, row in rows:
            if point is None:
                reason = "not found" if query in points else "geocoder unavailable"
                report.problems.append(Problem(name, line, f"kept without coordinates: {reason}"))
            else:
                row["lat"], row["lon"] = point
                report.geocoded += 1
