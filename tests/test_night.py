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
from tests.promises import (
    at,
    broken_promises,
    estimates_passed_unannounced,
    night_breaches,
    outgoing,
    updates_to,
)

EXAMPLE = Path(__file__).parent.parent / "examples" / "drill"
CABINET_A = {"c39", "c41", "c43", "c45"}
ZONES = {"c39": "Europe/London", "c41": "Europe/London", "c43": "Europe/Madrid",
         "c45": "Europe/London"}  # fmt: skip
DOWN = datetime.fromisoformat("2026-11-23T21:30:00+00:00")


@pytest.fixture(scope="module")
def evening(tmp_path_factory: pytest.TempPathFactory) -> DrillResult:
    out = tmp_path_factory.mktemp("evening")
    return run_drill(load_scenario(EXAMPLE / "evening-outage.yaml"), Settings(), out)


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
    # the morning customers must not be handed an estimate that has already passed.
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
    morning = [
        m
        for m in updates_to(result.messages, "c41")
        if "2026-11-24T07" <= m["at"] < "2026-11-24T09"
    ]
    assert [m["event"] for m in morning] == ["etr_missed"]
