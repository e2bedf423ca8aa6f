"""Schema upgrades on SQLite and PostgreSQL: a store made by forewarn 0.1 upgrades
without losing a row, and every way to the newest schema ends at the same schema."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import Engine

from forewarn import migrations
from forewarn.store import deliveries, make_engine, metadata
from tests.conftest import fresh_postgres_database


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return fresh_postgres_database(request.getfixturevalue("postgres_server"))


@pytest.fixture
def bare(db_url: str) -> Iterator[Engine]:
    """An engine on the empty database, with no schema made for it."""
    engine = create_engine(db_url)
    yield engine
    engine.dispose()


def differences(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))


def test_a_store_made_by_forewarn_0_1_upgrades_and_keeps_its_rows(
    bare: Engine, db_url: str
) -> None:
    with bare.begin() as conn:
        command.upgrade(migrations.config(conn), migrations.BASELINE)
        conn.execute(text("DELETE FROM alembic_version"))  # 0.1 stamped nothing
        conn.execute(
            text(
                "INSERT INTO deliveries (incident_id, update_seq, customer_id, channel, status,"
                " attempts, rank, created_at, next_attempt_at, sent_at)"
                " VALUES (7, 1, 'c39', 'sms', 'sent', 1, 0, :at, :at, :at)"
            ),
            {"at": datetime(2026, 11, 1, 9, 0)},
        )
    assert differences(bare) != []  # 0.1's schema is not today's
    engine = make_engine(db_url)
    with engine.connect() as conn:
        assert migrations.current(conn) == migrations.head()
        row = conn.execute(select(deliveries)).one()
    assert (row.incident_id, row.customer_id, row.status) == (7, "c39", "sent")
    assert row.sent_at == datetime(2026, 11, 1, 9, 0, tzinfo=UTC) and row.body is None
    assert differences(engine) == []
    engine.dispose()


def test_a_new_store_is_made_whole_and_stamped(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.connect() as conn:
        assert migrations.current(conn) == migrations.head()
    assert differences(engine) == []
    make_engine(db_url).dispose()  # opening it again changes nothing
    engine.dispose()


def test_the_migrations_alone_reach_the_same_schema_and_can_go_back(bare: Engine) -> None:
    with bare.begin() as conn:
        command.upgrade(migrations.config(conn), "head")
    assert differences(bare) == []
    with bare.begin() as conn:
        command.downgrade(migrations.config(conn), migrations.BASELINE)
        assert migrations.current(conn) == migrations.BASELINE
        command.upgrade(migrations.config(conn), "head")
    assert differences(bare) == []
