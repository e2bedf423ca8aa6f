"""What an operator sees when something is wrong before a command even starts, and the
rough edges of the ops commands (issue 14, items 3, 5 and 6)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer
from sqlalchemy.engine import Engine
from typer.core import TyperGroup
from typer.testing import CliRunner

from forewarn.cli import app
from forewarn.network.csvfile import CUSTOMER_COLUMNS, TOPOLOGY_COLUMNS
from forewarn.network.geocode import GeocoderUnreachable, geocode_all, nominatim
from testkit.servers import FakeNominatim, free_port, nominatim_server
from tests.conftest import NOW
from tests.town import customer_rows, topology_rows, write_csv


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
    "command",
    [["status", "--help"], ["incident", "update", "--help"], ["--help"], ["incident"]],
)
def test_help_works_whatever_the_settings(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setenv("FOREWARN_DOWN_AFTER_S", "abc")
    result = runner.invoke(app, command)
    # A group typed alone shows its help and exits 2 (click's way: no command was run).
    assert result.exit_code == (2 if command == ["incident"] else 0), result.output
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
    result = runner.invoke(app, ["run-once"])  # a command that may start a store
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


# --- geocoding without a geocoder (item 5) -------------------------------------------


@pytest.fixture
def street(runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """The small street imported (with its coordinates), ops' environment set."""
    monkeypatch.setenv("FOREWARN_JOURNAL_DIR", str(tmp_path / "journal"))
    monkeypatch.setenv("FOREWARN_QUIET_HOURS", "")
    topology = write_csv(tmp_path / "t.csv", TOPOLOGY_COLUMNS, topology_rows())
    people = write_csv(tmp_path / "c.csv", CUSTOMER_COLUMNS, customer_rows())
    result = runner.invoke(app, ["import-network", str(topology), str(people), "--region", "GB"])
    assert result.exit_code == 0, result.output
    return runner


NO_GEOCODER = "http://127.0.0.1:9"  # nothing listens on port 9


