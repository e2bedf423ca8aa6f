"""Import rate and peak memory: `python bench/bench_import.py bench/data/1m [--region GB]`."""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from forewarn.network import import_network
from forewarn.store import make_engine


def main() -> None:
    """Import the generated CSVs into a fresh SQLite store, twice (the second is a re-import)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data", type=Path)
    parser.add_argument("--db", help="SQLAlchemy URL (default: a temporary SQLite file)")
    parser.add_argument("--region", default="US", help="country of numbers written without +")
    parser.add_argument("--first-only", action="store_true", help="skip the re-import")
    args = parser.parse_args()
    url = args.db or f"sqlite:///{tempfile.mkdtemp(prefix='forewarn-bench-')}/bench.db"
    engine = make_engine(url)
    for label in ("first import",) if args.first_only else ("first import", "re-import"):
        started = time.perf_counter()
        # CPU seconds (this process and the phone workers) next to wall time: on a shared
        # machine they say what the import costs when other work steals the cores.
        before = {
            who: resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
        }
        report = import_network(
            engine,
            args.data / "topology.csv",
            args.data / "customers.csv",
            None,
            datetime.now(UTC),
            args.region,
        )
        took = time.perf_counter() - started
        cpu = sum(
            getattr(resource.getrusage(who), part) - getattr(before[who], part)
            for who in before
            for part in ("ru_utime", "ru_stime")
        )
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{label}: {report.elements:,} elements, {report.customers:,} customers "
            f"in {took:.1f} s ({report.customers / took:,.0f} customers/s, {cpu:.1f} s CPU); "
            f"peak RSS {peak_mb:,.0f} MB; "
            f"problems {len(report.problems)}"
        )


if __name__ == "__main__":
    main()
