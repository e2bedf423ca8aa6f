"""The fourteen-day outage (examples/drill/fourteen-days.yaml): the estimate slips every
day and one line stays down after the fix. Every promise is kept to the end, no estimate
passes without word, nights stay quiet, and the messages per day stay bounded: no limit
silences a long outage (a cap of 8 messages per incident used to, from day 4 on)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from forewarn.config import Settings
from forewarn.drill import DrillResult
from tests.promises import (
    CABINET_A,
    at,
    broken_promises,
    drill,
    estimates_passed_unannounced,
    night_breaches,
    outgoing,
    per_day,
    updates_to,
)

LONDON = {c: "Europe/London" for c in CABINET_A}
START = datetime.fromisoformat("2026-11-23T08:00:00+00:00")
UNTIL = START + timedelta(days=15)
FIXED = datetime.fromisoformat("2026-12-06T11:00:00+00:00")


@pytest.fixture(scope="module")
def fortnight(tmp_path_factory: pytest.TempPathFactory) -> DrillResult:
    return drill(tmp_path_factory, "fourteen-days.yaml")


def test_every_promise_is_kept_to_the_end(fortnight: DrillResult) -> None:
    assert broken_promises(fortnight.messages, UNTIL) == []
    assert fortnight.summary["promised_updates_broken"] == 0
    kept = fortnight.summary["promised_updates_kept"]
    assert kept >= 4 * 13  # every customer, every day of it


def test_no_estimate_passes_without_word(fortnight: DrillResult) -> None:
    assert estimates_passed_unannounced(fortnight.messages, UNTIL) == []
    assert fortnight.summary["estimates_missed_without_warning"] == 0


def test_every_customer_hears_every_day_until_their_line_is_back(fortnight: DrillResult) -> None:
    london = ZoneInfo("Europe/London")
    for customer in CABINET_A:
        days = {
            at(m["at"]).astimezone(london).date() for m in updates_to(fortnight.messages, customer)
        }
        last_day = (UNTIL if customer == "c45" else FIXED).astimezone(london).date()
        every = {START.date() + timedelta(days=n) for n in range((last_day - START.date()).days)}
        assert every <= days, (customer, sorted(every - days))


def test_the_line_still_down_keeps_its_conversation_and_the_rest_are_restored(
    fortnight: DrillResult,
) -> None:
    for customer in CABINET_A - {"c45"}:
        last = updates_to(fortnight.messages, customer)[-1]
        assert last["event"] == "restored" and at(last["at"]) >= FIXED
    c45 = updates_to(fortnight.messages, "c45")
    still = [m for m in c45 if m["event"] == "still_down"]
    assert still and not [m for m in c45 if m["event"] == "restored"]
    after = [m for m in c45 if m["at"] > still[0]["at"]]
    assert after and at(after[-1]["at"]) > UNTIL - timedelta(days=1)  # told to the end


def test_nights_stay_quiet_and_the_days_bounded(fortnight: DrillResult) -> None:
    assert night_breaches(fortnight.messages, LONDON) == []
    routine = per_day(fortnight.messages, LONDON, routine_only=True)
    ceiling = Settings().routine_per_day
    assert max(routine.values()) <= ceiling
    assert max(per_day(fortnight.messages, LONDON).values()) <= ceiling + 2
    s = fortnight.summary
    assert s["messages_in_sleep_hours"] == s["routine_messages_in_quiet_hours"] == 0
    assert s["days_over_routine_ceiling"] == 0
    assert s["most_routine_messages_per_customer_channel_day"] == max(routine.values())


def test_only_the_cabinets_customers_hear_of_it(fortnight: DrillResult) -> None:
    assert {m["customer_id"] for m in outgoing(fortnight.messages)} == CABINET_A
    assert fortnight.summary["messages"] == len(outgoing(fortnight.messages))
