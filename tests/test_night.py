"""The night policy, from drills: an evening outage is told at once, what happens in
sleep hours is told once in the morning ("restored at 02:04 GMT", in the customer's words
and zone), an estimate given before the night is warned of before it, and one given
during the night cannot pass unannounced."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from forewarn.config import Settings
from forewarn.drill import DrillResult, load_scenario, run_drill
from forewarn.incidents.cadence import Cadence
from forewarn.quiet import AWAKE, Night, QuietHours
from tests.promises import (
    CABINET_A,
    EXAMPLE,
    at,
    broken_promises,
    drill,
    estimates_passed_unannounced,
    night_breaches,
    outgoing,
    updates_to,
)

ZONES = {"c39": "Europe/London", "c41": "Europe/London", "c43": "Europe/Madrid",
         "c45": "Europe/London"}  # fmt: skip
DOWN = datetime.fromisoformat("2026-11-23T21:30:00+00:00")


@pytest.fixture(scope="module")
def evening(tmp_path_factory: pytest.TempPathFactory) -> DrillResult:
    return drill(tmp_path_factory, "evening-outage.yaml")


def test_an_evening_outage_is_told_at_once(evening: DrillResult) -> None:
    # Before: quiet hours (21:00-06:00) held the first word of it until six in the morning.
    for customer in CABINET_A:
        first = updates_to(evening.messages, customer)[0]
        assert first["event"] == "opened" and at(first["at"]) <= DOWN + timedelta(minutes=5)
    assert evening.summary["minutes_to_first_message"] <= 5


def test_restored_in_the_small_hours_is_told_in_the_morning_with_its_time(
    evening: DrillResult,
) -> None:
    # Before: "restored" went at 02:04 and woke people.
    for customer in CABINET_A:
        restored = [m for m in outgoing(evening.messages)
                    if m["customer_id"] == customer and m["event"] == "restored"]  # fmt: skip
        assert restored, customer
        for m in restored:
            local = at(m["at"]).astimezone(ZoneInfo(ZONES[customer]))
            assert local.hour == 7 and local.minute < 5, (customer, m["at"])
            if customer == "c43":  # in Spanish, and in Madrid's time
                assert "a las 03:04 CET" in m["body"], m["body"]
            else:
                assert "restored at 02:04 GMT" in m["body"], m["body"]


def test_the_evening_drill_keeps_the_night_promises_and_people(evening: DrillResult) -> None:
    until = DOWN + timedelta(hours=13, minutes=30)
    assert night_breaches(evening.messages, ZONES) == []
    assert broken_promises(evening.messages, until) == []
    assert {m["customer_id"] for m in outgoing(evening.messages)} == CABINET_A
    s = evening.summary
    assert s["messages_in_sleep_hours"] == s["routine_messages_in_quiet_hours"] == 0
    # The promise in the evening's text falls outside the night in every customer's zone.
    promises = {m["next_update_at"] for m in outgoing(evening.messages) if m["event"] == "opened"}
    assert promises == {"2026-11-24T08:00:00Z"}  # 08:00 in London, 09:00 in Madrid


def _drill(tmp_path: Path, events: list[dict[str, Any]], until: str) -> DrillResult:
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump({
        "name": "night estimates", "start": "2026-11-23T12:00:00+00:00", "until": until,
        "network": {"topology": str(EXAMPLE / "topology.csv"),
                    "customers": str(EXAMPLE / "customers.csv")},
        "settings": {"phone_region": "GB", "time_zone": "Europe/London"},
        "events": events,
    }))  # fmt: skip
    return run_drill(load_scenario(path), Settings(), tmp_path / "out")


def test_an_estimate_in_the_night_is_warned_of_before_the_evening(tmp_path: Path) -> None:
    result = _drill(tmp_path, [
        {"at": "+0m", "feed": {"under": "cabA", "state": "down"}},
        {"at": "+1h", "ops": {"action": "update", "etr": "2026-11-24T02:00:00+00:00"}},
        {"at": "+1d", "feed": {"under": "cabA", "state": "up"}},
    ], "+1d1h")  # fmt: skip
    until = at("2026-11-24T13:00:00Z")
    assert estimates_passed_unannounced(result.messages, until) == []
    assert broken_promises(result.messages, until) == []
    assert night_breaches(result.messages, {c: "Europe/London" for c in CABINET_A}) == []
    warned = [m for m in updates_to(result.messages, "c41") if m["event"] == "etr_missed"]
    assert warned and at(warned[0]["at"]) <= at("2026-11-23T20:30:00Z")


def test_an_estimate_given_in_the_night_cannot_pass_unannounced(tmp_path: Path) -> None:
    # Ops say at 00:30 that it will be fixed by 05:00; nobody hears it in the night. In
    # the morning customers must not be handed an estimate that has already passed, nor
    # be told that one they never heard "will be missed": they hear what stands now.
    result = _drill(tmp_path, [
        {"at": "+0m", "feed": {"under": "cabA", "state": "down"}},
        {"at": "2026-11-24T00:30:00+00:00",
         "ops": {"action": "update", "etr": "2026-11-24T05:00:00+00:00"}},
        {"at": "+1d", "feed": {"under": "cabA", "state": "up"}},
    ], "+1d1h")  # fmt: skip
    until = at("2026-11-24T13:00:00Z")
    assert estimates_passed_unannounced(result.messages, until) == []
    assert result.summary["estimates_missed_without_warning"] == 0
    assert night_breaches(result.messages, {c: "Europe/London" for c in CABINET_A}) == []
    to_c41 = [m for m in outgoing(result.messages) if m["customer_id"] == "c41"]
    morning = [
        m
        for m in updates_to(result.messages, "c41")
        if "2026-11-24T07" <= m["at"] < "2026-11-24T09"
    ]
    assert [m["event"] for m in morning] == ["followup"]
    assert not [m for m in to_c41 if "05:00" in m["body"]]


def test_the_night_holds_routine_in_quiet_hours_and_everything_in_sleep_hours() -> None:
    night = Night()  # quiet 21:00-08:00, sleep 23:00-07:00
    evening = datetime.fromisoformat("2026-11-23T21:30:00+00:00")  # London: GMT
    assert night.held_until(evening, "Europe/London", routine=False) is None
    assert night.held_until(evening, "Europe/London", routine=True) == at("2026-11-24T08:00:00Z")
    small_hours = at("2026-11-24T02:04:00Z")
    assert night.held_until(small_hours, "Europe/London", routine=False) == at(
        "2026-11-24T07:00:00Z"
    )
    assert night.began(small_hours, "Europe/London", routine=True) == at("2026-11-23T21:00:00Z")
    assert night.began(small_hours, "Europe/London", routine=False) == at("2026-11-23T23:00:00Z")
    # Windows that follow each other are held through as one.
    split = Night(QuietHours.parse("20:00-22:00"), QuietHours.parse("22:00-06:00"))
    assert split.held_until(at("2026-11-23T20:30:00Z"), "UTC", True) == at("2026-11-24T06:00:00Z")
    assert split.began(at("2026-11-24T01:00:00Z"), "UTC", True) == at("2026-11-23T20:00:00Z")
    assert AWAKE.held_until(small_hours, "UTC", True) is None


def test_a_promise_falls_when_every_affected_customer_is_awake() -> None:
    cadence = Cadence.parse("0h=6h", Night(), "Europe/London")
    started = at("2026-11-23T15:30:00Z")
    # 21:30 in London is quiet; 08:00 in London is 09:00 in Madrid: both awake.
    assert cadence.next_update(started, started, ["Europe/London"]) == at("2026-11-24T08:00:00Z")
    both = cadence.next_update(started, started, ["Europe/London", "Europe/Madrid"])
    assert both == at("2026-11-24T08:00:00Z")
    # New York wakes at 13:00 London time: the promise waits for it too.
    far = cadence.next_update(started, started, ["Europe/London", "America/New_York"])
    assert far == at("2026-11-24T13:00:00Z")
    # Planned within the day's ceiling: never more often than a day's share of it.
    assert Cadence.parse("0h=1h", AWAKE, "UTC", per_day=4).interval(timedelta(0)) == timedelta(
        hours=6
    )
