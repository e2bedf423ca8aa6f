"""The pipeline over the store: the neighbours, one incident per cause, nothing queued twice."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prefect.logging import disable_run_logger
from sqlalchemy import func, select, update

from forewarn.config import Settings
from forewarn.context import Context
from forewarn.pipeline import detect_faults, queue_rest, update_incidents
from forewarn.store import customers, deliveries, incident_premises, incident_updates, incidents
from tests.conftest import BOTH_STORES, NOW, either_store, run_cycle
from tests.town import CABINETS, Town, house_position


@pytest.fixture(params=BOTH_STORES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every pipeline test runs on SQLite and on a real PostgreSQL."""
    return either_store(request, tmp_path)


def feed(settings: Settings, *events: tuple[str, str, datetime]) -> None:
    assert settings.jsonl_feed is not None
    with Path(settings.jsonl_feed).open("a") as handle:
        for element, state, at in events:
            handle.write(
                json.dumps({"element": element, "state": state, "at": at.isoformat()}) + "\n"
            )


def outbox(settings: Settings, public: bool = False) -> list[dict[str, Any]]:
    """Messages to customers in the outbox (or, with `public`, the public posts)."""
    messages = [
        json.loads(line)
        for path in sorted(settings.outbox.glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    return [m for m in messages if ("customer_id" not in m) == public]


def cabinet_down(settings: Settings, cabinet: str, at: datetime) -> None:
    feed(settings, *[(f"cpe{n}", "down", at) for n in CABINETS[cabinet]])


def test_the_neighbour_behind_another_cabinet_hears_nothing(town: Town, settings: Settings) -> None:
    ctx = Context.build(settings)
    cabinet_down(settings, "cabA", NOW)
    run_cycle(ctx, NOW + timedelta(minutes=1))
    assert outbox(settings) == []  # still inside damping
    report = run_cycle(ctx, NOW + timedelta(minutes=3))
    assert [f.root for f in report.detection.faults] == ["cabA"]
    told = {m["customer_id"] for m in outbox(settings)}
    assert told == {f"c{n}" for n in CABINETS["cabA"]}
    assert "c47" not in told  # next door to no. 45, on cabinet B
    sms_45 = [m for m in outbox(settings) if m["customer_id"] == "c45"]
    assert [m["channel"] for m in sms_45] == ["email"]  # no. 45 asked for email only
    body = next(
        m["body"] for m in outbox(settings) if m["customer_id"] == "c43" and m["channel"] == "sms"
    )
    assert "43 Mill Road" in str(body) and "No fix time yet" in str(body)


def test_running_the_cycle_again_queues_nothing_twice(town: Town, settings: Settings) -> None:
    ctx = Context.build(settings)
    cabinet_down(settings, "cabA", NOW)
    run_cycle(ctx, NOW + timedelta(minutes=3))
    first = outbox(settings)
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(deliveries)).scalar_one()
    for minutes in (4, 5, 6):
        again = run_cycle(ctx, NOW + timedelta(minutes=minutes))
        assert again.queued == 0 and again.dispatch.sent == 0
    assert outbox(settings) == first
    with ctx.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(deliveries)).scalar_one() == rows
        assert conn.execute(select(func.count()).select_from(incidents)).scalar_one() == 1
    # 3 customers want sms+email, no. 45 email only, and one public post
    assert rows == 8
    assert [m["update_seq"] for m in outbox(settings, public=True)] == [1]


def test_a_fault_that_grows_stays_one_incident_and_tells_the_new_premises(
    town: Town, settings: Settings
) -> None:
    ctx = Context.build(settings)
    cabinet_down(settings, "cabA", NOW)
    run_cycle(ctx, NOW + timedelta(minutes=3))
    cabinet_down(settings, "cabB", NOW + timedelta(minutes=4))
    report = run_cycle(ctx, NOW + timedelta(minutes=7))
    assert [f.root for f in report.detection.faults] == ["pon1"]
    assert report.changes.expanded == [1] and report.changes.opened == []
    by_customer: dict[object, int] = {}
    for message in outbox(settings):
        if message["channel"] == "sms":
            by_customer[message["customer_id"]] = by_customer.get(message["customer_id"], 0) + 1
    assert by_customer == {f"c{n}": 1 for n in [39, 41, 43, 47, 49, 51, 53]}


