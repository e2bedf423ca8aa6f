"""Customers' reports as evidence (issue 22, item 3): OUT texts from several lines behind
one unmonitored cabinet open an incident there within a cycle; one report stays its
line's case; lines monitoring sees up open nothing area-wide."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import create_engine, select
from typer.testing import CliRunner

from forewarn import pipeline
from forewarn.cli import app
from forewarn.config import Settings
from forewarn.context import Context
from forewarn.drill import DrillResult, load_scenario, run_drill
from forewarn.incidents.replies import Voice, handle_reply
from forewarn.store import customers, incident_updates, incidents
from tests.conftest import use_settings
from tests.town import Town

EXAMPLE = Path(__file__).parent.parent / "examples" / "drill"
ELSEWHERE = {f"c{n}" for n in (47, 49, 51, 53, 2, 4, 6, 8)}


def drill(tmp_path: Path, events: list[dict[str, Any]]) -> tuple[DrillResult, list[Any]]:
    """The examples' street for two hours with these events; what was said, and the
    incidents at the end."""
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump({
        "start": "2026-11-23T10:00:00+00:00", "until": "+2h",
        "network": {"topology": str(EXAMPLE / "topology.csv"),
                    "customers": str(EXAMPLE / "customers.csv")},
        "settings": {"phone_region": "GB", "time_zone": "Europe/London"},
        "events": events,
    }))  # fmt: skip
    result = run_drill(load_scenario(path), Settings(), tmp_path / "out")
    engine = create_engine(f"sqlite:///{tmp_path / 'out' / 'drill.db'}")
    with engine.connect() as conn:
        rows = list(conn.execute(select(incidents).order_by(incidents.c.id)))
    engine.dispose()
    return result, rows


def out(customer: str, at: str) -> dict[str, Any]:
    return {"at": at, "reply": {"customer": customer, "body": "OUT"}}


@pytest.fixture(scope="module")
def reported(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[DrillResult, list[Any], list[int]]:
    out_dir = tmp_path_factory.mktemp("reports")
    result = run_drill(load_scenario(EXAMPLE / "reports.yaml"), Settings(), out_dir)
    engine = create_engine(f"sqlite:///{out_dir / 'drill.db'}")
    with engine.connect() as conn:
        rows = list(conn.execute(select(incidents).order_by(incidents.c.id)))
        merged = conn.execute(
            select(incident_updates.c.incident_id).where(incident_updates.c.event == "merged")
        ).scalars()
        merged_ids = sorted(merged)
    engine.dispose()
    return result, rows, merged_ids


def test_three_reports_behind_a_cabinet_open_its_incident_within_a_cycle(
    reported: tuple[DrillResult, list[Any], list[int]],
) -> None:
    result, rows, merged = reported
    [area] = [r for r in rows if r.scope == "area"]
    assert (area.source, area.root_element) == ("reports", "cabA")
    assert area.opened_at.isoformat().startswith("2026-11-23T10:10")  # one tick after the third
    cases = [r for r in rows if r.scope == "premise"]
    assert len(cases) == 3 and all(c.status == "resolved" for c in cases)
    assert merged == [c.id for c in cases]  # folded into the cabinet's incident
    told = {m["customer_id"] for m in result.messages if m["direction"] == "out"}
    assert told == {"c39", "c41", "c43", "c45"}  # no. 45 said nothing and hears of it too
    assert not told & ELSEWHERE
    assert result.summary["promised_updates_broken"] == 0


def test_the_first_reports_are_thanked_as_reports_and_the_area_is_told_in_area_words(
    reported: tuple[DrillResult, list[Any], list[int]],
) -> None:
    result, _, _ = reported
    answers = [m["body"] for m in result.messages if m.get("event") == "answer"]
    assert len(answers) == 3 and all("thank you for telling us" in a for a in answers)
    assert not [a for a in answers if "reopened" in a]  # nothing was restored to reopen


def test_one_report_stays_the_case_of_its_line(tmp_path: Path) -> None:
    result, rows = drill(tmp_path, [out("c39", "+0m")])
    assert [(r.scope, r.source, r.status) for r in rows] == [("premise", "reply", "investigating")]
    assert {m["customer_id"] for m in result.messages if m["direction"] == "out"} == {"c39"}


def test_lines_monitoring_sees_up_open_nothing_area_wide(tmp_path: Path) -> None:
    # Monitored lines: a blip down and back up, so monitoring has just seen them up.
    lines = ["cpe39", "cpe41", "cpe43"]
    blip = [{"at": "+0m", "feed": {"elements": lines, "state": "down"}},
            {"at": "+1m", "feed": {"elements": lines, "state": "up"}}]  # fmt: skip
    reports = [out("c39", "+2m"), out("c41", "+3m"), out("c43", "+4m")]
    result, rows = drill(tmp_path, blip + reports)
    assert [r.scope for r in rows] == ["premise"] * 3  # each a case of its own line
    assert "c45" not in {m["customer_id"] for m in result.messages}


def test_monitoring_confirming_a_reported_fault_adds_no_second_conversation(
    tmp_path: Path,
) -> None:
    reports = [out("c39", "+0m"), out("c41", "+1m"), out("c43", "+2m")]
    seen = {"at": "+20m", "feed": {"under": "cabA", "state": "down"}}
    result, rows = drill(tmp_path, [*reports, seen])
    areas = [(r.scope, r.source, r.status) for r in rows if r.scope == "area"]
    assert areas == [("area", "reports", "investigating")]  # no detected one beside it
    openings = [
        m for m in result.messages if m.get("event") == "opened" and m["customer_id"] == "c45"
    ]
    assert len(openings) == 1  # no. 45's email: one opening, not two


def test_ops_see_what_reports_found_in_status_and_incident_show(
    town: Town, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_settings(monkeypatch, settings)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("FOREWARN_TIME_ZONE", "Europe/London")
    ctx = Context.build(settings.model_copy(update={"time_zone": "Europe/London"}))
    now = datetime.now(UTC).replace(microsecond=0)
    voice = Voice("Mill Road Fibre", "", ctx.policy)
    with town.engine.begin() as conn:
        for minute, customer in enumerate(("c39", "c41", "c43")):
            phone = conn.execute(
                select(customers.c.phone).where(customers.c.customer_id == customer)
            ).scalar_one()
            handle_reply(
                conn, "sms", phone, "OUT", f"SM{customer}", now + timedelta(minutes=minute), voice
            )
    report = pipeline.cycle(ctx, now + timedelta(minutes=3))
    ctx.close()
    [opened] = report.changes.opened
    shown = CliRunner().invoke(app, ["incident", "show", str(opened)])
    assert shown.exit_code == 0, shown.output
    assert "(reports, investigating)" in shown.output
    assert "found by reports: 3 OUT replies from its customers, from " in shown.output
    status = CliRunner().invoke(app, ["status"])
    assert "customers' OUT reports in the last 24 h: 3" in status.output
