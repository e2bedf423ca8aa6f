"""Numbered updates say what they do to the estimate and the promised next update: keep
it, clear it, or set it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from forewarn.incidents.record import add_update
from forewarn.incidents.updates import (
    CLEAR,
    KEEP,
    ON_CADENCE,
    Change,
    NewUpdate,
    OnCadence,
    Policy,
    Promise,
    Set,
    applied,
)
from forewarn.store import incident_updates, incidents
from tests.conftest import NOW

ETR = NOW + timedelta(hours=4)
PROMISE = NOW + timedelta(hours=1)
POLICY = Policy()


@pytest.fixture
def conn(engine: Engine) -> Iterator[Connection]:
    with engine.begin() as connection:
        yield connection


def _incident(conn: Connection) -> int:
    """An open incident with an estimate and a promised next update."""
    key = conn.execute(
        incidents.insert().values(
            title="Outage: Mill Lane", status="identified", scope="area", source="detected",
            root_element="cab-1", public=True, notify=True, etr=ETR,
            started_at=NOW - timedelta(hours=1), opened_at=NOW - timedelta(hours=1),
            updated_at=NOW - timedelta(hours=1), next_update_at=PROMISE,
        )
    ).inserted_primary_key  # fmt: skip
    assert key is not None
    return int(key[0])


def _after(
    conn: Connection,
    etr: Change[datetime] = KEEP,
    next_update: Promise = ON_CADENCE,
    notify: bool = True,
) -> tuple[Any, Any]:
    """The incident and its new update after adding one update to a fresh incident."""
    incident_id = _incident(conn)
    new = NewUpdate("note", "identified", "A note.", notify, etr=etr, next_update=next_update)
    seq = add_update(conn, incident_id, new, NOW, POLICY)
    row = conn.execute(select(incidents).where(incidents.c.id == incident_id)).one()
    record = conn.execute(
        select(incident_updates).where(
            incident_updates.c.incident_id == incident_id, incident_updates.c.seq == seq
        )
    ).one()
    return row, record


def test_applied_keeps_clears_or_sets() -> None:
    assert applied(KEEP, ETR) == ETR
    assert applied(CLEAR, ETR) is None
    assert applied(Set(PROMISE), ETR) == PROMISE
    assert applied(Set(PROMISE), None) == PROMISE
    assert applied(KEEP, None) is None


def test_an_update_that_keeps_the_estimate_leaves_it(conn: Connection) -> None:
    row, record = _after(conn, etr=KEEP)
    assert row.etr == ETR and record.etr == ETR


def test_an_update_that_clears_the_estimate_removes_it(conn: Connection) -> None:
    row, record = _after(conn, etr=CLEAR)
    assert row.etr is None and record.etr is None


def test_an_update_that_sets_the_estimate_replaces_it(conn: Connection) -> None:
    later = ETR + timedelta(hours=2)
    row, record = _after(conn, etr=Set(later))
    assert row.etr == later and record.etr == later


def test_an_unannounced_update_still_moves_the_estimate(conn: Connection) -> None:
    row, record = _after(conn, etr=CLEAR, notify=False)
    assert row.etr is None and record.etr is None


def test_an_update_that_keeps_the_promise_leaves_it(conn: Connection) -> None:
    row, record = _after(conn, next_update=KEEP)
    assert row.next_update_at == PROMISE and record.next_update_at == PROMISE
    assert row.updated_at == NOW


def test_an_update_that_clears_the_promise_removes_it(conn: Connection) -> None:
    row, record = _after(conn, next_update=CLEAR)
    assert row.next_update_at is None and record.next_update_at is None


def test_an_update_that_sets_the_promise_replaces_it(conn: Connection) -> None:
    promise = NOW + timedelta(minutes=20)
    row, record = _after(conn, next_update=Set(promise))
    assert row.next_update_at == promise and record.next_update_at == promise


def test_an_update_on_the_cadence_promises_the_next_one_on_it_or_by_the_estimate(
    conn: Connection,
) -> None:
    # The incident's estimate (4 h away) comes before the cadence's next turn (5 h): the
    # next word is promised by the estimate, never for after the fix.
    cadence = POLICY.cadence.next_update(NOW - timedelta(hours=1), NOW)
    assert cadence > ETR
    row, record = _after(conn, next_update=ON_CADENCE)
    assert row.next_update_at == ETR and record.next_update_at == ETR
    # With no estimate, the cadence alone.
    row, record = _after(conn, etr=CLEAR, next_update=OnCadence(NOW))
    assert record.next_update_at == POLICY.cadence.next_update(NOW, NOW)


def test_an_unannounced_update_promises_nothing_and_leaves_the_promise(
    conn: Connection,
) -> None:
    row, record = _after(conn, next_update=ON_CADENCE, notify=False)
    assert row.next_update_at == PROMISE and record.next_update_at is None
    row, record = _after(conn, next_update=CLEAR, notify=False)
    assert row.next_update_at == PROMISE and record.next_update_at is None
