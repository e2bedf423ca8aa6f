"""A small, hand-drawn network for tests: one street, two cabinets, no. 45 and no. 47.

ex1 > olt1 > pon1 > cabA > cpe41 cpe43 cpe45 cpe39   (odd numbers 39..45)
                  > cabB > cpe47 cpe49 cpe51 cpe53   (odd numbers 47..53)
           > pon2 > cabC > cpe2 cpe4 cpe6 cpe8       (the other side of the street)
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from forewarn.network import NetworkIndex, import_network
from forewarn.network.csvfile import CUSTOMER_COLUMNS, TOPOLOGY_COLUMNS

CABINETS = {"cabA": [39, 41, 43, 45], "cabB": [47, 49, 51, 53], "cabC": [2, 4, 6, 8]}
PON_OF = {"cabA": "pon1", "cabB": "pon1", "cabC": "pon2"}


def report_cabinet(feed: str | Path | None, cabinet: str, state: str, at: datetime) -> None:
    """Append to the JSON-lines feed one signal for each CPE behind `cabinet`."""
    assert feed is not None, "the settings name no JSON-lines feed"
    with Path(feed).open("a") as handle:
        for n in CABINETS[cabinet]:
            signal = {"element": f"cpe{n}", "state": state, "at": at.isoformat()}
            handle.write(json.dumps(signal) + "\n")


def house_position(number: int) -> tuple[float, float]:
    """Houses 12 m apart along Mill Road; odd and even on opposite sides."""
    return 52.2000 + (number % 2) * 0.0002, 0.1200 + (number // 2) * 0.00018


def write_csv(path: Path, columns: tuple[str, ...], rows: list[list[object]]) -> Path:
    """Write a CSV with a header."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)
    return path


def topology_rows() -> list[list[object]]:
    """The street's elements."""
    rows: list[list[object]] = [
        ["ex1", "", "exchange", "Mill Road exchange", 52.2, 0.12],
        ["olt1", "ex1", "olt", "OLT 1", "", ""],
        ["pon1", "olt1", "pon", "PON 1", "", ""],
        ["pon2", "olt1", "pon", "PON 2", "", ""],
    ]
    for cabinet, houses in CABINETS.items():
        rows.append([cabinet, PON_OF[cabinet], "cabinet", f"Cabinet {cabinet[-1]}", "", ""])
        rows.extend([f"cpe{n}", cabinet, "cpe", f"CPE {n}", "", ""] for n in houses)
    return rows


def customer_rows() -> list[list[object]]:
    """One customer per house; no. 45 prefers email, everyone else SMS then email."""
    rows: list[list[object]] = []
    for houses in CABINETS.values():
        for n in houses:
            lat, lon = house_position(n)
            channels = "email" if n == 45 else "sms;email"
            rows.append([
                f"c{n}", f"p{n}", f"cpe{n}", f"{n} Mill Road", "CB1 2AB", lat, lon,
                f"07911 123{n:03d}", f"house{n}@example.org", "", channels, "en",
                "Europe/London", 0,
            ])  # fmt: skip
    return rows


@dataclass
class Town:
    """The imported street and its index."""

    engine: Engine
    index: NetworkIndex
    directory: Path

    @classmethod
    def street(cls, directory: Path, engine: Engine, now: datetime) -> Town:
        """Write and import the street."""
        topology = write_csv(directory / "topology.csv", TOPOLOGY_COLUMNS, topology_rows())
        customers = write_csv(directory / "customers.csv", CUSTOMER_COLUMNS, customer_rows())
        report = import_network(engine, topology, customers, None, now, "GB")
        assert report.problems == [], report.problems
        with engine.connect() as conn:
            index = NetworkIndex.load(conn)
        return cls(engine, index, directory)
