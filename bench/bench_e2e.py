"""End to end, as users feel it: from a monitoring feed reporting an exchange down to the
first and the last message handed to the providers, for a fault reaching about 50,000
customers on a network of 1,000,000 premises, with the flows running under `forewarn
serve`: `python bench/bench_e2e.py`.

The network is generated and imported once into `--data` (reused afterwards); each run
works on a copy. The providers are testkit's local Twilio and SMTP servers, each in its
own process; forewarn sends at `--sms-rate` and `--email-rate`, standing in for the
provider's limits, so the question is whether forewarn keeps up with them.

`--postgres --workers 2` runs the same fault with the store on a throwaway PostgreSQL
(Debian's binaries) and two `forewarn serve` processes working it at once."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.local_servers import server_process  # noqa: E402
from forewarn.network import import_network  # noqa: E402
from forewarn.network.synthetic import Shape, generate  # noqa: E402
from forewarn.store import (  # noqa: E402
    customers,
    deliveries,
    elements,
    insert_ignoring_conflicts,
    make_engine,
    meta,
    premises,
)
from testkit.servers import free_port, throwaway_postgres  # noqa: E402

DAMPING_S = 2.0


def prepared_store(data: Path, premises: int, per_exchange: int) -> Path:
    """The imported network (made once): a 1M-premise town, exchanges of `per_exchange`."""
    db = data / "network.db"
    if not db.exists():
        started = time.perf_counter()
        generated = generate(data, premises, shape=Shape(premises_per_exchange=per_exchange))
        engine = make_engine(f"sqlite:///{data / 'importing.db'}")
        now = datetime.now(UTC)
        import_network(engine, generated.topology, generated.customers, None, now, "US")
        engine.dispose()
        (data / "importing.db").rename(db)
        print(f"network generated and imported in {time.perf_counter() - started:.0f} s")
    return db


def copy_network(source: Path, url: str) -> None:
    """Copy the imported network into another store (PostgreSQL), in bulk."""
    started = time.perf_counter()
    src, dst = make_engine(f"sqlite:///{source}"), make_engine(url)
    with src.connect() as read, dst.begin() as write:
        for table in (elements, premises, customers, meta):
            rows = [dict(r._mapping) for r in read.execute(select(table))]
            insert_ignoring_conflicts(write, table, rows)
    src.dispose()
    dst.dispose()
    print(f"network copied to PostgreSQL in {time.perf_counter() - started:.0f} s")


def main() -> None:
    """Run one fault through `forewarn serve` and print when the messages arrived."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--premises", type=int, default=1_000_000)
    parser.add_argument("--per-exchange", type=int, default=52_000)
    parser.add_argument("--data", type=Path, default=ROOT / "bench/data/e2e")
    parser.add_argument("--sms-rate", type=float, default=400.0)
    parser.add_argument("--email-rate", type=float, default=300.0)
    parser.add_argument("--postgres", action="store_true", help="the store on PostgreSQL")
    parser.add_argument("--workers", type=int, default=1, help="forewarn serve processes")
    args = parser.parse_args()
    source = prepared_store(args.data, args.premises, args.per_exchange)
    with run_store(source, args.data / "run", args.postgres) as url:
        measure(args, args.data / "run", url)


@contextmanager
def run_store(source: Path, run: Path, postgres: bool) -> Iterator[str]:
    """A fresh `run` folder and a copy of the imported network to work on (a throwaway
    PostgreSQL's, or a SQLite file in `run`): its URL."""
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir()
    if postgres:
        with throwaway_postgres() as server:
            url = f"{server}/postgres"
            copy_network(source, url)
            yield url
    else:
        shutil.copy(source, run / "forewarn.db")
        yield f"sqlite:///{run / 'forewarn.db'}"


