"""Schema upgrades (Alembic): `make_engine` brings every store to the newest schema, so
an operator can upgrade forewarn and keep their data.

- An empty database gets the whole schema at once and is stamped with the newest revision.
- A store made before migrations existed (forewarn 0.1, created without a version) is
  stamped as the baseline `0001`, then upgraded.
- Otherwise the pending revisions in `versions/` run in order.

The runner is given the schema (`forewarn.store.metadata`) by its caller and imports
nothing of forewarn: the store calls the migrations, never the other way round.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, inspect
from sqlalchemy.engine import Connection

BASELINE = "0001"


def config(conn: Connection, metadata: MetaData | None = None) -> Config:
    """Alembic's configuration, pointed at this folder, at `conn` and at the schema
    `metadata` (needed only to compare the schema, not to run the revisions)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent))
    cfg.attributes["connection"] = conn
    cfg.attributes["metadata"] = metadata
    return cfg


def head() -> str:
    """The newest revision."""
    script = ScriptDirectory(str(Path(__file__).parent))
    revision = script.get_current_head()
    assert revision is not None
    return revision


def current(conn: Connection) -> str | None:
    """The store's revision (None: never stamped)."""
    return MigrationContext.configure(conn).get_current_revision()


def upgrade(conn: Connection, metadata: MetaData) -> None:
    """Bring the store behind `conn` to the newest schema `metadata`, keeping its data."""
    revision = current(conn)
    if revision == head():
        return
    if revision is None:
        if not inspect(conn).has_table("incidents"):
            metadata.create_all(conn)
            command.stamp(config(conn, metadata), "head")
            return
        command.stamp(config(conn, metadata), BASELINE)  # made by forewarn 0.1
    command.upgrade(config(conn, metadata), "head")
