"""Claims that cannot outlive their worker: a claim is sized to what the channel sends
inside the lease and renewed while it sends, so a second dispatcher never takes over rows
still being sent; a claim that was taken over cannot record its outcomes."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from forewarn.channels.base import (
    Done,
    Held,
    Message,
    Outcome,
    Result,
    Sending,
    Session,
    Stateless,
    always,
    ignore,
)
from forewarn.channels.rate import RateLimiter
from forewarn.channels.sms import SmsSender
from forewarn.incidents.ledger import Attempt, Holder, Rules, claim, reclaim_stale, record
from forewarn.notifiers.compose import Brand
from forewarn.notifiers.delivery import BatchReport, claim_size, deliver_batch
from forewarn.quiet import AWAKE
from forewarn.store import deliveries, make_engine
from testkit.ledger_data import fill_ledger, phone
from testkit.servers import fake_twilio

ACCOUNT = "AC" + "0123456789abcdef" * 2
BRAND = Brand("Mill Road Fibre", "https://status.example/")


# Two dispatchers racing a real 1 s lease against a local Twilio: real time, by design.
@pytest.mark.integration
def test_two_dispatchers_at_a_long_codes_pace_text_every_phone_once(tmp_path: Path) -> None:
    # 60 texts at 20 a second take 3 s; the lease is 1 s. The second dispatcher starts
    # after the first one's lease: before claims were sized and renewed, it took over the
    # rows not yet sent and both sent them (14 of the 60 phones texted twice).
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    customers = 60
    fill_ledger(engine, customers, ("sms",), datetime.now(UTC))
    rules = Rules(night=AWAKE, lease=timedelta(seconds=1))
    reports: list[BatchReport] = []
    errors: list[BaseException] = []
    with fake_twilio() as (twilio_url, twilio):

        def dispatcher(delay: float) -> None:
            time.sleep(delay)
            sms = SmsSender(
                ACCOUNT, "token", "+15005550006", api_url=twilio_url, limiter=RateLimiter(20)
            )
            try:
                while True:
                    now = datetime.now(UTC)
                    batch = deliver_batch(engine, {"sms": sms}, BRAND, now, 1000, rules)
                    reports.append(batch)
                    if not batch.handled:
                        return
            except BaseException as err:  # reported below, not lost in the thread
                errors.append(err)

        threads = [threading.Thread(target=dispatcher, args=(d,)) for d in (0.0, 1.5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        texts = Counter(m["to"] for m in twilio.messages)
    assert errors == []
    assert texts == Counter({phone(i): 1 for i in range(customers)})
    assert sum(r.refused for r in reports) == 0  # no claim was taken over
    with engine.connect() as conn:
        assert set(conn.execute(select(deliveries.c.status)).scalars()) == {"sent"}
    engine.dispose()


def test_a_claim_is_what_the_channel_sends_in_five_seconds_or_a_third_of_the_lease() -> None:
    sms = SmsSender(ACCOUNT, "token", "+15005550006", limiter=RateLimiter(1))  # a long code
    assert claim_size({"sms": sms}, ("sms",), 1000, timedelta(minutes=5)) == 6
    assert claim_size({"sms": sms}, ("sms",), 1000, timedelta(seconds=6)) == 3
    fast = SmsSender(ACCOUNT, "token", "MG" + "a1" * 16)  # 100 segments a second
    assert claim_size({"sms": fast}, ("sms",), 1000, timedelta(minutes=5)) == 600
    assert claim_size({"sms": fast}, ("sms",), 50, timedelta(minutes=5)) == 50
    assert claim_size({}, None, 1000, timedelta(minutes=5)) == 1000


def test_a_record_from_a_stale_claim_is_refused(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    start = datetime.now(UTC)
    fill_ledger(engine, 3, ("sms",), start)
    rules = Rules(night=AWAKE, lease=timedelta(seconds=30))
    first, second = Holder("elsewhere:1:1", "first"), Holder("elsewhere:2:2", "second")
    with engine.begin() as conn:
        claimed = claim(conn, start, 10, rules, lambda due: ("text", None), ("sms",), first)
    ids = [due.delivery_id for due in claimed.due]
    assert len(ids) == 3
    later = start + timedelta(seconds=31)  # the first claim's lease passed, unrenewed
    with engine.begin() as conn:
        taken = reclaim_stale(conn, later, rules, lambda stale: {}, ("sms",), second)
    assert [due.delivery_id for due in taken.resend] == ids
    delivered = [Attempt(i, "delivered", "accepted", f"SM{i}") for i in ids]
    with engine.begin() as conn:
        stale = record(conn, delivered, later, first.token)
        statuses = set(conn.execute(select(deliveries.c.status)).scalars())
    assert (stale.sent, stale.refused) == (0, 3)
    assert statuses == {"sending"}  # still the second claim's to settle
    with engine.begin() as conn:
        held = record(conn, delivered, later, second.token)
        rows = conn.execute(select(deliveries.c.status, deliveries.c.provider_ref)).all()
    assert (held.sent, held.refused) == (3, 0)
    assert sorted(rows) == [("sent", f"SM{i}") for i in ids]
    engine.dispose()


def test_a_live_claim_is_not_taken_over_and_a_dead_ones_is_at_once(tmp_path: Path) -> None:
    import subprocess
    import sys

    from forewarn.incidents.ledger.holders import me

    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    start = datetime.now(UTC)
    fill_ledger(engine, 4, ("sms",), start)
    rules = Rules(night=AWAKE, lease=timedelta(minutes=5))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    host = me().rsplit(":", 2)[0]
    dead = Holder(f"{host}:{gone.stdout.strip()}:1", "dead")
    with engine.begin() as conn:
        claim(conn, start, 2, rules, lambda due: ("text", None), ("sms",), Holder(me(), "alive"))
        claim(conn, start, 2, rules, lambda due: ("text", None), ("sms",), dead)
    soon = start + timedelta(seconds=2)  # well inside both leases
    with engine.begin() as conn:
        taken = reclaim_stale(conn, soon, rules, lambda stale: {}, ("sms",), Holder(me(), "new"))
        tokens = Counter(conn.execute(select(deliveries.c.claim_token)).scalars())
    assert len(taken.resend) == 2  # the dead process's rows, not the live one's
    assert tokens == Counter({"alive": 2, "new": 2})
    engine.dispose()


def _steps_to_read_routine(tmp_path: Path, customers: int) -> int:
    """SQLite's steps to read what 10 customers were sent today, beside `customers - 10`
    customers already sent their text."""
    from sqlalchemy import update

    from forewarn.incidents.ledger.due import due_rows
    from forewarn.incidents.ledger.told import routine_sent

    engine = make_engine(f"sqlite:///{tmp_path / f'store-{customers}.db'}")
    now = datetime.now(UTC)
    fill_ledger(engine, customers, ("sms",), now)
    d = deliveries.c
    with engine.begin() as conn:
        conn.execute(update(deliveries).where(d.id > 10).values(status="sent", sent_at=now))
    steps = [0]

    def step() -> int:
        steps[0] += 1
        return 0

    with engine.connect() as conn:
        rows = due_rows(conn, d.status == "queued", 10)
        raw = conn.connection.driver_connection
        raw.set_progress_handler(step, 100)  # type: ignore[union-attr]
        found = routine_sent(conn, rows, now)
        raw.set_progress_handler(None, 100)  # type: ignore[union-attr]
    engine.dispose()
    assert len(rows) == 10 and found == {}  # nothing routine sent to them yet
    return steps[0]


def test_reading_a_batchs_day_does_not_walk_everything_already_sent(tmp_path: Path) -> None:
    # The daily ceiling's read looked up 'sent' rows by the queue index, walking every
    # message sent in the outage on each claim: 0.28 s a claim at 200,000 sent.
    few, many = _steps_to_read_routine(tmp_path, 100), _steps_to_read_routine(tmp_path, 5000)
    assert many < 2 * few + 10, (few, many)


class SlowToAsk(Sending):
    """A channel that sends at once but takes `delay` seconds to answer about lost claims
    (as Twilio does for each text it is asked about), or leaves everything unsent."""

    channel = "sms"

    def __init__(self, delay: float = 0.0, lapsed: bool = False) -> None:
        self.delay, self.lapsed = delay, lapsed
        self.sent: list[str] = []

    def session(self) -> Session:
        return Stateless(self._accept)

    def _accept(self, m: Message) -> Result:
        self.sent.append(m.to)
        return Result(m.delivery_id, Outcome.DELIVERED, "ok", f"SM{m.delivery_id}")

    def send(
        self, messages: Sequence[Message], done: Done = ignore, held: Held = always
    ) -> list[Result]:
        # A lapsed claim: the sequence's own check finds every message no longer held.
        return super().send(messages, done, (lambda: False) if self.lapsed else held)

    def reconcile(self, messages: Sequence[Message]) -> list[Result | None]:
        time.sleep(self.delay)
        return [None for _ in messages]


def test_a_claim_that_took_longer_than_its_lease_still_sends(tmp_path: Path) -> None:
    # Asking the provider about two lost rows took 1.5 s against a 1 s lease. Had the
    # lease been counted from before the claim, the batch would have lapsed before its
    # first send, and each worker's claim could lapse in turn with nothing ever sent.
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    start = datetime.now(UTC)
    fill_ledger(engine, 5, ("sms",), start)
    rules = Rules(night=AWAKE, lease=timedelta(seconds=1))
    with engine.begin() as conn:
        lost = Holder("elsewhere:1:1", "lost")
        claim(conn, start, 2, rules, lambda due: ("text", None), ("sms",), lost)
    sms = SlowToAsk(delay=1.5)
    later = start + timedelta(seconds=2)  # the lost claim's lease has passed
    batch = deliver_batch(engine, {"sms": sms}, BRAND, later, 1000, rules)
    assert (batch.claimed, batch.sent, batch.unsent) == (5, 5, 0)
    assert sorted(sms.sent) == sorted(phone(i) for i in range(5))
    engine.dispose()


def test_what_a_lapsed_claim_never_sent_goes_back_to_the_queue_uncounted(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    now = datetime.now(UTC)
    fill_ledger(engine, 4, ("sms",), now)
    rules = Rules(night=AWAKE)
    batch = deliver_batch(engine, {"sms": SlowToAsk(lapsed=True)}, BRAND, now, 1000, rules)
    assert (batch.claimed, batch.sent, batch.unsent, batch.retrying) == (4, 0, 4, 0)
    with engine.connect() as conn:
        rows = conn.execute(select(deliveries.c.status, deliveries.c.attempts)).all()
    assert rows == [("queued", 0)] * 4  # due again at once, no attempt spent
    again = deliver_batch(engine, {"sms": SlowToAsk()}, BRAND, now, 1000, rules)
    assert again.sent == 4
    engine.dispose()


def test_claims_are_stamped_on_the_true_hour_not_the_cycles_start(tmp_path: Path) -> None:
    # A big outage's second delivery pass starts minutes after its cycle began; its claims
    # were stamped on the cycle's start, so other workers saw them expire minutes early.
    from pydantic import SecretStr

    from forewarn.config import Settings
    from forewarn.context import Context
    from forewarn.pipeline import deliver_channel

    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = make_engine(url)
    began = datetime.now(UTC) - timedelta(minutes=10)  # when the cycle started
    fill_ledger(engine, 3, ("sms",), began)
    settings = Settings(
        db_url=SecretStr(url), outbox=tmp_path / "outbox", journal_dir=tmp_path / "journal",
        site_dir=tmp_path / "site", quiet_hours="", sleep_hours="",
        _env_file=None,  # type: ignore[call-arg]
    )  # fmt: skip
    ctx = Context.build(settings)
    report = deliver_channel(ctx, began, channels=("sms",))
    ctx.close()
    with engine.connect() as conn:
        leases = conn.execute(select(deliveries.c.lease_until)).scalars().all()
    engine.dispose()
    assert report.sent == 3
    soonest = datetime.now(UTC) + ctx.rules.lease - timedelta(minutes=1)
    assert all(lease is not None and lease > soonest for lease in leases), leases
