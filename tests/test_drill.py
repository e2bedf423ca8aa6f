"""Drills: the long outage of examples/drill, a blip, a short outage, planned work, an
at-risk heads-up, and scenario files that are wrong."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from forewarn.config import Settings
from forewarn.drill import DrillError, DrillResult, load_scenario, run_drill

EXAMPLE = Path(__file__).parent.parent / "examples" / "drill"
CABINET_A = {"c39", "c41", "c43", "c45"}
ELSEWHERE = {f"c{n}" for n in (47, 49, 51, 53, 2, 4, 6, 8)}


def drill(tmp_path: Path, scenario: dict[str, Any]) -> DrillResult:
    """Write a scenario beside the example town and run it."""
    path = tmp_path / "scenario.yaml"
    network = {
        "topology": str(EXAMPLE / "topology.csv"),
        "customers": str(EXAMPLE / "customers.csv"),
    }
    settings = {"phone_region": "GB", "time_zone": "Europe/London", **scenario.pop("settings", {})}
    path.write_text(yaml.safe_dump({"network": network, "settings": settings, **scenario}))
    return run_drill(load_scenario(path), Settings(), tmp_path / "out")


def to(result: DrillResult, customer: str) -> list[dict[str, Any]]:
    return [
        m for m in result.messages if m.get("customer_id") == customer and m["direction"] == "out"
    ]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def long_outage(tmp_path_factory: pytest.TempPathFactory) -> DrillResult:
    out = tmp_path_factory.mktemp("drill")
    return run_drill(load_scenario(EXAMPLE / "long-outage.yaml"), Settings(), out)


def test_every_promise_is_kept_and_no_estimate_passes_unwarned(long_outage: DrillResult) -> None:
    s = long_outage.summary
    assert s["promised_updates_broken"] == 0, s["broken_promises"]
    assert s["promised_updates_kept"] >= 20
    assert s["estimates_missed_without_warning"] == 0
    # Checked here from the messages, not only from the summary: each estimate a
    # customer was given is followed by another message before it passes.
    for customer in CABINET_A:
        own = sorted({(m["at"], m["event"], m["etr"]) for m in to(long_outage, customer)})
        for n, (sent, event, etr) in enumerate(own):
            if etr and event not in ("restored", "summary"):
                assert n + 1 < len(own) and own[n + 1][0] <= etr, (customer, sent, etr)


def test_nothing_in_sleep_hours_and_restored_is_told_in_the_morning(
    long_outage: DrillResult,
) -> None:
    london = ZoneInfo("Europe/London")
    out = [m for m in long_outage.messages if m.get("customer_id") and m["direction"] == "out"]
    asleep = [m for m in out if not 7 <= at(m["at"]).astimezone(london).hour < 23]
    assert asleep == []
    # No. 45's line came back at 02:00 on Thursday: told at 07:00, with the time it came back.
    (back,) = [m for m in to(long_outage, "c45") if m["event"] == "restored"]
    assert at(back["at"]).astimezone(london).hour == 7
    assert "restored at 02:10 GMT" in back["body"]
    assert long_outage.summary["messages_in_sleep_hours"] == 0
    assert long_outage.summary["routine_messages_in_quiet_hours"] == 0


def test_the_days_stay_bounded_and_the_neighbours_hear_nothing(long_outage: DrillResult) -> None:
    london = ZoneInfo("Europe/London")
    per_day = Counter(
        (m["customer_id"], m["channel"], at(m["at"]).astimezone(london).date())
        for m in long_outage.messages
        if m.get("customer_id") and m["direction"] == "out"
        and m["event"] not in ("opened", "restored", "still_down", "etr_missed", "answer")
    )  # fmt: skip
    assert max(per_day.values()) <= Settings().routine_per_day
    assert long_outage.summary["days_over_routine_ceiling"] == 0
    messaged = {m["customer_id"] for m in long_outage.messages if m.get("customer_id")}
    assert messaged == CABINET_A and not messaged & ELSEWHERE


def test_restored_means_restored_for_you(long_outage: DrillResult) -> None:
    # No. 39 came back on day 2 and hears "restored" then, while the rest hear more.
    c39 = to(long_outage, "c39")
    restored_39 = [m for m in c39 if m["event"] == "restored"]
    assert len(restored_39) == 2  # text and email, the same moment
    later_for_41 = [m for m in to(long_outage, "c41") if m["at"] > restored_39[0]["at"]]
    assert any(m["event"] == "etr_missed" for m in later_for_41)
    assert not [m for m in c39 if m["at"] > restored_39[0]["at"] and m["event"] != "summary"]
    # No. 45 (email first) hears the fault is fixed but their line is not, then restored.
    c45 = [(m["event"], m["incident_id"]) for m in to(long_outage, "c45")]
    still = c45.index(("still_down", 2))
    assert ("restored", 2) in c45[still:]
    assert not [
        m for m in to(long_outage, "c45") if m["event"] == "restored" and m["incident_id"] == 1
    ]


def test_an_out_reply_reopens_the_case_and_is_answered(long_outage: DrillResult) -> None:
    c43 = to(long_outage, "c43")
    (answer,) = [m for m in c43 if m["event"] == "answer"]
    assert "reopened your case" in answer["body"] and answer["next_update_at"]
    case = answer["incident_id"]
    after = [m for m in c43 if m["incident_id"] == case and m["event"] != "answer"]
    assert [m["event"] for m in after][-1] == "restored"
    assert after[0]["at"] <= answer["next_update_at"]  # the promise in the answer is kept


def test_the_cause_reaches_everyone_afterwards_and_figures_match(long_outage: DrillResult) -> None:
    summaries = [m for m in long_outage.messages if m.get("event") == "summary"]
    assert {m["customer_id"] for m in summaries if m["customer_id"]} == CABINET_A
    email = [m for m in summaries if m["channel"] == "email"]
    assert email and all("Roadworks cut the cable" in m["body"] for m in email)
    s = long_outage.summary
    outgoing = [m for m in long_outage.messages if m.get("customer_id") and m["direction"] == "out"]
    assert s["messages"] == len(outgoing)
    assert s["customers_messaged"] == len({m["customer_id"] for m in outgoing})
    each = Counter(m["customer_id"] for m in outgoing)
    assert s["most_messages_to_one_customer"] == max(each.values())
    assert s["replies"] == 1
    # The offer after 24 hours reaches customers of this long outage while it lasts, and
    # no one is told "while you wait" once it is over.
    assert any("mobile hotspot" in m["body"] for m in outgoing)
    assert not [m for m in summaries if "mobile hotspot" in m["body"]]


def test_the_page_over_time_follows_the_incident(long_outage: DrillResult) -> None:
    states = long_outage.page
    assert states[0]["status"]["indicator"] == "none"
    etrs = [s["incidents"][0]["x_etr"] for s in states if s["incidents"]]
    assert "2026-11-23T14:00:00Z" in etrs and "2026-11-25T02:15:00Z" in etrs
    assert states[-1]["incidents"] == [] and states[-1]["status"]["indicator"] == "none"


def test_a_blip_never_reaches_anyone(tmp_path: Path) -> None:
    result = drill(tmp_path, {
        "start": "2026-11-23T10:00:00+00:00", "until": "+1h",
        "events": [{"at": "+0m", "feed": {"under": "cabA", "state": "down"}},
                   {"at": "+1m", "feed": {"under": "cabA", "state": "up"}}],
    })  # fmt: skip
    assert result.messages == []
    assert all(s["incidents"] == [] for s in result.page)


def test_feed_lines_go_through_the_feeds_parser_and_a_garbled_one_is_quarantined(
    tmp_path: Path,
) -> None:
    lines = "\n".join(
        json.dumps({"element": cpe, "state": "down", "at": "2026-11-23T10:00:00Z"})
        for cpe in ("cpe39", "cpe41", "cpe43", "cpe45")
    )
    seen: list[tuple[int, int, list[str]]] = []
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump({
        "start": "2026-11-23T10:00:00+00:00", "until": "+1h",
        "network": {"topology": str(EXAMPLE / "topology.csv"),
                    "customers": str(EXAMPLE / "customers.csv")},
        "settings": {"phone_region": "GB"},
        "events": [{"at": "+0m", "say": "four lines and a bad one", "feed_line": lines},
                   {"at": "+1m", "feed_line": '{"element": "cpe47", "state": "sideways"}'}],
    }))  # fmt: skip
    result = run_drill(
        load_scenario(path), Settings(), tmp_path / "out",
        lambda m: seen.append((m.cycle.sensed.signals, m.cycle.sensed.rejects, m.said)),
    )  # fmt: skip
    assert seen[0] == (4, 0, ["four lines and a bad one"])
    assert seen[1] == (0, 1, [])
    told = {m["customer_id"] for m in result.messages if m["customer_id"]}
    assert told == CABINET_A  # the lines, read as the feed reads them, opened the incident


def test_an_outage_shorter_than_the_first_promise_gets_two_messages(tmp_path: Path) -> None:
    result = drill(tmp_path, {
        "start": "2026-11-23T10:00:00+00:00", "until": "+12h",
        "events": [{"at": "+0m", "feed": {"under": "cabA", "state": "down"}},
                   {"at": "+2h", "feed": {"under": "cabA", "state": "up"}}],
    })  # fmt: skip
    for customer in CABINET_A:
        events = [m["event"] for m in to(result, customer)]
        channels = {m["channel"] for m in to(result, customer)}
        assert events == ["opened"] * len(channels) + ["restored"] * len(channels), customer
    assert result.summary["promised_updates_broken"] == 0


def test_planned_work_notices_reach_only_the_work_area_on_time(tmp_path: Path) -> None:
    start = datetime.fromisoformat("2026-11-23T09:00:00+00:00")
    result = drill(tmp_path, {
        "start": start.isoformat(), "until": "+5d",
        "events": [{"at": "+0m", "ops": {"action": "maintenance", "element": "cabB",
                    "title": "Cabinet B battery swap", "start": "+100h", "end": "+103h"}}],
    })  # fmt: skip
    messaged = {m["customer_id"] for m in result.messages if m.get("customer_id")}
    assert messaged == {"c47", "c49", "c51", "c53"}
    sms = [m for m in to(result, "c47") if m["channel"] == "sms"]
    work = start + timedelta(hours=100)
    assert [(m["event"], at(m["at"])) for m in sms] == [
        ("maintenance_notice", work - timedelta(hours=72)),
        ("maintenance_notice", work - timedelta(hours=24)),
        ("maintenance_start", work),
        ("maintenance_end", work + timedelta(hours=3)),
    ]
    assert "47 Mill Road" in sms[0]["body"] and "to" in sms[0]["body"]
    shown = [s["scheduled_maintenances"] for s in result.page if s["scheduled_maintenances"]]
    assert shown == [] or all(m["status"] for group in shown for m in group)


def test_a_fault_inside_planned_work_in_progress_is_expected_not_announced(
    tmp_path: Path,
) -> None:
    result = drill(tmp_path, {
        "start": "2026-11-23T10:00:00+00:00", "until": "+6h",
        "events": [{"at": "+0m", "ops": {"action": "maintenance", "element": "cabB",
                    "title": "Cabinet B battery swap", "start": "+1h", "end": "+3h"}},
                   {"at": "+1h10m", "feed": {"under": "cabB", "state": "down"}},
                   {"at": "+2h40m", "feed": {"under": "cabB", "state": "up"}},
                   # Cabinet A, outside the work, still counts.
                   {"at": "+1h20m", "feed": {"under": "cabA", "state": "down"}}],
    })  # fmt: skip
    events = {(m["customer_id"], m["event"]) for m in result.messages if m.get("customer_id")}
    assert {e for c, e in events if c == "c47"} == {
        "maintenance_notice",
        "maintenance_start",
        "maintenance_end",
    }
    assert ("c39", "opened") in events


def test_monitoring_confirming_a_fault_ops_opened_adds_no_second_conversation(
    tmp_path: Path,
) -> None:
    result = drill(tmp_path, {
        "start": "2026-11-23T10:00:00+00:00", "until": "+3h",
        "events": [{"at": "+0m", "ops": {"action": "open", "element": "cabA",
                                         "title": "Fibre cut reported by the council"}},
                   {"at": "+10m", "feed": {"under": "cabA", "state": "down"}}],
    })  # fmt: skip
    opened = [m for m in to(result, "c39") if m["event"] == "opened"]
    assert [m["incident_id"] for m in opened] == [1, 1]  # text and email, incident 1 only


def test_a_degraded_cabinet_opens_an_at_risk_incident_and_ops_send_a_heads_up(
    tmp_path: Path,
) -> None:
    result = drill(tmp_path, {
        "start": "2026-11-23T10:00:00+00:00", "until": "+3h",
        "events": [{"at": "+0m", "feed": {"element": "cabB", "state": "degraded"}},
                   {"at": "+20m", "ops": {"action": "heads-up", "incident": 1,
                                          "note": "Cabinet B is on battery."}},
                   {"at": "+1h", "feed": {"element": "cabB", "state": "up"}}],
    })  # fmt: skip
    heads = [m for m in result.messages if m.get("customer_id")]
    assert {m["customer_id"] for m in heads} == {"c47", "c49", "c51", "c53"}
    assert {m["event"] for m in heads} == {"at_risk", "cleared"}
    warned = [m for m in heads if m["event"] == "at_risk"]
    assert min(at(m["at"]) for m in warned) == at("2026-11-23T10:20:00Z")
    # When the cabinet recovers, those warned hear that the risk is over.
    clear = [m for m in heads if m["event"] == "cleared" and m["channel"] == "sms"]
    assert len(clear) == 4 and all("risk to service" in m["body"] for m in clear)
    assert all(s["incidents"] == [] for s in result.page)  # at risk is not an outage


def test_a_heads_up_before_the_window_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DrillError, match="heads-up"):
        drill(tmp_path, {
            "start": "2026-11-23T10:00:00+00:00", "until": "+1h",
            "events": [{"at": "+0m", "feed": {"element": "cabB", "state": "degraded"}},
                       {"at": "+5m", "ops": {"action": "heads-up", "incident": 1}}],
        })  # fmt: skip


def test_scenario_files_that_are_wrong_say_why(tmp_path: Path) -> None:
    cases = {
        "not: [valid": "not YAML",
        "- a list": "mapping",
        "start: 2026-11-23T10:00:00": "UTC offset",
        "start: 2026-11-23T10:00:00+00:00\nevents: [{at: +1h, feed: {element: x, state: off}}]":
            "events.0.feed",
        "start: 2026-11-23T10:00:00+00:00\nsurprise: 1": "surprise",
        "start: 2026-11-23T10:00:00+00:00\nevents: [{at: +1h, ops: {action: explode}}]":
            "events.0.ops.action",
    }  # fmt: skip
    for n, (text, expected) in enumerate(cases.items()):
        path = tmp_path / f"bad{n}.yaml"
        path.write_text(text)
        with pytest.raises(DrillError, match=expected):
            load_scenario(path)
    huge = tmp_path / "huge.yaml"
    huge.write_bytes(b"#" * 50_000_001)
    with pytest.raises(DrillError, match="larger than"):
        load_scenario(huge)


def test_a_drill_refuses_bad_times_and_unknown_elements(tmp_path: Path) -> None:
    with pytest.raises(DrillError, match="duration"):
        drill(tmp_path, {"start": "2026-11-23T10:00:00+00:00", "until": "+soon"})
    unknown = {"at": "+1m", "feed": {"under": "cabZ", "state": "down"}}
    with pytest.raises(DrillError, match="unknown element"):
        drill(tmp_path, {"start": "2026-11-23T10:00:00+00:00", "until": "+1h",
                         "events": [unknown]})  # fmt: skip
    with pytest.raises(DrillError, match="ops update"):
        drill(tmp_path, {"start": "2026-11-23T10:00:00+00:00", "until": "+1h",
                         "events": [{"at": "+1m", "ops": {"action": "update", "incident": 9,
                                                          "note": "hello"}}]})  # fmt: skip


def test_the_drill_writes_its_files(long_outage: DrillResult, tmp_path: Path) -> None:
    result = drill(tmp_path, {
        "start": "2026-11-23T10:00:00+00:00", "until": "+3h",
        "events": [{"at": "+0m", "feed": {"under": "cabA", "state": "down"}}],
    })  # fmt: skip
    out = tmp_path / "out"
    lines = [json.loads(line) for line in (out / "messages.jsonl").read_text().splitlines()]
    assert lines == result.messages and len(lines) >= 4
    assert json.loads((out / "summary.json").read_text())["messages"] == result.summary["messages"]
    assert len((out / "page.jsonl").read_text().splitlines()) == len(result.page)


# --- the drill writes only into folders that are its own -------------------------
SHORT = {
    "start": "2026-11-23T10:00:00+00:00", "until": "+1h",
    "events": [{"at": "+0m", "feed": {"under": "cabA", "state": "down"}}],
}  # fmt: skip


def test_a_drill_refuses_a_folder_holding_someone_elses_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "thesis.txt").write_text("four years of work")
    with pytest.raises(DrillError, match="did not write"):
        drill(tmp_path, json.loads(json.dumps(SHORT)))
    assert [p.name for p in out.iterdir()] == ["thesis.txt"]
    assert (out / "thesis.txt").read_text() == "four years of work"


def test_a_second_drill_replaces_its_own_previous_output(tmp_path: Path) -> None:
    first = drill(tmp_path, json.loads(json.dumps(SHORT)))
    (tmp_path / "out" / "stale.txt").write_text("left from before")  # inside the drill's own
    second = drill(tmp_path, json.loads(json.dumps(SHORT)))
    assert second.messages == first.messages
    assert not (tmp_path / "out" / "stale.txt").exists()


def test_the_drill_command_refuses_a_foreign_out_and_deletes_nothing(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from forewarn.cli import app

    here = tmp_path / "work"
    here.mkdir()
    (here / "notes.md").write_text("mine")
    result = CliRunner().invoke(
        app, ["drill", str(EXAMPLE / "long-outage.yaml"), "--out", str(here)]
    )
    assert result.exit_code == 2, result.output
    assert "did not write" in result.output
    assert "nothing was deleted" in " ".join(result.output.split())
    assert [p.name for p in here.iterdir()] == ["notes.md"]
