"""From a burst of CPE-down signals to the inferred faults:
`python bench/bench_burst.py sqlite:///path/to/imported.db --signals 50000`."""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import select

from forewarn.detection import Thresholds
from forewarn.detection.run import run_detection
from forewarn.feeds import jsonl
from forewarn.network import NetworkIndex
from forewarn.store import element_states, elements, make_engine


def main() -> None:
    """Down whole cabinets until `--signals` CPEs are down, then time each step."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("db")
    parser.add_argument("--signals", type=int, default=50_000)
    args = parser.parse_args()
    engine = make_engine(args.db)
    thresholds = Thresholds()
    with engine.begin() as conn:
        conn.execute(element_states.delete())
        index = NetworkIndex.load(conn)
        cabinets = list(
            conn.execute(
                select(elements.c.element_id).where(elements.c.kind == "cabinet")
            ).scalars()
        )
    tree = index.tree
    start = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    id_at = [tree.ids[int(i)] for i in np.argsort(tree.order)]  # pre-order position -> id
    lines: list[str] = []
    cabinets_down = 0
    for cabinet in cabinets[:: max(len(cabinets) * 16 // args.signals, 1)]:
        node = tree.index[cabinet]
        first, end = int(tree.order[node]) + 1, int(tree.order[node] + tree.size[node])
        lines.extend(
            json.dumps({"element": id_at[p], "state": "down", "at": start.isoformat()}) + "\n"
            for p in range(first, end)
        )
        cabinets_down += 1
        if len(lines) >= args.signals:
            break
    payload = "".join(lines).encode()

    t0 = time.perf_counter()
    batch = jsonl.parse_lines(payload)
    t1 = time.perf_counter()
    with engine.begin() as conn:
        run_detection(conn, tree, batch.signals, start + timedelta(seconds=30), thresholds)
    t2 = time.perf_counter()
    with engine.begin() as conn:
        detection = run_detection(conn, tree, [], start + thresholds.down_after, thresholds)
    t3 = time.perf_counter()
    inferred = [f for f in detection.faults if f.reason == "inferred"]
    print(
        f"{len(batch.signals):,} CPE-down signals from {cabinets_down:,} cabinets: "
        f"parse {t1 - t0:.2f} s; apply + store states {t2 - t1:.2f} s; "
        f"confirm after damping + infer {t3 - t2:.2f} s -> {len(inferred):,} inferred faults "
        f"(of {len(detection.faults):,}); total {t3 - t0:.2f} s"
    )


if __name__ == "__main__":
    main()
