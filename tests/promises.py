"""What a drill's customers were promised and when they were told, judged from the
messages themselves (independently of the drill's own summary): the checks the long
outage and night drills share."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from forewarn.config import Settings
from forewarn.drill import DrillResult, load_scenario, run_drill

# Told to a customer who knew of the outage, these are news, not routine.
NEWS = {"opened", "expanded", "restored", "still_down", "etr_missed"}
# The last words of an incident repeat its last estimate, which no longer stands.
LAST = {"restored", "summary"}
# As a customer's first word of an incident, only these may wait: nobody is woken to
# hear that something they never knew of is over, or of planned work.
AFTERWORDS = LAST | {"cleared", "maintenance_notice", "maintenance_start", "maintenance_end"}
TICK = timedelta(minutes=1)
# The drills' scenarios, and the four homes behind cabinet A on the test street.
EXAMPLE = Path(__file__).parent.parent / "examples" / "drill"
CABINET_A = {"c39", "c41", "c43", "c45"}


def drill(tmp_path_factory: pytest.TempPathFactory, scenario: str) -> DrillResult:
    """Run one of examples/drill/ with the default settings."""
    out = tmp_path_factory.mktemp(scenario.split(".")[0])
    return run_drill(load_scenario(EXAMPLE / scenario), Settings(), out)


def at(text: str) -> datetime:
    """A drill time, read back."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def outgoing(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages to customers (not public posts, not what customers wrote)."""
    return [m for m in messages if m.get("customer_id") and m["direction"] == "out"]


def updates_to(messages: list[dict[str, Any]], customer: str) -> list[dict[str, Any]]:
    """What one customer heard, one entry per update (not per channel), in order."""
    own = [m for m in outgoing(messages) if m["customer_id"] == customer]
    once = {(m["incident_id"], m.get("update_seq"), m["event"]): m for m in own}
    return sorted(once.values(), key=lambda m: m["at"])


def broken_promises(messages: list[dict[str, Any]], until: datetime) -> list[str]:
    """Each "next update by" due before `until` that no later message kept."""
    broken = []
    for customer in {m["customer_id"] for m in outgoing(messages)}:
        heard = updates_to(messages, customer)
        for n, m in enumerate(heard):
            promise = m.get("next_update_at")
            if not promise or at(promise) > until:
                continue
            after = heard[n + 1]["at"] if n + 1 < len(heard) else None
            if after is None or at(after) > at(promise) + TICK:
                broken.append(f"{customer}: {m['event']} at {m['at']} promised {promise}")
    return broken


def estimates_passed_unannounced(messages: list[dict[str, Any]], until: datetime) -> list[str]:
    """Each estimate a customer was given that passed before they heard from us again
    (or that had passed already when they were given it)."""
    passed = []
    for customer in {m["customer_id"] for m in outgoing(messages)}:
        heard = updates_to(messages, customer)
        for n, m in enumerate(heard):
            if not m.get("etr") or m["event"] in LAST or at(m["etr"]) > until:
                continue
            after = heard[n + 1]["at"] if n + 1 < len(heard) else None
            if at(m["at"]) > at(m["etr"]) or after is None or at(after) > at(m["etr"]):
                passed.append(f"{customer}: {m['event']} at {m['at']} gave {m['etr']}")
    return passed


def _inside(moment: datetime, zone: str, start: time, end: time) -> bool:
    clock = moment.astimezone(ZoneInfo(zone)).time()
    return start <= clock or clock < end  # both windows cross midnight


def night_breaches(messages: list[dict[str, Any]], zones: dict[str, str]) -> list[str]:
    """Messages the default night policy should have held: any message but an answer in
    sleep hours (23:00-07:00), a routine one in quiet hours (21:00-08:00), each in the
    customer's own zone. A customer's first word of an outage is news."""
    found = []
    for customer, zone in zones.items():
        heard: set[int] = set()
        for m in sorted(
            (m for m in outgoing(messages) if m["customer_id"] == customer),
            key=lambda m: m["at"],
        ):
            moment, event = at(m["at"]), m["event"]
            first = m["incident_id"] not in heard
            if event != "answer":
                heard.add(m["incident_id"])
            if event == "answer":
                continue
            if _inside(moment, zone, time(23), time(7)):
                found.append(f"{customer}: {event} at {m['at']} in sleep hours")
            routine = event in AFTERWORDS if first else event not in NEWS
            if routine and _inside(moment, zone, time(21), time(8)):
                found.append(f"{customer}: {event} at {m['at']} in quiet hours")
    return found


def per_day(
    messages: list[dict[str, Any]], zones: dict[str, str], routine_only: bool = False
) -> Counter[tuple[str, str, date]]:
    """Messages per customer, channel and day in their zone (routine ones only, if asked)."""
    return Counter(
        (
            m["customer_id"],
            m["channel"],
            at(m["at"]).astimezone(ZoneInfo(zones[m["customer_id"]])).date(),
        )
        for m in outgoing(messages)
        if not routine_only or (m["event"] not in NEWS and m["event"] != "answer")
    )
