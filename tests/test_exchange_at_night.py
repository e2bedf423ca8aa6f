"""An exchange fails at 02:00 with 1% of its customers at risk (issue 23's drill): every
at-risk customer is told in the first minute of sending, whatever the hour; everyone
else is held to the morning as the night policy says; those who do not confirm are
called after the window, called once more, then listed for a visit."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import yaml
from sqlalchemy import create_engine, select

from forewarn.config import Settings
from forewarn.drill import load_scenario, run_drill
from forewarn.network.csvfile import CUSTOMER_COLUMNS, TOPOLOGY_COLUMNS
from forewarn.store import safety_checks

CABINETS, HOMES = 20, 40  # 800 homes behind one exchange


def exchange(directory: Path) -> set[str]:
    """The exchange's topology and customers (every 100th at risk); the at-risk ids."""
    topology = [["ex9", "", "exchange", "Hills Road exchange", "52.19", "0.13"]]
    people, at_risk = [], set()
    for c in range(CABINETS):
        topology.append([f"cab{c}", "ex9", "cabinet", f"Cabinet {c}", "", ""])
        for h in range(HOMES):
            n = c * HOMES + h
            topology.append([f"cpe{n}", f"cab{c}", "cpe", f"CPE {n}", "", ""])
            needs = "telecare" if n % 100 == 0 else ""
            at_risk |= {f"c{n}"} if needs else set()
            people.append([
                f"c{n}", f"p{n}", f"cpe{n}", f"{n + 1} Hills Road", f"CB2 {c % 9}AA",
                f"{52.19 + n * 1e-5:.5f}", "0.13", f"07911 12{n:04d}", "", "", "sms",
                "en", "Europe/London", "0", needs,
            ])  # fmt: skip
    for name, columns, rows in (
        ("topology.csv", TOPOLOGY_COLUMNS, topology),
        ("customers.csv", (*CUSTOMER_COLUMNS, "needs"), people),
    ):
        with (directory / name).open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            writer.writerows(rows)
    return at_risk


def test_an_exchange_down_at_two_tells_the_at_risk_at_once_and_escalates_the_unconfirmed(
    tmp_path: Path,
) -> None:
    at_risk = exchange(tmp_path)
    scenario = {
        "name": "an exchange at night",
        "start": "2026-11-24T02:00:00+00:00",
        "until": "+6h",
        "tick": "1m",
        "network": {"topology": "topology.csv", "customers": "customers.csv"},
        "settings": {"operator_name": "Hills Road Fibre", "phone_region": "GB",
                     "time_zone": "Europe/London", "public_url": "https://alerts.example"},
        "events": [{"at": "+0m", "feed": {"under": "ex9", "state": "down"}}],
    }  # fmt: skip
    path = tmp_path / "exchange.yaml"
    path.write_text(yaml.safe_dump(scenario))
    result = run_drill(load_scenario(path), Settings(_env_file=None), tmp_path / "out")  # type: ignore[call-arg]
    out = [m for m in result.messages if m["direction"] == "out" and m.get("customer_id")]
    first: dict[str, str] = {}
    for m in out:
        first.setdefault(m["customer_id"], m["at"][11:16])
    assert len(at_risk) == 8 and len(first) == CABINETS * HOMES
    # Every at-risk customer in the first minute of sending; nobody else before 07:00.
    start = min(first.values())
    assert {first[c] for c in at_risk} == {start} and start < "02:05"
    assert min(at for c, at in first.items() if c not in at_risk) >= "07:00"
    calls = Counter(m["at"][11:16] for m in out if m["channel"] == "voice")
    assert set(m["customer_id"] for m in out if m["channel"] == "voice") == at_risk
    assert list(calls.values()) == [8, 8] and min(calls) > start  # a call, then the retry
    engine = create_engine(f"sqlite:///{tmp_path / 'out' / 'drill.db'}")
    with engine.connect() as conn:
        checks = conn.execute(select(safety_checks)).all()
    engine.dispose()
    assert {c.customer_id for c in checks} == at_risk
    assert {(c.state, c.calls) for c in checks} == {("visit", 2)}
    assert result.summary["messages_in_sleep_hours"] == 0
