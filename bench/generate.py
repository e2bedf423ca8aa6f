"""Generate a synthetic network: `python bench/generate.py --premises N --out DIR`."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from forewarn.network.synthetic import generate


def main() -> None:
    """Write topology.csv and customers.csv and print how long it took."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--premises", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("bench/data/1m"))
    args = parser.parse_args()
    started = time.perf_counter()
    town = generate(args.out, args.premises)
    print(
        f"generated {town.premises:,} premises, {town.elements:,} elements "
        f"in {time.perf_counter() - started:.1f} s -> {args.out}"
    )


if __name__ == "__main__":
    main()
