"""Shared fixtures: a throwaway store, a small town, and Prefect kept offline."""

from __future__ import annotations

import os
import tempfile

# Prefect reads these at import time: keep it offline, quiet and out of ~/.prefect.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="forewarn-prefect-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")

from collections.abc import Iterator  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from prefect.logging import disable_run_logger  # noqa: E402

from forewarn.config import Settings  # noqa: E402
from forewarn.flows.context import Context  # noqa: E402
from forewarn.flows.detection_cycle import (  # noqa: E402
    CycleReport,
    detect_faults,
    dispatch_messages,
    publish_site,
    update_incidents,
)
from forewarn.store import make_engine  # noqa: E402
from tests.town import Town  # noqa: E402

NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A fresh SQLite store (the same file the `settings` fixture names)."""
    eng = make_engine(f"sqlite:///{tmp_path / 'forewarn.db'}")
    yield eng
    eng.dispose()


@pytest.fixture
def town(tmp_path: Path, engine: Engine) -> Town:
    """The small street of the neighbours test, imported into the store."""
    return Town.street(tmp_path, engine, NOW)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings pointing at a temporary store, site and outbox."""
    return Settings(
        db_url=f"sqlite:///{tmp_path / 'forewarn.db'}",
        site_dir=tmp_path / "site",
        outbox=tmp_path / "outbox",
        jsonl_feed=str(tmp_path / "feed.jsonl"),
        operator_name="Mill Road Fibre",
        _env_file=None,  # type: ignore[call-arg]
    )


def run_cycle(ctx: Context, now: datetime) -> CycleReport:
    """The detection cycle's tasks, run without the Prefect engine (the flow test runs it whole)."""
    report = CycleReport(now=now)
    with disable_run_logger():
        report.detection = detect_faults.fn(ctx, now, report)
        report.changes, report.queued = update_incidents.fn(ctx, report.detection, now)
        while dispatch_messages.fn(ctx, now, report):
            pass
        report.site = publish_site.fn(ctx, now)
    return report
