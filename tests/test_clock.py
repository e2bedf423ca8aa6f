"""The clock in the Context: the hour a cycle lives at, without a skew passed around, and
a held clock on which waiting costs no real time."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from forewarn.clock import Clock, HeldClock
from forewarn.config import Settings
from forewarn.context import Context
from forewarn.pipeline import _until_claimed
from forewarn.store import deliveries, writing
from testkit.ledger_data import fill_ledger
from tests.conftest import NOW, run_cycle
from tests.town import Town, report_cabinet


def test_each_moment_lives_at_its_own_hour_as_real_seconds_pass() -> None:
    clock = Clock()
    assert abs(clock.now() - datetime.now(UTC)) < timedelta(seconds=1)
    assert abs(clock.since(NOW)() - datetime.now(UTC)) < timedelta(seconds=1)  # not followed
    clock.follow(NOW)
    cycle = clock.since(NOW)
    first = cycle()
    time.sleep(0.05)
    later = cycle()
    assert NOW <= first < later < NOW + timedelta(seconds=1)
    # A follow-up run beside the cycle, at its own moment, moves neither's hour; the
    # cycle's second delivery pass, following its moment again, keeps it.
    clock.follow(NOW + timedelta(hours=2))
    follow_up = clock.since(NOW + timedelta(hours=2))
    clock.follow(NOW)
    time.sleep(0.05)
    again = clock.since(NOW)()
    assert again > later + timedelta(seconds=0.04)
    assert NOW + timedelta(hours=2) < follow_up() < NOW + timedelta(hours=2, seconds=1)


def test_a_held_clock_moves_only_when_told() -> None:
    clock = HeldClock(NOW)
    event = threading.Event()
    began = time.monotonic()
    assert clock.wait(event, 3600) is False  # an hour passes at once
    assert time.monotonic() - began < 1
    assert clock.now() == NOW + timedelta(hours=1) and clock.monotonic() == 3600
    event.set()
    assert clock.wait(event, 60) is True and clock.now() == NOW + timedelta(hours=1)


def test_claims_are_stamped_on_the_cycles_hour(town: Town, settings: Settings) -> None:
    # A cycle at a test's (or a drill's) moment stamps its claims on that moment, as the
    # sends go on: no offset is handed from step to step.
    ctx = Context.build(settings)
    report_cabinet(settings.jsonl_feed, "cabA", "down", NOW)
    run_cycle(ctx, NOW + timedelta(minutes=3))
    with ctx.engine.connect() as conn:
        stamps = conn.execute(select(deliveries.c.claimed_at)).scalars().all()
    assert stamps, "the cycle claimed its messages"
    at = NOW + timedelta(minutes=3)
    assert all(at <= s.replace(tzinfo=UTC) < at + timedelta(seconds=30) for s in stamps)
    ctx.close()


def test_waiting_for_claims_passes_on_a_held_clock_and_wakes_on_a_claim(
    settings: Settings,
) -> None:
    ctx = Context.build(settings)
    fill_ledger(ctx.engine, 3, ("sms",), NOW)  # due and unclaimed
    held = HeldClock(NOW)
    ctx.clock = held
    began = time.monotonic()
    _until_claimed(ctx, NOW + timedelta(minutes=1), within=30.0)
    assert time.monotonic() - began < 5  # thirty seconds passed on the held clock only
    assert held.monotonic() >= 30.0

    # On the system's clock, a dispatcher's claim wakes the wait at once (no polling).
    def dispatcher_claims() -> None:
        claim = update(deliveries).values(status="sending")
        writing(ctx.engine, lambda conn: conn.execute(claim), "claim")
        ctx.claimed.set()

    ctx.clock = Clock()
    threading.Timer(0.3, dispatcher_claims).start()
    began = time.monotonic()
    _until_claimed(ctx, NOW + timedelta(minutes=1), within=30.0)
    assert 0.25 < time.monotonic() - began < 5  # woken by the claim, not the time limit
    ctx.close()


def test_a_context_sent_to_a_worker_carries_its_hours(settings: Settings) -> None:
    ctx = Context.build(settings)
    ctx.clock.follow(NOW)
    _rebuild, (_settings, offsets) = ctx.__reduce__()
    assert abs(offsets[NOW] - (NOW - datetime.now(UTC))) < timedelta(seconds=5)
    ctx.close()