def test_an_import_without_a_geocoder_says_one_line_per_row_and_no_traceback(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOREWARN_GEOCODER_URL", NO_GEOCODER)
    topology = write_csv(tmp_path / "t.csv", TOPOLOGY_COLUMNS, topology_rows())
    rows = customer_rows()
    for row, street_number in zip(rows[:3], ("1", "2", "3"), strict=True):
        row[3], row[5], row[6] = f"{street_number} Nowhere Lane", "", ""
    people = write_csv(tmp_path / "c.csv", CUSTOMER_COLUMNS, rows)
    started = time.monotonic()
    result = runner.invoke(app, ["import-network", str(topology), str(people), "--region", "GB"])
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started < 5  # no retries against a refused connection
    assert lines(result.output) == [
        "elements 19, premises 12, customers 12, geocoded 0",
        "3 rows skipped or kept with a warning:",
        "  c.csv:2: kept without coordinates: geocoder unavailable",
        "  c.csv:3: kept without coordinates: geocoder unavailable",
        "  c.csv:4: kept without coordinates: geocoder unavailable",
    ]


def test_near_without_a_geocoder_is_one_line_naming_the_address(street: CliRunner) -> None:
    result = street.invoke(
        app, ["incident", "open", "--near", "45 Mill Road", "--radius", "300m", "--title", "Dig"],
        env={"FOREWARN_GEOCODER_URL": NO_GEOCODER},
    )  # fmt: skip
    assert result.exit_code == 2
    assert lines(result.output)[-1:] == [
        "error: --near '45 Mill Road': cannot reach the geocoder at http://127.0.0.1:9: "
        "connection refused"
    ]
    assert "Traceback" not in result.output and "RateLimiter" not in result.output


@pytest.mark.parametrize("radius", ["3", "3 miles", "-2km", "km"])
def test_a_radius_without_its_unit_is_refused_before_any_geocoding(
    street: CliRunner, radius: str
) -> None:
    with nominatim_server() as url:
        result = street.invoke(
            app, ["incident", "open", "--near", "45 Mill Road", "--radius", radius,
                  "--title", "Dig"], env={"FOREWARN_GEOCODER_URL": url},
        )  # fmt: skip
    assert result.exit_code == 2
    assert lines(result.output) == [
        f"error: --radius: not a distance: {radius!r} (write 300m or 2km)"
    ]
    assert FakeNominatim.requests == []


# --- ops commands that surprised (item 6) --------------------------------------------


def test_an_update_without_any_change_is_refused(street: CliRunner) -> None:
    opened = street.invoke(app, ["incident", "open", "--element", "cabA", "--title", "Cut"])
    assert opened.exit_code == 0, opened.output
    result = street.invoke(app, ["incident", "update", "1"])
    assert result.exit_code == 2
    assert lines(result.output) == [
        "error: nothing to change: give --status, --cause, --etr or --note"
    ]


def test_titles_and_notes_print_literally_not_as_console_markup(street: CliRunner) -> None:
    title = "Duct [/] flooded [bold]near[/bold] [red]"
    opened = street.invoke(app, ["incident", "open", "--element", "cabA", "--title", title])
    assert opened.exit_code == 0, opened.output
    noted = street.invoke(app, ["incident", "update", "1", "--note", "Pumps [/] on site"])
    assert noted.exit_code == 0, noted.output
    for command in (["status"], ["incident", "list"], ["incident", "show", "1"]):
        result = street.invoke(app, command)
        assert result.exit_code == 0, (command, result.output)
        assert title in result.output, command
    shown = street.invoke(app, ["incident", "show", "1"]).output
    assert "Pumps [/] on site" in shown
    customer = street.invoke(app, ["customer", "c41"])
    assert customer.exit_code == 0, customer.output
    assert title in customer.output


def test_each_group_names_every_command_in_its_one_line_help() -> None:
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    for name in ("incident", "maintenance"):
        group = root.commands[name]
        assert isinstance(group, TyperGroup)
        described = (group.help or "").rstrip(".").split(": ", 1)[-1]
        if name == "incident":
            assert described.split(", ") == list(group.commands)


def every_command(runner: CliRunner) -> list[list[str]]:
    """Every command path, as typed: ['status'], ['incident', 'open'], ..."""
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    found: list[list[str]] = [[]]
    for name, command in root.commands.items():
        found.append([name])
        if isinstance(command, TyperGroup):
            found += [[name, sub] for sub in command.commands]
    return found


def test_help_shows_classic_placeholders_only(runner: CliRunner) -> None:
    commands = every_command(runner)
    assert ["incident", "heads-up"] in commands and ["import-network"] in commands
    for command in commands:
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0, (command, result.output)
        assert not re.search(r"<\w+>|\{\w+\}", result.output), (command, result.output)
    usage = lines(runner.invoke(app, ["import-network", "--help"]).output)[0]
    assert usage.endswith("import-network [OPTIONS] TOPOLOGY CUSTOMERS")


def test_the_outbox_warning_names_the_files_once(
    street: CliRunner, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOREWARN_OUTBOX", "outbox")  # the default's own name
    with caplog.at_level("WARNING", logger="forewarn"):
        result = street.invoke(app, ["run-once"])  # a command that sends
        looked = street.invoke(app, ["incident", "list"])  # one that only reads
    assert result.exit_code == 0, result.output
    assert looked.exit_code == 0, looked.output
    said = [r.getMessage() for r in caplog.records if "no credentials" in r.getMessage()]
    assert len(said) == 1 and "outbox outbox" not in said[0]
    assert said[0].endswith(f"are written to {Path('outbox') / '<channel>.jsonl'}")


def children(pid: int) -> set[int]:
    """The processes `pid` started (Linux's /proc)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found |= {int(n) for n in (task / "children").read_text().split()}
    return found


def cmdline(pid: int) -> str:
    """How process `pid` was started ('' once it has gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """Whether `pid` is a process that has not ended (a zombie has)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except OSError:
        return False


@pytest.mark.integration
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads Linux's /proc")
def test_serve_stopped_by_sigterm_stops_prefects_temporary_server(tmp_path: Path) -> None:
    # The real thing, end to end: `serve` starts Prefect's temporary server (a child
    # process) on its first cycle; SIGTERM must take that child down with it.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_API")}
    env |= {
        "FOREWARN_DB_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "FOREWARN_SITE_DIR": str(tmp_path / "site"), "FOREWARN_OUTBOX": str(tmp_path / "out"),
        "FOREWARN_JOURNAL_DIR": str(tmp_path / "journal"),
        "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_LOGGING_LEVEL": "WARNING",
        "PYTHONPATH": str(Path(__file__).parent.parent),
    }  # fmt: skip
    command = [sys.executable, "-c", "from forewarn.cli import main; main()", "serve",
               "--port", str(free_port()), "--interval", "3600"]  # fmt: skip
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        serve = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 120
        prefect_server: set[int] = set()
        while not prefect_server and time.monotonic() < deadline and serve.poll() is None:
            time.sleep(0.5)
            prefect_server = {pid for pid in children(serve.pid) if "uvicorn" in cmdline(pid)}
        assert prefect_server, log.read_text()
        time.sleep(1)  # let the first cycle get going
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=60) == 0, log.read_text()
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in prefect_server) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(alive(pid) for pid in prefect_server)
        assert "SIGTERM: stopping" in log.read_text()
    finally:
        for pid in [serve.pid, *prefect_server]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        serve.wait()


def test_a_bad_setting_stops_run_once_before_prefect_is_even_imported(tmp_path: Path) -> None:
    # As a user runs it (a fresh interpreter): one line, status 2, and Prefect (seconds to
    # import, more to start its server) never loaded.
    probe = (
        "import sys\n"
        "from forewarn.cli import main\n"
        "sys.argv = ['forewarn', 'run-once']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as done:\n"
        "    print('prefect loaded:', 'prefect' in sys.modules, 'status:', done.code)\n"
    )
    env = {**os.environ, "FOREWARN_DOWN_AFTER_S": "abc",
           "PYTHONPATH": str(Path(__file__).parent.parent)}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.stderr == ""
    assert lines(done.stdout) == [
        "error: FOREWARN_DOWN_AFTER_S: not a number: 'abc'",
        "prefect loaded: False status: 2",
    ]


def test_a_refused_geocoder_fails_at_once_and_logs_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    lookup = nominatim(NO_GEOCODER, per_second=100, retry_wait_s=5)
    started = time.monotonic()
    with caplog.at_level("WARNING", logger="geopy"), pytest.raises(GeocoderUnreachable) as caught:
        lookup("45 Mill Road")
    assert time.monotonic() - started < 2  # not retried after 5 s pauses
    assert (
        str(caught.value) == "cannot reach the geocoder at http://127.0.0.1:9: connection refused"
    )
    # geopy's retry logger printed a traceback per retry (urllib3's has a NullHandler).
    assert [r.getMessage() for r in caplog.records if r.name.startswith("geopy")] == []


def test_once_the_geocoder_is_unreachable_the_rest_of_the_batch_is_not_asked(
    engine: Engine,
) -> None:
    asked: list[str] = []

    def unreachable(query: str) -> tuple[float, float] | None:
        asked.append(query)
        raise GeocoderUnreachable("cannot reach the geocoder at x: connection refused")

    with engine.begin() as conn:
        found = geocode_all(conn, ["1 A St", "2 A St", "3 A St"], unreachable, NOW)
    assert found == {} and asked == ["1 A St"]
