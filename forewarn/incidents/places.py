"""Public names of affected areas: places built from the affected premises' addresses,
never equipment. The name is the street (or up to three streets), else the postcode
district (or up to three), else the town (or up to three), else everywhere: the smallest
where every place named has at least the privacy floor of premises in the network, so no
name points at fewer homes than the floor. Two open faults that would share a name are
told apart by a number ("Mill Road (2)"), which reads the same in every language.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from forewarn.network import NetworkIndex
from forewarn.network.address import district
from forewarn.network.tree import IntArray
from forewarn.store import incidents, premises
from forewarn.texts import FALLBACK_LOCALE, say

MAX_LISTED = 3  # "A, B & C" still reads as a place; four names read as a list
JOIN = " & "  # the same in English and Spanish, unlike "and"/"y"

_HOUSE = re.compile(r"^\s*(?:flat\s+\w+,?\s*)?\d+[a-z]?\s*,?\s+", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Spot:
    """Some affected premises that share a street and postcode (never one by one)."""

    street_key: str  # the stored, lower-case street (what the network is counted by)
    street: str  # as written in the address, e.g. "Mill Road"
    postcode: str
    town: str | None
    count: int


@dataclass(frozen=True, slots=True)
class Sizes:
    """How many premises the network holds in a street, district or town."""

    street: Callable[[str], int]
    district: Callable[[str], int]
    town: Callable[[str], int]


def everywhere() -> str:
    """The name of an area too spread out to name any smaller."""
    return say("place_everywhere", FALLBACK_LOCALE)


def place_name(spots: Sequence[Spot], sizes: Sizes, floor: int) -> str:
    """The smallest place, from street up to town, whose every named part clears `floor`."""
    levels: list[tuple[Callable[[Spot], str | None], Callable[[Spot], str], Callable[[str], int]]]
    levels = [
        (lambda s: s.street_key, lambda s: s.street, sizes.street),
        (lambda s: district(s.postcode), lambda s: district(s.postcode), sizes.district),
        (lambda s: s.town, lambda s: s.town or "", sizes.town),
    ]
    for key_of, label_of, size_of in levels:
        weight: Counter[str] = Counter()
        labels: dict[str, str] = {}
        for spot in spots:
            key = key_of(spot)
            if not key:
                weight.clear()
                break  # a premise this level cannot place: try a coarser one
            weight[key] += spot.count
            labels.setdefault(key, label_of(spot))
        if not weight or len(weight) > MAX_LISTED:
            continue
        if all(size_of(key) >= floor for key in weight):
            # The place with most of the fault first; ties by name, so names are stable.
            ordered = sorted(weight, key=lambda k: (-weight[k], labels[k]))
            return _joined([labels[k] for k in ordered])
    return everywhere()


def _joined(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + JOIN + names[-1]


def parts_of(address: str) -> tuple[str, str | None]:
    """The street as written and the town (the last comma part, when there is one)."""
    parts = [p.strip() for p in _HOUSE.sub("", address).split(",") if p.strip()]
    if not parts:
        return address.strip(), None
    return parts[0], parts[-1] if len(parts) > 1 else None


def spots_in(conn: Connection, index: NetworkIndex, rows: IntArray) -> list[Spot]:
    """The premises at `rows` of the index grouped by street and postcode, counted in
    memory (the index holds each premise's street): no read of the premises on the way
    to a big fault's first message (a 50,000-premise exchange took about a second)."""
    found = np.bincount(index.street_code[rows], minlength=len(index.streets))
    counts = Counter({index.streets[int(c)]: int(found[c]) for c in np.flatnonzero(found)})
    return spots_from(conn, counts)


def spots_from(conn: Connection, counts: Mapping[tuple[str, str], int]) -> list[Spot]:
    """Spots from counts of premises by (street key, postcode)."""
    streets, towns = _as_written(conn, sorted({street for street, _ in counts}))
    return [
        Spot(
            street,
            streets.get(street, street),
            code,
            towns.get(_town_key(street) or ""),
            counts[(street, code)],
        )
        for street, code in sorted(counts)
    ]


def _town_key(street_key: str) -> str | None:
    # The stored street keeps what followed the house number, town included, lower case.
    return (street_key.rsplit(",", 1)[1].strip() or None) if "," in street_key else None


def _as_written(
    conn: Connection, street_keys: Sequence[str]
) -> tuple[dict[str, str], dict[str, str]]:
    """Streets and towns (by their keys) as an address writes them, read only where a
    name could use them: every street when few enough to name, else one street per town."""
    by_town = {_town_key(k): k for k in street_keys}
    if len(street_keys) <= MAX_LISTED:
        wanted = list(street_keys)
    elif None in by_town or len(by_town) > MAX_LISTED:
        return {}, {}  # named by district, or everywhere: no address needed
    else:
        wanted = sorted(by_town.values())
    query = (
        select(premises.c.street, func.min(premises.c.address))
        .where(premises.c.street.in_(wanted))
        .group_by(premises.c.street)
    )
    streets: dict[str, str] = {}
    towns: dict[str, str] = {}
    for key, address in conn.execute(query):
        street, town = parts_of(str(address))
        streets[str(key)] = street
        town_key = _town_key(str(key))
        if town and town_key:
            towns[town_key] = town
    return streets, towns


def network_sizes(conn: Connection) -> Sizes:
    """Sizes read from the premises table on demand (a few indexed counts per name)."""

    def street(key: str) -> int:
        return int(conn.execute(select(func.count()).where(premises.c.street == key)).scalar_one())

    def district_size(code: str) -> int:
        # A UK outward code is followed by a space; a ZIP's first three digits are not.
        pattern = f"{code} %" if not code.isdigit() else f"{code}%"
        found = select(func.count()).where(premises.c.postcode.like(pattern))
        return int(conn.execute(found).scalar_one())

    def town(name: str) -> int:
        found = select(func.count()).where(premises.c.address.like(f"%, {name}"))
        return int(conn.execute(found).scalar_one())

    return Sizes(street, district_size, town)


def index_sizes(conn: Connection, index: NetworkIndex) -> Sizes:
    """Sizes of streets and districts counted from the index in memory (a district's count
    was a LIKE over every premise: 0.19 s on 1,000,000, on the way to a big outage's first
    message); towns, rarely needed, from the store."""
    per_pair = np.bincount(index.street_code, minlength=len(index.streets)).tolist()
    tables: dict[str, Counter[str]] = {}

    def table(level: str) -> Counter[str]:
        if level not in tables:
            counted: Counter[str] = Counter()
            for (street, code), n in zip(index.streets, per_pair, strict=True):
                counted[street if level == "street" else code] += n
            if level == "district":  # each postcode's district worked out once
                by_code, counted = counted, Counter()
                for code, n in by_code.items():
                    counted[district(code)] += n
            tables[level] = counted
        return tables[level]

    return Sizes(
        lambda key: table("street")[key],
        lambda code: table("district")[code],
        network_sizes(conn).town,
    )


def distinct(conn: Connection, name: str, own: int | None = None) -> str:
    """`name`, numbered when another open public incident already goes by it."""
    taken = set(
        conn.execute(
            select(incidents.c.area_name).where(
                incidents.c.status != "resolved",
                incidents.c.public.is_(True),
                (incidents.c.area_name == name) | incidents.c.area_name.like(f"{name} (%)"),
                incidents.c.id != (own if own is not None else -1),
            )
        ).scalars()
    )
    if name not in taken:
        return name
    n = 2
    while f"{name} ({n})" in taken:
        n += 1
    return f"{name} ({n})"


def public_place(
    conn: Connection,
    index: NetworkIndex,
    root: str,
    floor: int,
    own: int | None = None,
    numbered: bool = True,
) -> str:
    """The public name of the area a fault at `root` reaches; `numbered`: distinct among
    the open public incidents (a lone line, never public, needs no number)."""
    spots = spots_in(conn, index, index.premises_under(root))
    name = place_name(spots, index_sizes(conn, index), floor)
    return distinct(conn, name, own) if numbered else name


def sizes_from(
    streets: Mapping[str, int], districts: Mapping[str, int], towns: Mapping[str, int]
) -> Sizes:
    """Sizes from tables (for tests and callers that counted already)."""
    return Sizes(
        lambda k: streets.get(k, 0), lambda k: districts.get(k, 0), lambda k: towns.get(k, 0)
    )
