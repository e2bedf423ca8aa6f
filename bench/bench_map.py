"""Map faults to premises and customers at every level of the tree, and areas by geometry:
`python bench/bench_map.py sqlite:///path/to/imported.db` (after bench_import.py --db)."""

from __future__ import annotations

import argparse
import random
import statistics
import time

from sqlalchemy import select

from forewarn.network import NetworkIndex
from forewarn.store import elements, make_engine

LEVELS = ("cpe", "cabinet", "pon", "olt", "exchange")


def main() -> None:
    """Print load time of the index and per-level mapping times (median, p95, max)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("db")
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    engine = make_engine(args.db)
    rng = random.Random(1)
    with engine.connect() as conn:
        started = time.perf_counter()
        index = NetworkIndex.load(conn)
        print(
            f"index of {len(index.tree):,} elements, {len(index.premise_ids):,} premises, "
            f"{len(index.customer_ids):,} customers built in {time.perf_counter() - started:.1f} s"
        )
        for kind in LEVELS:
            ids = list(
                conn.execute(select(elements.c.element_id).where(elements.c.kind == kind)).scalars()
            )
            sample = rng.sample(ids, min(args.samples, len(ids)))
            times, sizes = [], []
            for element in sample:
                t0 = time.perf_counter()
                rows = index.premises_under(element)
                customers = index.customers_of(rows)
                times.append((time.perf_counter() - t0) * 1000)
                sizes.append((len(rows), len(customers)))
            times.sort()
            p95 = times[int(len(times) * 0.95) - 1] if len(times) > 1 else times[0]
            most_premises, most_customers = max(s[0] for s in sizes), max(s[1] for s in sizes)
            print(
                f"{kind:9} {len(sample):4} faults, up to {most_premises:7,} premises / "
                f"{most_customers:7,} customers: median {statistics.median(times):7.3f} ms, "
                f"p95 {p95:7.3f} ms, max {times[-1]:7.3f} ms"
            )
    lat, lon = float(index.lat[len(index.lat) // 2]), float(index.lon[len(index.lon) // 2])
    for radius in (200, 1000, 5000):
        t0 = time.perf_counter()
        found = index.premises_within(lat, lon, radius)
        took_ms = (time.perf_counter() - t0) * 1000
        print(f"radius {radius:5} m: {len(found):7,} premises in {took_ms:.1f} ms")
    d = 0.01
    ring = [(lon - d, lat - d), (lon + d, lat - d), (lon + d, lat + d), (lon - d, lat + d)]
    t0 = time.perf_counter()
    found = index.premises_in_polygon(ring)
    print(
        f"polygon 4 corners: {len(found):,} premises in {(time.perf_counter() - t0) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
