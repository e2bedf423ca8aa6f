"""The biggest outage: one exchange of 250,000 premises down, run to the end by
`forewarn run-once` (every customer told by text and email, written to the outbox, since
no provider is configured): `python bench/bench_exchange.py [--postgres]`.

The question is whether the cycle finishes, not how fast the providers go: half a million
messages are queued, claimed and recorded by writers taking turns on one store, which
once ended in `database is locked` on SQLite. Prints what the run-once said, how long it
took and what the ledger holds at the end."""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_e2e import prepared_store, run_settings, run_store  # noqa: E402
from forewarn.store import deliveries, make_engine  # noqa: E402


def main() -> None:
    """Import the exchange once, report it down, run `forewarn run-once`, count."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--premises", type=int, default=250_000)
    parser.add_argument("--data", type=Path, default=ROOT / "bench/data/exchange")
    parser.add_argument("--postgres", action="store_true", help="the store on PostgreSQL")
    args = parser.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    source = prepared_store(args.data, args.premises, args.premises)
    with run_store(source, args.data / "run", args.postgres) as url:
        measure(args.data / "run", url)


def measure(run: Path, url: str) -> None:
    """Report the exchange down and run the cycle until it returns; print what it left."""
    feed = run / "feed.jsonl"
    line = {"element": "ex0", "state": "down", "at": datetime.now(UTC).isoformat()}
    feed.write_text(json.dumps(line) + "\n")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("FOREWARN_", "TWILIO_"))},
        **run_settings(run, url, feed, 0),
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    env.pop("PREFECT_API_URL", None)
    forewarn = str(Path(sys.executable).parent / "forewarn")
    started = time.perf_counter()
    done = subprocess.run([forewarn, "run-once"], env=env, cwd=run, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(done.stdout[-3000:])
    print(done.stderr[-3000:], file=sys.stderr)
    engine = make_engine(url)
    with engine.connect() as conn:
        counts: dict[str, int] = dict(
            conn.execute(
                select(deliveries.c.status, func.count()).group_by(deliveries.c.status)
            ).all()
        )
    engine.dispose()
    lines = sum(
        sum(1 for _ in path.open()) for path in (run / "outbox").glob("*.jsonl")
    ) if (run / "outbox").exists() else 0  # fmt: skip
    print(
        f"run-once exited {done.returncode} after {seconds:.0f} s "
        f"({cpu.ru_utime + cpu.ru_stime:.0f} s CPU, peak RSS {cpu.ru_maxrss // 1024} MB); "
        f"ledger {counts}; {lines:,} messages in the outbox"
    )


if __name__ == "__main__":
    main()
