"""Status site build time and size with many incidents:
`python bench/bench_site.py --historical 10000 --active 50`."""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from forewarn.network import NetworkIndex, import_network
from forewarn.network.synthetic import generate
from forewarn.status_page import PageConfig, collect, load_components, publish, render
from forewarn.store import elements, incident_premises, incident_updates, incidents, make_engine

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
UPDATES = [(1, "opened", "investigating"), (2, "restored", "resolved")]


def main() -> None:
    """Fill a store with incidents, then time a full rebuild of the site, three times."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--premises", type=int, default=20_000)
    parser.add_argument("--historical", type=int, default=10_000)
    parser.add_argument("--active", type=int, default=50)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="forewarn-site-bench-"))
    town = generate(work / "town", args.premises)
    engine = make_engine(f"sqlite:///{work / 'bench.db'}")
    import_network(engine, town.topology, town.customers, None, NOW)
    rng = random.Random(3)
    with engine.begin() as conn:
        index = NetworkIndex.load(conn)
        roots = list(
            conn.execute(
                select(elements.c.element_id).where(elements.c.kind.in_(["cabinet", "pon"]))
            ).scalars()
        )
        for n in range(args.historical + args.active):
            active = n >= args.historical
            root = rng.choice(roots)
            rows = index.premises_under(root)
            started = NOW - timedelta(
                minutes=rng.randint(10, 300) if active else rng.randint(1, 365 * 24 * 60)
            )
            values = {
                "title": f"Outage: {root}", "status": "investigating" if active else "resolved",
                "scope": "area", "source": "detected", "root_element": root, "public": True,
                "notify": True, "area_name": root, "premises_count": len(rows),
                "customers_count": len(rows), "started_at": started, "opened_at": started,
                "updated_at": started,
                "resolved_at": None if active else started + timedelta(hours=3),
                "next_update_at": NOW + timedelta(hours=1) if active else None,
            }  # fmt: skip
            incident_id = conn.execute(incidents.insert().values(**values)).inserted_primary_key[0]  # type: ignore[index]
            conn.execute(
                incident_updates.insert(),
                [
                    {"incident_id": incident_id, "seq": seq, "event": event, "status": status,
                     "body": f"Update {seq} for {root}.", "created_at": started, "notify": True,
                     "deliveries_queued": True}
                    for seq, event, status in UPDATES[: 1 if active else 2]
                ],
            )  # fmt: skip
            if active:
                conn.execute(
                    incident_premises.insert(),
                    [{"incident_id": incident_id, "premise_id": index.premise_ids[int(r)],
                      "state": "affected", "added_seq": 1} for r in rows],
                )  # fmt: skip
    page = PageConfig("Riverside Fibre", "https://status.example.net", 10)
    for attempt in range(3):
        t0 = time.perf_counter()
        with engine.connect() as conn:
            components = load_components(None, conn)
            data = collect(conn, index, page, components, NOW)
        t1 = time.perf_counter()
        files = render(data)
        t2 = time.perf_counter()
        publish(work / "site", files, NOW + timedelta(seconds=attempt))
        t3 = time.perf_counter()
        size = sum(len(b) for b in files.values())
        print(
            f"rebuild {attempt + 1}: {t3 - t0:.2f} s (read {t1 - t0:.2f}, render {t2 - t1:.2f}, "
            f"write {t3 - t2:.2f}); {len(files)} files, {size / 1e6:.1f} MB; "
            f"index.html {len(files['index.html']) / 1024:.1f} KB; "
            f"lookup.json {len(files['lookup.json']) / 1024:.1f} KB; "
            f"{len(data.active)} active, {len(data.history_rows)} in the last 90 days"
        )


if __name__ == "__main__":
    main()
