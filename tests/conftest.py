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

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from prefect.logging import disable_run_logger
from sqlalchemy.engine import Engine

from forewarn.config import Settings
from forewarn.flows.context import Context
from forewarn.flows.detection_cycle import (
    CycleReport,
    detect_faults,
    dispatch_messages,
    publish_site,
    update_incidents,
)
from forewarn.store import make_engine
from tests.town import Town

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


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Run an ASGI app with uvicorn on a loopback port; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A temporary Prefect server for the tests that run flows through the real engine."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


def use_settings(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    """Put settings in the environment, where flows read them from."""
    for name, value in settings.model_dump().items():
        env = f"FOREWARN_{name.upper()}"
        if value is None:
            monkeypatch.delenv(env, raising=False)
        elif hasattr(value, "get_secret_value"):
            monkeypatch.setenv(env, value.get_secret_value())
        else:
            monkeypatch.setenv(env, str(value))
