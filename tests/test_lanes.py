"""Priority lanes (issue 23, item 5): the provider's rate shared by at-risk customers,
restorations and late estimates, and everything else; no lane starves, none waits behind
a slower one's backlog, and no capacity is left unused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from forewarn.incidents import lanes
from forewarn.incidents.ledger.queue import queue_deliveries
from forewarn.store import (
    deliveries,
    incident_premises,
    incident_updates,
    insert_ignoring_conflicts,
    make_engine,
)
from testkit.ledger_data import fill_ledger

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def ledger(tmp_path: Path, routine: int, urgent: int, at_risk: int) -> Engine:
    """Queued rows: `routine` openings, then `urgent` restorations, `at_risk` at-risk
    openings (as queued: routine first, so an id order alone would send them last)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'lanes.db'}")
    fill_ledger(engine, routine + urgent + at_risk, ("sms",), NOW)
    with engine.begin() as conn:
        conn.execute(deliveries.delete())
        rows = [
            {"incident_id": 1, "update_seq": 1, "customer_id": f"c{i}", "channel": "sms",
             "status": "queued", "attempts": 0, "created_at": NOW, "next_attempt_at": NOW,
             "rank": lanes.ROUTINE if i < routine else
                     lanes.URGENT if i < routine + urgent else lanes.AT_RISK}
            for i in range(routine + urgent + at_risk)
        ]  # fmt: skip
        insert_ignoring_conflicts(conn, deliveries, rows)
    return engine


def chosen(engine: Engine, limit: int) -> list[str]:
    with engine.connect() as conn:
        ids = lanes.choose(conn, deliveries.c.status == "queued", limit)
        rank = dict(conn.execute(select(deliveries.c.id, deliveries.c.rank)).all())
    return [lanes.lane_of(rank[i]) for i in ids]


def test_each_lane_has_its_share_of_a_batch_in_lane_order(tmp_path: Path) -> None:
    picked = chosen(ledger(tmp_path, routine=100, urgent=100, at_risk=100), 10)
    assert picked == ["at risk"] * 5 + ["restored and late"] * 3 + ["openings and updates"] * 2


def test_what_a_lane_leaves_goes_to_the_others_and_nothing_is_left_unused(
    tmp_path: Path,
) -> None:
    picked = chosen(ledger(tmp_path, routine=100, urgent=2, at_risk=1), 10)
    assert (
        picked
        == ["at risk", "restored and late", "restored and late"] + ["openings and updates"] * 7
    )
    (tmp_path / "x").mkdir()
    only = chosen(ledger(tmp_path / "x", routine=0, urgent=50, at_risk=0), 10)
    assert only == ["restored and late"] * 10


def test_a_small_batch_still_serves_the_first_lane_first(tmp_path: Path) -> None:
    assert chosen(ledger(tmp_path, routine=5, urgent=5, at_risk=5), 1) == ["at risk"]


def test_restorations_and_missed_estimates_are_queued_in_the_urgent_lane(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'q.db'}")
    fill_ledger(engine, 3, ("sms",), NOW)
    with engine.begin() as conn:
        conn.execute(deliveries.delete())
        for seq, event in ((2, "restored"), (3, "etr_missed"), (4, "etr_changed")):
            conn.execute(incident_updates.insert().values(
                incident_id=1, seq=seq, event=event, status="identified", body="x",
                created_at=NOW + timedelta(minutes=seq), notify=True, deliveries_queued=False,
            ))  # fmt: skip
        conn.execute(incident_updates.update().values(deliveries_queued=False))
        # p0 is back (by update 2), p1 and p2 still down.
        conn.execute(incident_premises.insert(), [
            {"incident_id": 1, "premise_id": "p0", "state": "restored", "added_seq": 1,
             "changed_seq": 2},
            {"incident_id": 1, "premise_id": "p1", "state": "affected", "added_seq": 1,
             "changed_seq": None},
            {"incident_id": 1, "premise_id": "p2", "state": "affected", "added_seq": 1,
             "changed_seq": None},
        ])  # fmt: skip
    assert lanes.rank_of(0, "restored", False) == lanes.URGENT
    assert lanes.rank_of(1, "opened", True) == lanes.AT_RISK + 1
    assert lanes.lane_of(lanes.rank_of(0, "etr_changed", False)) == "openings and updates"
    with engine.begin() as conn:
        queue_deliveries(conn, NOW + timedelta(minutes=5))
    with engine.connect() as conn:
        rows = conn.execute(
            select(incident_updates.c.event, deliveries.c.rank)
            .where(deliveries.c.customer_id != "")
            .join(
                incident_updates,
                (incident_updates.c.incident_id == deliveries.c.incident_id)
                & (incident_updates.c.seq == deliveries.c.update_seq),
            )
        ).all()
    lane = {event: lanes.lane_of(rank) for event, rank in rows}
    assert lane["restored"] == lane["etr_missed"] == "restored and late"
    assert lane["opened"] == lane["etr_changed"] == "openings and updates"


def test_a_long_fan_out_is_on_the_page_with_how_many_are_told_so_far(tmp_path: Path) -> None:
    from forewarn.status_page.site import _show_telling

    engine = make_engine(f"sqlite:///{tmp_path / 'page.db'}")
    fill_ledger(engine, 2000, ("sms", "email"), NOW)  # 2,000 customers, 4,000 rows
    with engine.begin() as conn:
        sent = deliveries.c.customer_id.in_([f"c{i}" for i in range(300)])
        conn.execute(deliveries.update().where(sent).values(status="sent"))
    shown: list[dict[str, Any]] = [{"id": "1"}]
    with engine.connect() as conn:
        _show_telling(conn, shown, 1.0, 10)  # a long code: 1,700 to go is 28 minutes
        assert shown[0]["x_telling"] == {"customers": "2,000", "told": "300"}
        fast: list[dict[str, Any]] = [{"id": "1"}]
        _show_telling(conn, fast, 100.0, 10)  # 17 s at a short code: not worth saying
        assert "x_telling" not in fast[0]
        quiet: list[dict[str, Any]] = [{"id": "1"}]
        _show_telling(conn, quiet, None, 10)  # nothing paced (the outbox)
        assert "x_telling" not in quiet[0]


def test_the_page_says_how_many_are_being_told_in_the_readers_language() -> None:
    from forewarn.status_page.site import _environment, strings

    incident: dict[str, Any] = {
        "id": "1", "name": "Fault", "status": "investigating", "started_at": NOW.isoformat(),
        "resolved_at": None, "x_premises_affected": "2,000", "x_etr": None,
        "x_next_update_at": None, "incident_updates": [],
        "x_telling": {"customers": "48,000", "told": "12,000"},
    }  # fmt: skip
    template = _environment().get_template("site/_incident.html.j2")
    for locale, words in (
        ("en", "We are telling 48,000 customers about this; 12,000 told so far."),
        ("es", "Estamos avisando a 48,000 clientes; 12,000 avisados hasta ahora."),
    ):
        page = template.render(incident=incident, t=strings()[locale], locale=locale, level=2,
                               link=False, detailed=False, home="../")  # fmt: skip
        assert words in page
    without = {k: v for k, v in incident.items() if k != "x_telling"}
    quiet = template.render(incident=without, t=strings()["en"], locale="en", level=2,
                            link=False, detailed=False, home="../")  # fmt: skip
    assert "We are telling" not in quiet
