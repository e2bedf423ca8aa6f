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
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from hypothesis import settings as hypothesis_settings
from pydantic import SecretStr
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from forewarn import pipeline
from forewarn.config import Settings
from forewarn.context import Context
from forewarn.pipeline import CycleReport
from forewarn.store import make_engine
from testkit.servers import POSTGRES_BINARIES, free_port, throwaway_postgres
from tests.town import Town, report_cabinet

NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)

# Property tests keep no example database in the checkout; a failure prints its example.
hypothesis_settings.register_profile("forewarn", database=None, print_blob=True)
hypothesis_settings.load_profile("forewarn")


# Fixtures that start a real server; a test using one is marked `integration`, and
# pytest_collection_modifyitems refuses one that is not. (A module whose store fixture
# asks for PostgreSQL through getfixturevalue marks that parameter itself.)
SERVER_FIXTURES = {"postgres_server", "prism", "prefect_harness"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Refuse unmarked tests that start a server, so `-m "not integration"` needs none."""
    unmarked = [
        item.nodeid
        for item in items
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ()))
        and item.get_closest_marker("integration") is None
    ]
    if unmarked:
        raise pytest.UsageError(
            "these tests start a server, so mark them @pytest.mark.integration: "
            + ", ".join(unmarked)
        )


# A module whose tests run on both stores: its own `db_url` fixture, with these params,
# returns `either_store(request, tmp_path)`.
BOTH_STORES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)]


def either_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store of the kind the parametrised fixture asks for: SQLite or PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'forewarn.db'}"
    return fresh_postgres_database(request.getfixturevalue("postgres_server"))


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """The store's URL: SQLite unless a test module asks for more backends."""
    return f"sqlite:///{tmp_path / 'forewarn.db'}"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A fresh store (the one the `settings` fixture names)."""
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster (Debian's binaries) on a loopback port."""
    if not (POSTGRES_BINARIES / "initdb").exists():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL 15 is not installed; .ci/apt-packages.txt lists it")
        pytest.skip("PostgreSQL 15 is not installed (apt-get install postgresql)")
    with throwaway_postgres() as url:
        yield url


def fresh_postgres_database(server: str) -> str:
    """A new, empty database on the throwaway server; returns its URL."""
    name = f"t{uuid.uuid4().hex[:12]}"
    admin = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return f"{server}/{name}"


@pytest.fixture
def town(tmp_path: Path, engine: Engine) -> Town:
    """The small street of the neighbours test, imported into the store."""
    return Town.street(tmp_path, engine, NOW)


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    """Settings pointing at a temporary store, site and outbox."""
    return Settings(
        db_url=SecretStr(db_url),
        site_dir=tmp_path / "site",
        outbox=tmp_path / "outbox",
        journal_dir=tmp_path / "journal",
        jsonl_feed=str(tmp_path / "feed.jsonl"),
        operator_name="Mill Road Fibre",
        _env_file=None,  # type: ignore[call-arg]
    )


def run_cycle(ctx: Context, now: datetime) -> CycleReport:
    """The detection cycle, run without the Prefect engine (the flow test runs it whole)."""
    return pipeline.cycle(ctx, now)


def outage_and_restoration(ctx: Context, settings: Settings) -> None:
    """Cabinet A goes down (opened at 14:03) and comes back (restored at 15:11)."""
    report_cabinet(settings.jsonl_feed, "cabA", "down", NOW)
    run_cycle(ctx, NOW + timedelta(minutes=3))
    report_cabinet(settings.jsonl_feed, "cabA", "up", NOW + timedelta(hours=1))
    run_cycle(ctx, NOW + timedelta(hours=1, minutes=1))
    run_cycle(ctx, NOW + timedelta(hours=1, minutes=11))


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


PRISM = Path(__file__).parent / "node/node_modules/.bin/prism"
# Fetched by scripts/test.sh from npm (pinned version and hash); never committed.
TWILIO_SPEC = Path(__file__).parent / "node/twilio-oai/twilio_api_v2010.json"


@pytest.fixture(scope="session")
def prism() -> Iterator[str]:
    """Prism serving Twilio's official OpenAPI description: a spec-checking local Twilio."""
    spec = Path(os.environ.get("FOREWARN_TWILIO_SPEC", TWILIO_SPEC))
    if not PRISM.exists() or not spec.exists():
        if os.environ.get("CI"):
            pytest.fail(f"Prism ({PRISM}) or Twilio's spec ({spec}) is missing")
        pytest.skip("needs Prism and Twilio's OpenAPI description: run ./scripts/test.sh once")
    port = free_port()
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [str(PRISM), "mock", "-h", "127.0.0.1", "-p", str(port), str(spec)],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"Prism did not start: {log.read()[-2000:]!r}") from None
                time.sleep(0.2)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(timeout=10)
