"""The command line as operators type it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from forewarn.cli import app
from forewarn.network.csvfile import CUSTOMER_COLUMNS, TOPOLOGY_COLUMNS
from forewarn.store import make_engine
from testkit.ledger_data import fill_ledger
from tests.town import customer_rows, topology_rows, write_csv


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("FOREWARN_DB_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("COLUMNS", "200")
    return CliRunner()


def test_import_network_reports_counts_and_bad_rows(runner: CliRunner, tmp_path: Path) -> None:
    topology = write_csv(tmp_path / "t.csv", TOPOLOGY_COLUMNS, topology_rows())
    rows = customer_rows()
    rows[0][7] = "12345"  # not a phone number
    customers = write_csv(tmp_path / "c.csv", CUSTOMER_COLUMNS, rows)
    result = runner.invoke(app, ["import-network", str(topology), str(customers), "--region", "GB"])
    assert result.exit_code == 0, result.output
    assert "elements 19, premises 12, customers 12" in result.output  # kept on email
    assert (
        "c.csv:2: customer 'c39' kept without its phone: phone '12345' is not a valid number"
        in (result.output)
    )


def test_import_network_refuses_a_file_without_its_columns(
    runner: CliRunner, tmp_path: Path
) -> None:
    bad = tmp_path / "t.csv"
    bad.write_text("id,name\n1,x\n")
    result = runner.invoke(app, ["import-network", str(bad), str(bad)])
    assert result.exit_code == 2
    assert "missing columns" in result.output


def test_status_shows_open_incidents_and_deliveries(runner: CliRunner, tmp_path: Path) -> None:
    make_engine(f"sqlite:///{tmp_path / 'cli.db'}").dispose()  # a store, empty
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    assert "No open incidents." in result.output and "deliveries: none" in result.output
    assert "oldest due message" not in result.output


def test_status_says_how_long_the_queue_has_waited(runner: CliRunner, tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    fill_ledger(engine, 5, ("sms",), datetime.now(UTC) - timedelta(minutes=30))
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    assert "Broadband fault" in result.output and "deliveries: queued 5" in result.output
    assert "oldest due message has waited 30." in result.output


def test_help_names_every_command(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--help"])
    for command in ("demo", "import-network", "run-once", "serve", "status"):
        assert command in result.output


def test_run_once_refuses_a_site_folder_holding_someone_elses_page(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "www"
    site.mkdir()
    (site / "index.html").write_text("<p>the team's own page</p>")
    monkeypatch.setenv("FOREWARN_SITE_DIR", str(site))
    result = runner.invoke(app, ["run-once"])
    assert result.exit_code == 2, result.output
    assert "did not write" in result.output
    assert [p.name for p in site.iterdir()] == ["index.html"]
