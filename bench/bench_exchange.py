"""The biggest outage: one exchange of 250,000 premises down, run to the end by
`forewarn run-once` (every customer told by text and email, written to the outbox, since
no provider is configured): `python bench/bench_exchange.py [--postgres]`.

`python bench/bench_exchange.py --lanes [--customers 12000 --rate 100]` is the same
fault at a provider's pace: a text each to every customer (1% at risk) through a local
Twilio at `--rate` texts a second, with half the lines restored part way. It prints when
the at-risk customers were told, how long each "restored" waited, and when the last
opening went against (texts sent / rate).

The question is whether the cycle finishes, not how fast the providers go: half a million
messages are queued, claimed and recorded by writers taking turns on one store, which
once ended in `database is locked` on SQLite. Prints what the run-once said, how long it
took and what the ledger holds at the end."""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_e2e import prepared_store, run_settings, run_store  # noqa: E402
from forewarn.incidents import lanes as lane_ranks  # noqa: E402
from forewarn.store import (  # noqa: E402
    customers,
    deliveries,
    incident_updates,
    insert_ignoring_conflicts,
    make_engine,
)
from testkit.crash import worker_env  # noqa: E402
from testkit.ledger_data import fill_ledger, phone  # noqa: E402
from testkit.servers import fake_twilio, smtp_server  # noqa: E402


def main() -> None:
    """Import the exchange once, report it down, run `forewarn run-once`, count."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--premises", type=int, default=250_000)
    parser.add_argument("--data", type=Path, default=ROOT / "bench/data/exchange")
    parser.add_argument("--postgres", action="store_true", help="the store on PostgreSQL")
    parser.add_argument("--lanes", action="store_true", help="the fault at a provider's pace")
    parser.add_argument("--customers", type=int, default=12_000)
    parser.add_argument("--rate", type=float, default=100.0, help="texts a second")
    args = parser.parse_args()
    if args.lanes:
        lanes(args.customers, args.rate)
        return
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


def lanes(count: int, rate: float) -> None:
    """Every customer's opening queued (1% at risk, ahead), a worker sending at `rate`,
    half the lines restored once a fifth of the openings would have gone."""
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        db = f"sqlite:///{directory / 'lanes.db'}"
        engine = make_engine(db)
        start = datetime.now(UTC)
        fill_ledger(engine, count, ("sms",), start)
        at_risk = {f"c{i}" for i in range(0, count, 100)}
        with engine.begin() as conn:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.customer_id.in_(at_risk))
                .values(rank=lane_ranks.AT_RISK)
            )
            conn.execute(
                update(customers)
                .where(customers.c.customer_id.in_(at_risk))
                .values(needs="telecare")
            )
        with fake_twilio() as (url, twilio), smtp_server() as (smtp, _):
            env = worker_env(db, url, smtp, directory, lease=300, rate=rate)
            began = time.time()
            worker = subprocess.Popen(
                [sys.executable, "-m", "testkit.crash_worker", "1000"], env=env, cwd=directory
            )
            time.sleep(count / rate / 5)
            restored_at = time.time()
            back = [f"c{i}" for i in range(1, count, 2)]  # every other line
            restore(engine, back, datetime.now(UTC))
            worker.wait()
            sent = list(zip(twilio.messages, twilio.arrivals, strict=True))
        with engine.connect() as conn:
            counts = dict(
                conn.execute(
                    select(deliveries.c.status, func.count()).group_by(deliveries.c.status)
                ).all()
            )
        engine.dispose()
    who = {phone(i): f"c{i}" for i in range(count)}
    risk_told = [
        at - began for m, at in sent if who[m["to"]] in at_risk and "back" not in m["body"]
    ]
    restored = [at - restored_at for m, at in sent if "is back" in m["body"]]
    openings = [at - began for m, at in sent if "is back" not in m["body"]]
    expected = len(sent) / rate
    print(
        f"{count:,} customers, {len(at_risk)} at risk, {rate:g} texts/s; "
        f"{len(back):,} lines restored at {restored_at - began:.1f} s; ledger {counts}"
    )
    print(
        f"at-risk customers told: {len(risk_told)} of {len(at_risk)}, the last at "
        f"{max(risk_told):.2f} s (their lane's share: {len(at_risk) / (rate * 0.5):.2f} s)"
    )
    print(
        f"restored: {len(restored):,} sent, waited {min(restored):.1f} s to {max(restored):.1f} s "
        f"(median {statistics.median(restored):.1f} s); openings cancelled as superseded: "
        f"{counts.get('cancelled', 0):,}"
    )
    last = max(at for _, at in sent) - began
    print(
        f"openings: {len(openings):,} sent, the last at {max(openings):.1f} s; all texts "
        f"{len(sent):,} / rate = {expected:.1f} s, the last text at {last:.1f} s "
        f"({100 * (last / expected - 1):+.1f}%)"
    )


def restore(engine: Any, back: list[str], now: datetime) -> None:
    """An update "restored" for these customers, queued in its lane as queue.py would."""
    with engine.begin() as conn:
        conn.execute(incident_updates.insert().values(
            incident_id=1, seq=2, event="restored", status="monitoring", body="Back.",
            created_at=now, notify=True, deliveries_queued=True,
        ))  # fmt: skip
        insert_ignoring_conflicts(conn, deliveries, [
            {"incident_id": 1, "update_seq": 2, "customer_id": c, "channel": "sms",
             "status": "queued", "attempts": 0, "rank": lane_ranks.URGENT, "created_at": now,
             "next_attempt_at": now}
            for c in back
        ])  # fmt: skip


if __name__ == "__main__":
    main()
