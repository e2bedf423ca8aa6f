"""Synthetic networks of any size with a realistic tree and coordinates, for the demo and
the benchmarks: exchange > OLT > PON port > cabinet > CPE, one premise per CPE."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from forewarn.channels import email, sms
from forewarn.network.csvfile import CUSTOMER_COLUMNS, TOPOLOGY_COLUMNS, write_rows

STREETS = (
    "Mill Road", "Station Road", "Church Lane", "High Street", "Park Avenue", "Orchard Way",
    "Victoria Street", "Chapel Row", "Meadow Close", "School Lane", "Bridge Street",
    "Kingsway", "Elm Grove", "Quarry Hill", "Market Place", "Riverside", "Hawthorn Drive",
    "Willow Crescent", "Castle View", "North Street",
)  # fmt: skip
# How a town's customers choose among the text and email channels (percent).
_TEXT, _MAIL = sms.CHANNEL.name, email.CHANNEL.name
CHANNEL_MIX = (
    (f"{_TEXT};{_MAIL}", 55), (f"{_MAIL};{_TEXT}", 10), (_TEXT, 15), (_MAIL, 20),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Shape:
    """Fan-out at each level of the generated tree."""

    premises_per_cabinet: int = 16
    cabinets_per_pon: int = 4
    pons_per_olt: int = 128
    premises_per_exchange: int = 100_000


@dataclass(frozen=True, slots=True)
class Generated:
    """Where the files went and how big the network is."""

    topology: Path
    customers: Path
    premises: int
    elements: int


def generate(
    directory: Path,
    premises: int,
    seed: int = 7,
    centre: tuple[float, float] = (44.9537, -93.0900),
    shape: Shape = Shape(),
    occupancy: float = 0.97,
) -> Generated:
    """Write topology.csv and customers.csv for a network of `premises` premises."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    topology, customer_file = directory / "topology.csv", directory / "customers.csv"
    counter = {"elements": 0}

    def topology_rows() -> Iterator[tuple[object, ...]]:
        for row in _elements(premises, shape, centre):
            counter["elements"] += 1
            yield row

    write_rows(topology, TOPOLOGY_COLUMNS, topology_rows())
    write_rows(customer_file, CUSTOMER_COLUMNS, _customers(premises, shape, centre, rng, occupancy))
    return Generated(topology, customer_file, premises, counter["elements"])


def premise_location(
    n: int, shape: Shape, centre: tuple[float, float], total: int
) -> tuple[float, float]:
    """Where premise number n stands: towns per exchange, streets per cabinet, 15 m apart."""
    exchange, rest = divmod(n, shape.premises_per_exchange)
    cabinet, house = divmod(rest, shape.premises_per_cabinet)
    ring = math.sqrt(exchange) * 0.25
    angle = exchange * 2.399963  # golden angle keeps towns apart
    town_lat = centre[0] + ring * math.cos(angle)
    town_lon = centre[1] + ring * math.sin(angle) / math.cos(math.radians(centre[0]))
    # Cabinets' streets on a grid about as wide as it is tall, 150 m by 130 m a block.
    cabinets_here = -(
        -min(shape.premises_per_exchange, total - exchange * shape.premises_per_exchange)
        // shape.premises_per_cabinet
    )
    columns = max(math.ceil(math.sqrt(cabinets_here)), 1)
    row, col = divmod(cabinet, columns)
    lat = town_lat + row * 0.0012 + (house % 2) * 0.00012
    lon = town_lon + col * 0.0019 + (house // 2) * 0.00019
    return round(lat, 6), round(lon, 6)


def _elements(
    premises: int, shape: Shape, centre: tuple[float, float]
) -> Iterator[tuple[object, ...]]:
    per_pon = shape.premises_per_cabinet * shape.cabinets_per_pon
    per_olt = per_pon * shape.pons_per_olt
    for n in range(premises):
        exchange, in_exchange = divmod(n, shape.premises_per_exchange)
        olt, in_olt = divmod(in_exchange, per_olt)
        pon, in_pon = divmod(in_olt, per_pon)
        cabinet, house = divmod(in_pon, shape.premises_per_cabinet)
        ex_id = f"ex{exchange}"
        olt_id = f"{ex_id}-olt{olt}"
        pon_id = f"{olt_id}-pon{pon}"
        cab_id = f"{pon_id}-cab{cabinet}"
        lat, lon = premise_location(n, shape, centre, premises)
        if in_exchange == 0:
            yield ex_id, "", "exchange", f"Exchange {exchange + 1}", lat, lon
        if in_olt == 0:
            yield olt_id, ex_id, "olt", f"OLT {olt + 1} at exchange {exchange + 1}", lat, lon
        if in_pon == 0:
            yield pon_id, olt_id, "pon", f"PON port {pon + 1} of {olt_id}", "", ""
        if house == 0:
            name = f"Cabinet {cabinet + 1}, {_street(n, shape)}"
            yield cab_id, pon_id, "cabinet", name, lat, lon
        yield f"cpe{n}", cab_id, "cpe", f"CPE {n}", "", ""


def _street(n: int, shape: Shape) -> str:
    cabinet = n // shape.premises_per_cabinet
    return f"{STREETS[(cabinet // 3) % len(STREETS)]}, Ward {cabinet // 60 + 1}"


def _customers(
    premises: int, shape: Shape, centre: tuple[float, float], rng: random.Random, occupancy: float
) -> Iterator[tuple[object, ...]]:
    mixes = [m for m, weight in CHANNEL_MIX for _ in range(weight)]
    for n in range(premises):
        if rng.random() > occupancy:
            continue  # an empty house: a premise with nobody to tell
        cabinet, house = divmod(n, shape.premises_per_cabinet)
        number = (cabinet % 3) * shape.premises_per_cabinet + house + 1
        lat, lon = premise_location(n, shape, centre, premises)
        phone = f"+1651{rng.randint(200, 999)}{rng.randint(0, 9999):04d}"
        yield (
            f"c{n}", f"p{n}", f"cpe{n}", f"{number} {_street(n, shape)}",
            f"55{100 + (n // 5000) % 900:03d}", lat, lon, phone, f"customer{n}@example.net",
            "", rng.choice(mixes), "en", "America/Chicago", 1 if rng.random() < 0.01 else 0,
        )  # fmt: skip
