"""Poison on PostgreSQL, whose text columns refuse a NUL character that SQLite keeps: a
feed line holding a raw NUL byte, a webhook holding one, and a form with one (issue 19)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from forewarn.config import Settings
from forewarn.context import Context
from forewarn.feeds.inbox import store_payload
from forewarn.store import quarantine
from tests.conftest import NOW, fresh_postgres_database, run_cycle
from tests.town import CABINETS, Town, report_cabinet

pytestmark = pytest.mark.integration


@pytest.fixture
def db_url(postgres_server: str) -> str:
    """A fresh database on the throwaway PostgreSQL server."""
    return fresh_postgres_database(postgres_server)


def test_raw_nul_bytes_are_quarantined_and_the_next_fault_is_told(
    town: Town, settings: Settings
) -> None:
    assert settings.jsonl_feed is not None
    Path(settings.jsonl_feed).write_bytes(b'{"element": "cpe\x0047", "state": "down"}\n')
    with town.engine.begin() as conn:
        store_payload(conn, "alertmanager", b'{"alerts": [{"labels": {"\x00": 1}}]}\x00', NOW)
    ctx = Context.build(settings)
    try:
        assert run_cycle(ctx, NOW).rejects == 2
        with town.engine.connect() as conn:
            kept = list(conn.execute(select(quarantine.c.raw)).scalars())
        assert len(kept) == 2 and all("\\x00" in raw and "\x00" not in raw for raw in kept)
        report_cabinet(settings.jsonl_feed, "cabA", "down", NOW + timedelta(minutes=1))
        report = run_cycle(ctx, NOW + timedelta(minutes=4))
        assert [f.root for f in report.detection.faults] == ["cabA"]
    finally:
        ctx.close()
    told = {
        line.split('"customer_id": "')[1].split('"')[0]
        for path in settings.outbox.glob("*.jsonl")
        for line in path.read_text().splitlines()
        if '"customer_id": "' in line
    }
    assert told == {f"c{n}" for n in CABINETS["cabA"]}
