"""What an operator sees when something is wrong before a command even starts, and the
rough edges of the ops commands (issue 14, items 3, 5 and 6)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from forewarn.cli import app


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("FOREWARN_DB_URL", f"sqlite:///{tmp_path / 'startup.db'}")
    monkeypatch.setenv("FOREWARN_SITE_DIR", str(tmp_path / "site"))
    monkeypatch.setenv("FOREWARN_OUTBOX", str(tmp_path / "outbox"))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)  # no .env from the repository
    return CliRunner()


def lines(output: str) -> list[str]:
    """The non-empty lines a user sees."""
    return [line.rstrip() for line in output.splitlines() if line.strip()]


BAD_SETTINGS = [
    ("FOREWARN_DOWN_AFTER_S", "abc", "FOREWARN_DOWN_AFTER_S: not a number: 'abc'"),
    ("FOREWARN_MAX_BODY_BYTES", "1.5", "FOREWARN_MAX_BODY_BYTES: not a whole number: '1.5'"),
    ("FOREWARN_BURST_RATIO", "2", "FOREWARN_BURST_RATIO: must be at most 1.0: '2'"),
    ("FOREWARN_NOTIFY_SINGLE_PREMISE", "maybe",
     "FOREWARN_NOTIFY_SINGLE_PREMISE: not true or false: 'maybe'"),
    ("FOREWARN_QUIET_HOURS", "9pm-6am",
     "FOREWARN_QUIET_HOURS: not quiet hours: '9pm-6am' (write HH:MM-HH:MM, e.g. 21:00-06:00)"),
    ("FOREWARN_QUIET_HOURS", "25:00-06:00",
     "FOREWARN_QUIET_HOURS: not quiet hours: '25:00-06:00' (a time is out of range)"),
    ("FOREWARN_FOLLOW_UP_CADENCE", "6h",
     "FOREWARN_FOLLOW_UP_CADENCE: expected AGE=VALUE, got '6h'"),
    ("FOREWARN_BRAND_COLOUR", "red",
     "FOREWARN_BRAND_COLOUR: not a colour (write #RRGGBB, e.g. #1f5fa8): 'red'"),
    ("FOREWARN_OUTAGE_OFFERS", "24h", "FOREWARN_OUTAGE_OFFERS: expected AGE=VALUE, got '24h'"),
    ("FOREWARN_MAINTENANCE_NOTICES", "3x",
     "FOREWARN_MAINTENANCE_NOTICES: not a duration: '3x' (write e.g. 90m, 6h, 1h30m or 2d)"),
    ("FOREWARN_TIME_ZONE", "Mars/Olympus",
     "FOREWARN_TIME_ZONE: not a time zone: 'Mars/Olympus' (write e.g. Europe/London or UTC)"),
    ("FOREWARN_DB_URL", "postgres//nowhere",
     "FOREWARN_DB_URL: not a store URL (write e.g. sqlite:///forewarn.db or "
     "postgresql+psycopg://user:password@host/forewarn)"),
    ("FOREWARN_SMTP_URL", "http://u:pw@mail.example.net:25",
     "FOREWARN_SMTP_URL: the scheme must be smtp:// or smtps://, not http://"),
    ("FOREWARN_SMTP_URL", "smtp://",
     "FOREWARN_SMTP_URL: no host (write smtp://[user:pass@]host:port)"),
    ("FOREWARN_SMTP_URL", "smtp://u:pw@mail.example.net:twenty-five",
     "FOREWARN_SMTP_URL: not a port: 'twenty-five' (write smtp://[user:pass@]host:port)"),
]  # fmt: skip


@pytest.mark.parametrize(("variable", "value", "said"), BAD_SETTINGS)
def test_a_bad_setting_is_one_line_naming_its_variable(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, said: str
) -> None:
    monkeypatch.setenv(variable, value)
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 2
    assert lines(result.output) == [f"error: {said}"]
    assert "pw" not in result.output


@pytest.mark.parametrize(
    "command",
    [["run-once"], ["serve"], ["demo"], ["drill", "x.yaml"], ["incident", "list"],
     ["customer", "c1"], ["import-network", "t.csv", "c.csv"]],
)  # fmt: skip
def test_every_command_checks_the_settings_before_it_starts(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setenv("FOREWARN_DOWN_AFTER_S", "abc")
    result = runner.invoke(app, command)
    assert result.exit_code == 2
    assert lines(result.output) == ["error: FOREWARN_DOWN_AFTER_S: not a number: 'abc'"]


def test_every_bad_setting_gets_its_line(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOREWARN_DOWN_AFTER_S", "abc")
    monkeypatch.setenv("FOREWARN_PRIVACY_FLOOR", "0")
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 2
    assert lines(result.output) == [
        "error: FOREWARN_DOWN_AFTER_S: not a number: 'abc'",
        "error: FOREWARN_PRIVACY_FLOOR: must be at least 1: '0'",
    ]


@pytest.mark.parametrize(
    "command", [["status", "--help"], ["incident", "update", "--help"], ["--help"]]
)
def test_help_works_whatever_the_settings(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setenv("FOREWARN_DOWN_AFTER_S", "abc")
    result = runner.invoke(app, command)
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output and "error:" not in result.output


def test_an_unreachable_store_is_one_line_without_its_password(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOREWARN_DB_URL", "postgresql+psycopg://u:hunter2@127.0.0.1:1/x")
    result = runner.invoke(app, ["incident", "list"])
    assert result.exit_code == 2
    assert lines(result.output) == [
        "error: FOREWARN_DB_URL: cannot reach the store at "
        "postgresql+psycopg://u@127.0.0.1:1/x: connection refused"
    ]


def test_a_store_in_a_missing_folder_is_one_line(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'no' / 'such' / 'forewarn.db'}"
    monkeypatch.setenv("FOREWARN_DB_URL", url)
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 2
    assert lines(result.output) == [
        f"error: FOREWARN_DB_URL: cannot reach the store at {url}: "
        "cannot open the file (does its folder exist?)"
    ]


def test_an_unknown_kind_of_store_is_one_line(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOREWARN_DB_URL", "oracle+nodriver://u:pw@db/x")
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 2
    assert lines(result.output) == [
        "error: FOREWARN_DB_URL: cannot use the store oracle+nodriver://u@db/x: "
        "Can't load plugin: sqlalchemy.dialects:oracle.nodriver"
    ]
