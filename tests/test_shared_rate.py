"""A channel's rate is the provider's, however many workers send on it: three workers
(each with its own store engine and notifiers, as three processes would have) never
send faster together than the one configured rate."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import pytest
from pydantic import SecretStr

from forewarn.channels.rate import GRANT_S, SharedRateLimiter
from forewarn.config import Settings
from forewarn.context import Context
from forewarn.pipeline import deliver_channel
from forewarn.store import make_engine
from testkit.ledger_data import fill_ledger, phone
from testkit.servers import fake_twilio
from tests.conftest import fresh_postgres_database

RATE = 40.0
WORKERS = 3
CUSTOMERS = 240


def most_in_window(arrivals: list[float], window: float) -> int:
    """The most arrivals in any `window` seconds."""
    times = sorted(arrivals)
    most, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= window:
            first += 1
        most = max(most, last - first + 1)
    return most


def three_workers_send(
    db_url: str, tmp_path: Path, rate_limits: Literal["store", "prefect"] = "store"
) -> list[float]:
    """Queue a text for each customer, let three workers send them; when each arrived."""
    now = datetime.now(UTC)
    engine = make_engine(db_url)
    fill_ledger(engine, CUSTOMERS, ("sms",), now)
    engine.dispose()
    with fake_twilio() as (twilio_url, twilio):
        settings = Settings(
            db_url=SecretStr(db_url),
            outbox=tmp_path / "outbox",
            journal_dir=tmp_path / "journal",
            site_dir=tmp_path / "site",
            twilio_account_sid="AC" + "0" * 32,
            twilio_auth_token=SecretStr("token"),
            sms_from="+15005550006",
            twilio_api_url=twilio_url,
            sms_rate=RATE,
            send_concurrency=2,
            quiet_hours="",
            sleep_hours="",
            rate_limits=rate_limits,
            _env_file=None,  # type: ignore[call-arg]
        )
        workers = [Context.build(settings) for _ in range(WORKERS)]
        errors: list[BaseException] = []

        def work(ctx: Context) -> None:
            try:
                deliver_channel(ctx, now, channels=("sms",), batch_size=20)
            except BaseException as err:  # reported below
                errors.append(err)

        threads = [threading.Thread(target=work, args=(ctx,)) for ctx in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        for ctx in workers:
            ctx.close()
        assert not errors, [repr(e) for e in errors]
        assert Counter(m["to"] for m in twilio.messages) == Counter(
            {phone(i): 1 for i in range(CUSTOMERS)}
        )
        return list(twilio.arrivals)


def assert_one_rate(arrivals: list[float]) -> None:
    # The configured rate, plus the second's worth a quiet channel may burst, plus the
    # slots of one grant per worker that a busy worker may spend late, together.
    slack = RATE + WORKERS * max(RATE * GRANT_S, 1)
    for window in (1.0, 2.0, 4.0):
        assert most_in_window(arrivals, window) <= RATE * window + slack, window
    span = max(arrivals) - min(arrivals)
    assert span >= (CUSTOMERS - slack) / RATE * 0.95


@pytest.mark.integration
def test_three_workers_on_postgresql_send_at_one_rate_together(
    postgres_server: str, tmp_path: Path
) -> None:
    assert_one_rate(three_workers_send(fresh_postgres_database(postgres_server), tmp_path))


# Three threads against a local Twilio at a real rate: seconds of real time, not a unit.
@pytest.mark.integration
def test_three_workers_on_sqlite_send_at_one_rate_together(tmp_path: Path) -> None:
    assert_one_rate(three_workers_send(f"sqlite:///{tmp_path / 'store.db'}", tmp_path))


@pytest.mark.integration
@pytest.mark.usefixtures("prefect_harness")
def test_three_workers_share_one_prefect_global_concurrency_limit(tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    from forewarn.notifiers.budget import limit_name

    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(
                name=limit_name("sms"), limit=int(RATE), slot_decay_per_second=RATE
            )
        )
    try:
        arrivals = three_workers_send(f"sqlite:///{tmp_path / 'store.db'}", tmp_path, "prefect")
        assert_one_rate(arrivals)
    finally:
        with get_client(sync_client=True) as client:
            client.delete_global_concurrency_limit_by_name(limit_name("sms"))


@pytest.mark.integration
@pytest.mark.usefixtures("prefect_harness")
def test_without_its_prefect_limit_a_channel_refuses_to_send_rather_than_run_unthrottled(
    tmp_path: Path,
) -> None:
    with pytest.raises(AssertionError, match="must be created before acquiring slots"):
        three_workers_send(f"sqlite:///{tmp_path / 'store.db'}", tmp_path, "prefect")


def test_a_worker_alone_spends_the_whole_budget_in_order() -> None:
    clock = [100.0]
    slept: list[float] = []
    granted: list[float] = []

    def grant(units: float, rate: float, burst: float) -> float:
        granted.append(units)
        return 0.0

    limiter = SharedRateLimiter(10.0, grant, clock=lambda: clock[0], sleep=slept.append)
    for _ in range(4):
        limiter.acquire()
    # One grant of 2 units (0.2 s at 10/s), then another: slots 0.1 s apart.
    assert granted == [2.0, 2.0]
    assert slept == pytest.approx([0.1, 0.1])  # the second slot of each grant waits its turn