def run_settings(run: Path, url: str, feed: Path, down_after_s: float) -> dict[str, str]:
    """forewarn's settings for a run in the folder `run`: its store, its feed, its own
    folders, the damping, and no night (a benchmark runs at any hour)."""
    return {
        "FOREWARN_DB_URL": url,
        "FOREWARN_JSONL_FEED": str(feed),
        "FOREWARN_SITE_DIR": str(run / "site"),
        "FOREWARN_OUTBOX": str(run / "outbox"),
        "FOREWARN_JOURNAL_DIR": str(run / "journal"),
        "FOREWARN_DOWN_AFTER_S": str(down_after_s),
        "FOREWARN_QUIET_HOURS": "",
        "FOREWARN_SLEEP_HOURS": "",
    }


def measure(args: argparse.Namespace, run: Path, url: str) -> None:
    """Start the workers, report the fault, wait until every message is settled."""
    feed = run / "feed.jsonl"
    feed.write_text("")
    with server_process("twilio") as twilio, server_process("smtp") as smtp:
        env = {
            **os.environ,
            **run_settings(run, url, feed, DAMPING_S),
            "TWILIO_ACCOUNT_SID": "AC" + "0123456789abcdef" * 2,
            "TWILIO_AUTH_TOKEN": "benchtoken",
            "FOREWARN_SMS_FROM": "+15005550006",
            "FOREWARN_TWILIO_API_URL": twilio.url,
            # Each worker keeps its share of the provider's limit.
            "FOREWARN_SMS_RATE": str(args.sms_rate / args.workers),
            "FOREWARN_SMTP_URL": smtp.url,
            "FOREWARN_EMAIL_FROM": "alerts@example.net",
            "FOREWARN_EMAIL_RATE": str(args.email_rate / args.workers),
            "FOREWARN_SEND_CONCURRENCY": "2",
            "PREFECT_LOGGING_LEVEL": os.environ.get("PREFECT_LOGGING_LEVEL", "WARNING"),
        }
        env.pop("PREFECT_API_URL", None)
        forewarn = str(Path(sys.executable).parent / "forewarn")
        workers = []
        for n in range(args.workers):
            command = [forewarn, "serve", "--interval", "1", "--port", str(free_port())]
            home = {"PREFECT_HOME": str(run / f"prefect-{n}")}
            workers.append(
                subprocess.Popen(command, env={**env, **home}, cwd=run, stdout=subprocess.DEVNULL)
            )
        try:
            while not (run / "site").exists():  # the first cycle has run
                if any(w.poll() is not None for w in workers):
                    raise SystemExit("forewarn serve stopped")
                time.sleep(0.2)
            # Steady state: every worker up, and serve's other flows past their first runs
            # (a fault arrives at any moment, not in the second the service starts).
            time.sleep(10 + 2 * (args.workers - 1))
            reported = time.time()
            line = {"element": "ex0", "state": "down", "at": datetime.now(UTC).isoformat()}
            with feed.open("a") as handle:
                handle.write(json.dumps(line) + "\n")
            print(f"fault reported at {datetime.now(UTC):%H:%M:%S.%f}", flush=True)
            cleared = reported + DAMPING_S
            engine = make_engine(url)
            while True:
                time.sleep(0.5)
                with engine.connect() as conn:
                    counts = {
                        str(status): int(n)
                        for status, n in conn.execute(
                            select(deliveries.c.status, func.count()).group_by(deliveries.c.status)
                        )
                    }
                if counts and not counts.get("queued") and not counts.get("sending"):
                    break
            with engine.connect() as conn:
                sent = dict(
                    conn.execute(
                        select(deliveries.c.channel, func.count())
                        .where(deliveries.c.status == "sent")
                        .group_by(deliveries.c.channel)
                    ).all()
                )
            engine.dispose()
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGINT)
            for worker in workers:
                try:
                    worker.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    worker.kill()
        print(f"deliveries by state: {counts}")
        for name, server, rate in (
            ("sms", twilio, args.sms_rate),
            ("email", smtp, args.email_rate),
        ):
            count, first, last = server.arrivals()
            span = max(last - first, 1e-9)
            print(
                f"{name}: {count:,} handed over for {sent.get(name, 0):,} ledger rows sent; "
                f"first {first - cleared:.2f} s after the fault cleared damping, last "
                f"{last - cleared:.1f} s after; {count / span:,.0f}/s against a limit of "
                f"{rate:,.0f}/s"
            )


if __name__ == "__main__":
    main()
