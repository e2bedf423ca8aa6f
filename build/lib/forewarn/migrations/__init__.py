"""Schema upgrades (Alembic): `make_engine` brings every store to the newest schema, so
an operator can upgrade forewarn and keep their data.

- An empty database gets the whole schema at once and is stamped with the newest revision.
- A store made before migrations existed (forewarn 0.1, created without a version) is
  stamped as the baseline `0001`, then upgraded.
- Otherwise the pending revisions in `versions/` run in order.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

BASELINE = "0001"


def config(conn: Connection) -> Config:
    """Alembic's configuration, pointed at this folder and at `conn`."""
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent))
    cfg.attributes["connection"] = conn
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


def upgrade(conn: Connection) -> None:
    """Bring the store behind `conn` to the newest schema, keeping its data."""
    from forewarn.store import metadata

    revision = current(conn)
    if revision == head():
        return
    if revision is None:
        if not inspect(conn).has_table("incidents"):
            metadata.create_all(conn)
            command.stamp(config(conn), "head")
            return
        command.stamp(config(conn), BASELINE)  # made by forewarn 0.1
    command.upgrade(config(conn), "head")
