"""Where the shared send rate lives, measured: three workers send `--texts` texts to a
local Twilio at `--rate` a second, sharing the rate through the store's budget
(FOREWARN_RATE_LIMITS=store, SQLite) or a Prefect global concurrency limit with slot
decay (FOREWARN_RATE_LIMITS=prefect, on a temporary Prefect server):
`python bench/bench_rate_limits.py [--texts 1500 --rate 100]`.

Prints, for each, how long the texts took against texts / rate, the most sent in any
second, and the CPU the workers used."""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from forewarn.config import Settings  # noqa: E402
from forewarn.context import Context  # noqa: E402
from forewarn.notifiers.budget import limit_name  # noqa: E402
from forewarn.pipeline import deliver_channel  # noqa: E402
from forewarn.store import make_engine  # noqa: E402
from testkit.ledger_data import fill_ledger  # noqa: E402
from testkit.servers import fake_twilio  # noqa: E402

WORKERS = 3


def run(how: str, texts: int, rate: float, directory: Path) -> tuple[float, int, float]:
    """(seconds, most in one second, CPU seconds) for three workers sharing the rate."""
    db = f"sqlite:///{directory / f'{how}.db'}"
    now = datetime.now(UTC)
    engine = make_engine(db)
    fill_ledger(engine, texts, ("sms",), now)
    engine.dispose()
    with fake_twilio() as (url, twilio):
        settings = Settings(
            db_url=SecretStr(db), outbox=directory / "outbox", journal_dir=directory / how,
            site_dir=directory / "site", twilio_account_sid="AC" + "0" * 32,
            twilio_auth_token=SecretStr("token"), sms_from="+15005550006",
            twilio_api_url=url, sms_rate=rate, quiet_hours="", sleep_hours="",
            rate_limits=how, _env_file=None,  # type: ignore[call-arg]
        )  # fmt: skip
        workers = [Context.build(settings) for _ in range(WORKERS)]
        cpu, began = time.process_time(), time.perf_counter()
        threads = [
            threading.Thread(target=deliver_channel, args=(ctx, now), kwargs={"channels": ("sms",)})
            for ctx in workers
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds, used = time.perf_counter() - began, time.process_time() - cpu
        for ctx in workers:
            ctx.close()
        arrivals = sorted(twilio.arrivals)
    assert len(arrivals) == texts, f"{len(arrivals)} of {texts} sent"
    most, first = 0, 0
    for last, at in enumerate(arrivals):
        while at - arrivals[first] >= 1.0:
            first += 1
        most = max(most, last - first + 1)
    return seconds, most, used


def main() -> None:
    """Measure the store's budget, then a Prefect global concurrency limit."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=1500)
    parser.add_argument("--rate", type=float, default=100.0)
    args = parser.parse_args()
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.testing.utilities import prefect_test_harness

    with tempfile.TemporaryDirectory() as scratch, prefect_test_harness(90):
        with get_client(sync_client=True) as client:
            client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(
                    name=limit_name("sms"), limit=int(args.rate), slot_decay_per_second=args.rate
                )
            )
        for how in ("store", "prefect"):
            seconds, most, used = run(how, args.texts, args.rate, Path(scratch))
            expected = args.texts / args.rate
            print(
                f"{how:8} {args.texts:,} texts by {WORKERS} workers at {args.rate:g}/s: "
                f"{seconds:.1f} s (texts / rate = {expected:.1f} s, "
                f"{100 * (seconds / expected - 1):+.1f}%), at most {most} in a second, "
                f"{used:.1f} s CPU"
            )


if __name__ == "__main__":
    main()