def test_restored_goes_only_to_premises_whose_line_is_back(town: Town, settings: Settings) -> None:
    ctx = Context.build(settings)
    cabinet_down(settings, "cabA", NOW)
    run_cycle(ctx, NOW + timedelta(minutes=3))
    back = NOW + timedelta(hours=1)
    feed(settings, *[(f"cpe{n}", "up", back) for n in (39, 41, 43)])  # 45 stays down
    run_cycle(ctx, back + timedelta(minutes=1))
    report = run_cycle(ctx, back + timedelta(minutes=11))
    assert report.changes.resolved == [1]
    restored = [m for m in outbox(settings) if m["incident_id"] == 1 and m["update_seq"] == 2]
    assert {m["customer_id"] for m in restored} == {"c39", "c41", "c43"}
    # No. 45 hears that the fault is fixed but their own line still looks down.
    (told,) = [m for m in outbox(settings) if m["incident_id"] != 1]
    assert told["customer_id"] == "c45" and "still looks down" in told["body"]
    with ctx.engine.connect() as conn:
        state = conn.execute(
            select(incident_premises.c.state).where(
                incident_premises.c.premise_id == "p45", incident_premises.c.incident_id == 1
            )
        ).scalar_one()
        own_case = conn.execute(
            select(incidents.c.scope, incidents.c.status).where(incidents.c.root_element == "cpe45")
        ).one()
    assert state == "still_down"
    assert [f.root for f in report.detection.faults] == ["cpe45"]
    assert tuple(own_case) == ("premise", "investigating")  # now a case of its own
    # When that line comes back, no. 45 (and nobody else) hears "restored".
    feed(settings, ("cpe45", "up", back + timedelta(hours=1)))
    run_cycle(ctx, back + timedelta(hours=1, minutes=11))
    case = [m for m in outbox(settings) if m["incident_id"] == told["incident_id"]]
    assert [m["customer_id"] for m in case] == ["c45", "c45"]
    assert "working again" in case[-1]["body"]


def test_the_site_is_published_in_statuspage_shape(town: Town, settings: Settings) -> None:
    ctx = Context.build(settings)
    cabinet_down(settings, "cabA", NOW)
    run_cycle(ctx, NOW + timedelta(minutes=3))
    summary = json.loads((settings.site_dir / "api/v2/summary.json").read_text())
    assert set(summary) == {"page", "status", "components", "incidents", "scheduled_maintenances"}
    # 4 of the street's 12 premises: a third of the network is out, a "major" impact
    assert summary["status"] == {"indicator": "major", "description": "Partial System Outage"}
    (incident,) = summary["incidents"]
    assert incident["status"] == "investigating" and incident["impact"] == "major"
    assert incident["x_premises_affected"] is None  # 4 premises: below the privacy floor
    assert incident["components"][0]["status"] == "partial_outage"
    html = (settings.site_dir / "index.html").read_text()
    assert "Partial System Outage" in html
    # 4 premises are below the floor of 10: the place named is the street, with 12
    assert incident["name"] == "Outage: Mill Road"
    assert (settings.site_dir / "incidents/1.html").exists()
    for text in [html, json.dumps(summary)]:
        assert "45 Mill Road" not in text and "07911" not in text and "house45" not in text


def test_index_answers_topology_radius_and_polygon(town: Town) -> None:
    index = town.index
    under = {index.premise_ids[i] for i in index.premises_under("cabA")}
    assert under == {f"p{n}" for n in CABINETS["cabA"]}
    assert set(index.customers_of(index.premises_under("cabB"))) == {
        f"c{n}" for n in CABINETS["cabB"]
    }
    lat, lon = house_position(45)
    near = {index.premise_ids[i] for i in index.premises_within(lat, lon, 20)}
    assert near == {"p45", "p47", "p43"}  # 12-13 m either side along the street
    square = [(lon - 0.0001, lat - 0.0001), (lon + 0.0001, lat - 0.0001),
              (lon + 0.0001, lat + 0.0001), (lon - 0.0001, lat + 0.0001)]  # fmt: skip
    inside = index.premises_in_polygon(square)
    assert [index.premise_ids[i] for i in inside] == ["p45"]
    assert len(index.premises_in_polygon([(0, 0), (1, 0), (0, 1)])) == 0
    assert isinstance(index.premises_under("ex1"), np.ndarray)


def test_a_big_faults_first_customers_are_queued_first_by_priority(
    town: Town, settings: Settings
) -> None:
    ctx = Context.build(settings)
    with town.engine.begin() as conn:
        conn.execute(update(customers).where(customers.c.customer_id == "c45").values(priority=9))
    cabinet_down(settings, "cabA", NOW)
    later = NOW + timedelta(minutes=3)
    with disable_run_logger():
        detection = detect_faults(ctx, later).detection
        _, first = update_incidents(ctx, detection, later, head=2)
        with town.engine.connect() as conn:
            queued = {r.customer_id for r in conn.execute(select(deliveries.c.customer_id))}
            waiting = conn.execute(select(incident_updates.c.deliveries_queued)).scalar_one()
        rest = queue_rest(ctx, later)
        again = queue_rest(ctx, later)
    # The head: no. 45 (priority 9) and the next by id; the public post comes with it.
    assert queued == {"c45", "c39", ""} and first == 1 + 2 + 1  # 45 email; 39 text and email
    assert not waiting
    assert rest == 4 and again == 0  # 41 and 43, by text and email; then nothing left
    with town.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(deliveries)).scalar_one() == 8
        assert conn.execute(select(incident_updates.c.deliveries_queued)).scalar_one()
