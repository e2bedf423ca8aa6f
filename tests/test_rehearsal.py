"""A drill rehearses exactly what production runs: the same scenario, once through
`forewarn drill` and once through `forewarn run-once` at the same moments (the feed
written as monitoring would write it), gives every customer the same messages."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr
from typer.testing import CliRunner

from forewarn.cli import app
from forewarn.config import Settings
from forewarn.drill import load_scenario, run_drill
from forewarn.network.importer import import_network
from forewarn.store import make_engine
from tests.conftest import use_settings

# The rehearsal runs its flows against a Prefect test server.
pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).parent.parent / "examples" / "drill"
CABINET_A = ["cpe39", "cpe41", "cpe43", "cpe45"]
# Cabinet A down for nine hours on a Monday: the opening, the promised update at six
# hours, a partial restoration (no. 39 first), and "restored" for the rest.
SCENARIO: dict[str, Any] = {
    "name": "rehearsal",
    "start": "2026-11-23T08:00:00+00:00",
    "until": "+11h",
    "tick": "1m",
    "network": {
        "topology": str(EXAMPLE / "topology.csv"),
        "customers": str(EXAMPLE / "customers.csv"),
    },
    "settings": {"operator_name": "Mill Road Fibre", "phone_region": "GB",
                 "time_zone": "Europe/London"},
    "events": [
        {"at": "+0m", "feed": {"elements": CABINET_A, "state": "down"}},
        {"at": "+7h", "feed": {"element": "cpe39", "state": "up"}},
        {"at": "+9h", "feed": {"elements": CABINET_A[1:], "state": "up"}},
    ],
}  # fmt: skip


def said(message: dict[str, Any]) -> tuple[str, str, int, int, str]:
    """What a customer (or the public) was told, independent of when it was captured."""
    return (
        message.get("customer_id") or "",
        message["channel"],
        message["incident_id"],
        message["update_seq"],
        message["body"],
    )


@pytest.mark.usefixtures("prefect_harness")
def test_the_drill_and_run_once_cycles_tell_everyone_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario_file = tmp_path / "scenario.yaml"
    scenario_file.write_text(yaml.safe_dump(SCENARIO))
    rehearsal = run_drill(load_scenario(scenario_file), Settings(), tmp_path / "drill")
    rehearsed: dict[datetime, list[Any]] = {}
    for m in rehearsal.messages:
        if m["direction"] == "out":
            rehearsed.setdefault(datetime.fromisoformat(m["at"]), []).append(said(m))
    assert len(rehearsal.messages) > 10  # opening, follow-up, partial and full restoration

    # Production: the same town in a store of its own, the feed a file monitoring appends
    # to, and one `forewarn run-once` at each moment the drill's clock stopped.
    live = tmp_path / "live"
    live.mkdir()
    settings = Settings(
        db_url=SecretStr(f"sqlite:///{live / 'forewarn.db'}"), site_dir=live / "site",
        outbox=live / "outbox", journal_dir=live / "journal",
        jsonl_feed=str(live / "feed.jsonl"), operator_name="Mill Road Fibre",
        phone_region="GB", time_zone="Europe/London",
        _env_file=None,  # type: ignore[call-arg]
    )  # fmt: skip
    start = datetime.fromisoformat(SCENARIO["start"])
    import_network(
        make_engine(settings.db_url), EXAMPLE / "topology.csv", EXAMPLE / "customers.csv",
        None, start, "GB",
    )  # fmt: skip
    use_settings(monkeypatch, settings)
    feed = Path(settings.jsonl_feed or "")
    feed.touch()
    events = [(start + _offset(e["at"]), e["feed"]) for e in SCENARIO["events"]]
    runner = CliRunner()
    told: dict[datetime, list[Any]] = {}
    seen: dict[Path, int] = {}
    for moment in rehearsal.moments:
        with feed.open("a") as handle:
            while events and events[0][0] <= moment:
                at, step = events.pop(0)
                for element in step.get("elements") or [step["element"]]:
                    line = {"element": element, "state": step["state"], "at": at.isoformat()}
                    handle.write(json.dumps(line) + "\n")
        result = runner.invoke(app, ["run-once", "--at", moment.isoformat()])
        assert result.exit_code == 0, result.output
        if new := _new_lines(settings.outbox, seen):
            told[moment] = [said(m) for m in new]
    assert {at: sorted(m) for at, m in told.items()} == {
        at: sorted(m) for at, m in rehearsed.items()
    }


def _offset(text: str) -> Any:
    from forewarn.durations import parse_duration

    return parse_duration(text.removeprefix("+"))


def _new_lines(folder: Path, seen: dict[Path, int]) -> list[dict[str, Any]]:
    """The outbox's lines written since the last look (each channel's file grows)."""
    found = []
    for path in sorted(folder.glob("*.jsonl")):
        lines = path.read_text().splitlines()
        found += [json.loads(line) for line in lines[seen.get(path, 0) :]]
        seen[path] = len(lines)
    return found
