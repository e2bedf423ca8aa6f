"""Ops speak through forewarn: `forewarn incident ...`, `forewarn maintenance add` and
`forewarn customer` against a real store, with messages to the outbox and the page."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from forewarn.cli import app
from forewarn.incidents.cadence import Cadence
from forewarn.incidents.ops import _meaningful
from forewarn.incidents.updates import Policy
from forewarn.network.csvfile import CUSTOMER_COLUMNS, TOPOLOGY_COLUMNS
from forewarn.quiet import AWAKE, Night, QuietHours
from forewarn.store import etr_history, make_engine
from testkit.servers import FakeNominatim, nominatim_server
from tests.conftest import NOW
from tests.town import customer_rows, house_position, topology_rows, write_csv


@pytest.fixture
def ops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    """A store with the street imported, and the environment an operator would set."""
    for name, value in {
        "DB_URL": f"sqlite:///{tmp_path / 'ops.db'}", "SITE_DIR": str(tmp_path / "site"),
        "OUTBOX": str(tmp_path / "outbox"), "JOURNAL_DIR": str(tmp_path / "journal"),
        "OPERATOR_NAME": "Mill Road Fibre", "PHONE_REGION": "GB", "QUIET_HOURS": "",
        "SLEEP_HOURS": "",
    }.items():  # fmt: skip
        monkeypatch.setenv(f"FOREWARN_{name}", value)
    monkeypatch.setenv("COLUMNS", "250")
    runner = CliRunner()
    topology = write_csv(tmp_path / "t.csv", TOPOLOGY_COLUMNS, topology_rows())
    people = write_csv(tmp_path / "c.csv", CUSTOMER_COLUMNS, customer_rows())
    result = runner.invoke(app, ["import-network", str(topology), str(people), "--region", "GB"])
    assert result.exit_code == 0, result.output
    yield runner


def run(runner: CliRunner, *args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def outbox(tmp_path: Path) -> list[dict[str, Any]]:
    found = []
    for path in sorted((tmp_path / "outbox").glob("*.jsonl")):
        found += [json.loads(line) for line in path.read_text().splitlines()]
    return found


def told(tmp_path: Path, incident: int = 1) -> set[str]:
    return {
        m["customer_id"]
        for m in outbox(tmp_path)
        if m["incident_id"] == incident and m.get("customer_id")
    }


def test_ops_open_an_incident_on_an_element_and_it_reaches_customers_and_page(
    ops: CliRunner, tmp_path: Path
) -> None:
    out = run(ops, "incident", "open", "--element", "cabA", "--title", "Fibre cut on Mill Road")
    assert "incident 1 opened: 4 premises" in out and "sent 7" in out  # 3 by text and email
    assert told(tmp_path) == {"c39", "c41", "c43", "c45"}
    sms = [m for m in outbox(tmp_path) if m["channel"] == "sms"]
    assert all("No fix time yet" in m["body"] and "Next update" in m["body"] for m in sms)
    # Four premises are below the privacy floor: the page is rebuilt but does not show it.
    assert (tmp_path / "site" / "index.html").exists()
    assert not (tmp_path / "site" / "incidents" / "1.html").exists()
    listed = run(ops, "incident", "list")
    assert "Fibre cut on Mill Road" in listed and "ops" in listed


def test_ops_open_by_area_and_by_radius_reach_only_those_inside(
    ops: CliRunner, tmp_path: Path
) -> None:
    # The even side of the street (cabinet C), as a GeoJSON polygon in a file.
    south = [[0.1190, 52.19995], [0.1300, 52.19995], [0.1300, 52.20005], [0.1190, 52.20005]]
    area = tmp_path / "area.geojson"
    area.write_text(json.dumps({"type": "Polygon", "coordinates": [[*south, south[0]]]}))
    run(ops, "incident", "open", "--area", str(area), "--title", "Water in the duct")
    assert told(tmp_path, 1) == {"c2", "c4", "c6", "c8"}
    # The same area given inline, longer than a file name may be: the JSON, not a path.
    inline = json.dumps({"type": "Polygon", "coordinates": [[*south, south[0]]] * 4})
    assert len(inline) > 255
    run(ops, "incident", "open", "--area", inline, "--title", "Water in the duct, inline")
    assert told(tmp_path, 2) == {"c2", "c4", "c6", "c8"}
    # Around no. 45 with a 15 m radius: its neighbours 43 and 47, whatever their cabinet.
    with nominatim_server() as url:
        FakeNominatim.answer = house_position(45)
        env = {"FOREWARN_GEOCODER_URL": url, "FOREWARN_GEOCODER_RATE": "100"}
        result = ops.invoke(app, ["incident", "open", "--near", "45 Mill Road, Cambridge",
                                  "--radius", "15m", "--title", "Digger"], env=env)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert told(tmp_path, 3) == {"c43", "c45", "c47"}
    assert FakeNominatim.requests == ["45 Mill Road, Cambridge"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--title", "x"], "exactly one of"),
        (["--title", "x", "--element", "cabA", "--area", "{}"], "exactly one of"),
        (["--title", "x", "--element", "cabZ"], "unknown element"),
        (["--title", "x", "--area", "not json"], "not JSON"),
        (["--title", "x", "--area", '{"type": "Point", "coordinates": [0, 52]}'], "Polygon"),
        (["--title", "x", "--area", '{"type": "Polygon", "coordinates": "x"}'], "rings"),
        (
            [
                "--title",
                "x",
                "--area",
                json.dumps({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}),
            ],
            "no premises",
        ),
        (["--title", "x" * 201, "--element", "cabA"], "longer than 200"),
        (["--title", "   ", "--element", "cabA"], "empty"),
        (["--title", "x", "--near", "Mill Road"], "--radius"),
    ],
)
def test_ops_mistakes_get_a_clear_error_and_change_nothing(
    ops: CliRunner, tmp_path: Path, args: list[str], expected: str
) -> None:
    out = run(ops, "incident", "open", *args, code=2)
    assert expected in out
    assert outbox(tmp_path) == [] and "No incidents." in run(ops, "incident", "list", "--all")


def test_estimates_are_data_small_wobbles_are_kept_not_announced(
    ops: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOREWARN_PRIVACY_FLOOR", "2")  # so the page shows this incident
    run(ops, "incident", "open", "--element", "cabA", "--title", "Fibre cut")
    out = run(ops, "incident", "update", "1", "--etr", "+3h", "--status", "identified",
              "--note", "Splicing the cable.")  # fmt: skip
    assert "announced: estimate" in out and "announced: status identified" in out
    out = run(ops, "incident", "update", "1", "--etr", "+3h10m")
    assert "not announced" in out
    out = run(ops, "incident", "update", "1", "--etr", "+5h")
    assert "announced: estimate" in out
    updates = [
        m for m in outbox(tmp_path) if m.get("customer_id") == "c39" and m["channel"] == "sms"
    ]
    assert [m["update_seq"] for m in updates] == [1, 2, 3]  # the wobble sent nothing
    assert "Fix by" in updates[-1]["body"]
    engine = make_engine(f"sqlite:///{tmp_path / 'ops.db'}")
    with engine.connect() as conn:
        history = conn.execute(select(etr_history.c.announced).order_by(etr_history.c.id)).all()
    assert [a for (a,) in history] == [True, True, False, True]
    # The page's estimate history is what customers were told: the wobble is not on it.
    page = json.loads((tmp_path / "site/api/v2/incidents/unresolved.json").read_text())
    shown = page["incidents"][0]["x_etr_history"]
    assert [e["etr"] is None for e in shown] == [True, False, False]
    shown = run(ops, "incident", "show", "1")
    assert "Splicing the cable." in shown and "no" in shown and "identified" in shown
    for bad, expected in [("2020-01-01T00:00", "future"), ("tomorrow", "not a time")]:
        assert expected in run(ops, "incident", "update", "1", "--etr", bad, code=2)
    assert "status must be" in run(ops, "incident", "update", "1", "--status", "fixed", code=2)
    assert "no incident 9" in run(ops, "incident", "show", "9", code=2)


def test_resolve_then_cause_sends_a_summary_to_everyone_it_reached(
    ops: CliRunner, tmp_path: Path
) -> None:
    run(ops, "incident", "open", "--element", "cabA", "--title", "Fibre cut")
    run(ops, "incident", "resolve", "1")
    restored = [m for m in outbox(tmp_path) if m["update_seq"] == 2 and m.get("customer_id")]
    assert {m["customer_id"] for m in restored} == {"c39", "c41", "c43", "c45"}
    assert "already resolved" in run(ops, "incident", "resolve", "1", code=2)
    assert "only --cause" in run(ops, "incident", "update", "1", "--etr", "+1h", code=2)
    run(ops, "incident", "update", "1", "--cause", "A digger cut the cable; ducts are now marked.")
    summary = [m for m in outbox(tmp_path) if m["update_seq"] == 3 and m.get("customer_id")]
    assert {m["customer_id"] for m in summary} == {"c39", "c41", "c43", "c45"}
    email = [m for m in summary if m["channel"] == "email"]
    assert email and "ducts are now marked" in email[0]["body"]
    assert "Fibre cut" in run(ops, "incident", "list", "--all")
    assert "No incidents." in run(ops, "incident", "list")


def test_planned_work_is_scheduled_on_the_work_area_only(ops: CliRunner, tmp_path: Path) -> None:
    out = run(ops, "maintenance", "add", "--element", "cabB", "--title", "Battery swap",
              "--start", "+4d", "--end", "+4d3h")  # fmt: skip
    assert "planned work 1: 4 premises" in out and "3 days, 0:00:00 ahead" in out
    assert outbox(tmp_path) == []  # notices go 72 h and 24 h ahead, not now
    assert "must start in the future" in run(
        ops, "maintenance", "add", "--element", "cabB", "--title", "x", "--start", "+2h",
        "--end", "+1h", code=2,
    )  # fmt: skip


def test_contact_history_shows_every_message_and_reply_newest_first(
    ops: CliRunner, tmp_path: Path
) -> None:
    run(ops, "incident", "open", "--element", "cabA", "--title", "Fibre cut")
    run(ops, "incident", "resolve", "1")
    out = run(ops, "customer", "c41")
    assert "41 Mill Road" in out and "Fibre cut" in out
    lines = [line for line in out.splitlines() if "│ out" in line or "│ in " in line]
    assert len(lines) == 4  # opened and restored, by text and by email
    assert "is back" in out or "working again" in out
    assert run(ops, "customer", "07911 123041") == out  # the same customer by phone
    several = run(ops, "customer", "Mill Road")
    assert "customers match" in several and "c53" in several
    assert "no customer matches" in run(ops, "customer", "nobody@example.org", code=2)


def test_cadence_lengthens_and_keeps_out_of_the_night() -> None:
    cadence = Cadence.parse("0h=2h,6h=6h,24h=24h", AWAKE, "Europe/London", per_day=12)
    start = NOW  # 14:00 UTC, also 14:00 in London in November
    assert cadence.next_update(start, start) == start + timedelta(hours=2)
    assert cadence.next_update(start, start + timedelta(hours=7)) == start + timedelta(hours=13)
    assert cadence.next_update(start, start + timedelta(days=2)) == start + timedelta(days=3)
    quiet = Cadence.parse("0h=6h", Night(QuietHours.parse("21:00-06:00"), None), "Europe/London")
    # 14:00 + 6 h would be 20:00 (fine); 18:00 + 6 h is midnight: moved to 06:00.
    assert quiet.next_update(start, start) == start + timedelta(hours=6)
    night = quiet.next_update(start, start + timedelta(hours=4))
    assert night == start + timedelta(hours=16)  # 06:00 the next morning
    for bad in ["", "6h", "0h=1m", "0h=6h,x=1h", "0h="]:
        with pytest.raises(ValueError):
            Cadence.parse(bad, AWAKE, "UTC")


def test_an_estimate_change_is_meaningful_only_past_the_threshold() -> None:
    policy = Policy(etr_threshold=timedelta(minutes=30))
    assert _meaningful(None, NOW, policy) and _meaningful(NOW, None, policy)
    assert not _meaningful(None, None, policy)
    assert not _meaningful(NOW, NOW + timedelta(minutes=29), policy)
    assert _meaningful(NOW, NOW - timedelta(minutes=30), policy)


def test_a_drill_on_the_operators_own_network_sends_nothing(ops: CliRunner, tmp_path: Path) -> None:
    scenario = tmp_path / "cut.json"
    scenario.write_text(json.dumps({
        "name": "cabinet B cut", "start": "2026-11-23T10:00:00+00:00", "until": "+8h",
        "settings": {"phone_region": "GB"},
        "events": [{"at": "+0m", "feed": {"under": "cabB", "state": "down"}},
                   {"at": "+3h", "feed": {"under": "cabB", "state": "up"}}],
    }))  # fmt: skip
    out = run(ops, "drill", str(scenario), "--out", str(tmp_path / "rehearsal"))
    assert "promised updates broken" in out and "cabinet B cut" in out
    lines = (tmp_path / "rehearsal" / "messages.jsonl").read_text().splitlines()
    heard = {json.loads(line)["customer_id"] for line in lines}
    assert heard == {"c47", "c49", "c51", "c53", None}  # None: the public post
    assert outbox(tmp_path) == []  # the operator's outbox (their real channels) untouched
    assert "No incidents." in run(ops, "incident", "list", "--all")  # nor their store
    bad = tmp_path / "bad.yaml"
    bad.write_text("start: yesterday")
    assert "start" in run(ops, "drill", str(bad), code=2)
