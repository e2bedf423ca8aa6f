"""A newcomer's first day (issue 21): what an operator trying forewarn on their own small
network, with their own mistakes, sees at the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from forewarn.cli import app
from forewarn.network.csvfile import CUSTOMER_COLUMNS, TOPOLOGY_COLUMNS
from tests.town import customer_rows, topology_rows, write_csv

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An operator's folder: no setting from this machine, no .env but their own."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("FOREWARN_", "TWILIO_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("COLUMNS", "300")
    monkeypatch.setenv("FOREWARN_QUIET_HOURS", "")
    monkeypatch.setenv("FOREWARN_SLEEP_HOURS", "")
    write_csv(tmp_path / "topology.csv", TOPOLOGY_COLUMNS, topology_rows())
    write_csv(tmp_path / "customers.csv", CUSTOMER_COLUMNS, customer_rows())
    yield tmp_path


def run(*args: str, code: int = 0) -> str:
    """A command's output (stdout and stderr), its exit status checked."""
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def forewarn(folder: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """The command as a shell runs it, its output piped (not a terminal), no COLUMNS, and
    only the FOREWARN_* `settings` given (by their names without the prefix)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FOREWARN_", "COLUMNS"))}
    env |= {f"FOREWARN_{name}": value for name, value in settings.items()}
    env["PYTHONPATH"] = str(ROOT)
    script = "import sys; from forewarn.cli import main; sys.argv[0] = 'forewarn'; main()"
    return subprocess.run(
        [sys.executable, "-c", script, *args], cwd=folder, env=env, capture_output=True,
        text=True, timeout=120, check=False,
    )  # fmt: skip


# --- phone numbers of the operator's own country ----------------------------------------


def test_an_import_read_in_the_wrong_country_says_how_to_give_the_right_one(here: Path) -> None:
    said = run("import-network", "topology.csv", "customers.csv")
    assert "12 phone numbers were read as US numbers" in said
    assert "--region" in said and "FOREWARN_PHONE_REGION" in said
    again = run("import-network", "topology.csv", "customers.csv", "--region", "GB")
    assert "were read as" not in again and "not a valid number" not in again


def test_a_national_number_finds_its_customer_in_the_country_of_the_import(here: Path) -> None:
    run("import-network", "topology.csv", "customers.csv", "--region", "GB")
    said = run("customer", "07911 123045")  # FOREWARN_PHONE_REGION unset: the import's GB
    assert said.startswith("c45, 45 Mill Road")
    assert "phone +447911123045; email house45@example.org" in said


def test_an_address_matches_from_the_start_of_a_word_not_inside_a_number(here: Path) -> None:
    run("import-network", "topology.csv", "customers.csv", "--region", "GB")
    run("customer", "9 Mill Road", code=2)  # not "39 Mill Road" nor "49 Mill Road"
    assert run("customer", "39 Mill").startswith("c39, 39 Mill Road")
    assert "12 customers match" in run("customer", "mill road")  # a street finds them all


# --- mistakes in the settings and the folder --------------------------------------------


def test_a_misspelt_setting_is_named_with_the_one_meant(here: Path) -> None:
    (here / ".env").write_text("FOREWARN_TIMEZONE=Europe/London\n")
    run("import-network", "topology.csv", "customers.csv", "--region", "GB")
    said = run("status")
    assert (
        "FOREWARN_TIMEZONE is not a setting and is ignored (did you mean FOREWARN_TIME_ZONE?)"
        in said
    )


def test_status_in_a_folder_without_a_store_says_so_and_makes_none(here: Path) -> None:
    elsewhere = here / "elsewhere"
    elsewhere.mkdir()
    os.chdir(elsewhere)
    said = run("status", code=2)
    assert "there is no store at forewarn.db" in said and "import-network" in said
    assert list(elsewhere.iterdir()) == []


def test_version(here: Path) -> None:
    from forewarn import __version__

    assert run("--version").strip() == f"forewarn {__version__}"


def test_a_command_that_only_reads_does_not_warn_about_channels(here: Path) -> None:
    run("import-network", "topology.csv", "customers.csv", "--region", "GB")
    done = forewarn(here, "incident", "list")
    assert done.returncode == 0, done.stderr
    assert "no credentials" not in done.stdout + done.stderr


# --- what the terminal shows --------------------------------------------------------------


def test_piped_output_keeps_each_line_whole(here: Path) -> None:
    done = forewarn(here, "import-network", "topology.csv", "customers.csv")
    lines = done.stdout.splitlines()
    row = [line for line in lines if "customer 'c39'" in line]
    assert row and row[0].endswith("phone '07911 123039' is not a valid number"), lines


def test_help_wraps_whole_paragraphs(here: Path) -> None:
    said = run("run-once", "--help")
    assert "without it they run in this process, as a drill does" in " ".join(said.split())
    lines = [line.strip(" │") for line in said.splitlines()]
    assert not [line for line in lines if line in ("they", "pass.")]  # no word left alone


# --- feeds ----------------------------------------------------------------------------------


def test_a_missing_feed_is_said_once_and_the_run_fails(here: Path) -> None:
    run("import-network", "topology.csv", "customers.csv", "--region", "GB")
    done = forewarn(here, "run-once")
    assert done.returncode == 0, done.stderr  # no feed configured: a run, not a failure
    # As cron runs it: its exit status, and both streams.
    done = forewarn(here, "run-once", JSONL_FEED=str(here / "missing.jsonl"))
    assert done.returncode == 1
    both = done.stdout + done.stderr
    assert both.count("missing.jsonl does not exist") == 1, both


def test_an_unreachable_feed_url_is_named_without_its_password(
    here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOREWARN_JSONL_FEED", "http://ops:hunter2@127.0.0.1:9/feed.jsonl")
    result = CliRunner().invoke(app, ["run-once"])
    assert result.exit_code == 1
    assert "JSON lines feed http://***@127.0.0.1:9/feed.jsonl failed" in result.output
    assert "hunter2" not in result.output


def fed(here: Path, monkeypatch: pytest.MonkeyPatch, downs: list[tuple[str, str]]) -> None:
    """The street imported, and a JSON lines feed saying these elements went down then."""
    run("import-network", "topology.csv", "customers.csv", "--region", "GB")
    lines = [json.dumps({"element": e, "state": "down", "at": at}) for e, at in downs]
    (here / "feed.jsonl").write_text("".join(line + "\n" for line in lines))
    monkeypatch.setenv("FOREWARN_JSONL_FEED", str(here / "feed.jsonl"))


def test_rejects_point_to_the_quarantine_which_shows_lines_as_the_feed_had_them(
    here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fed(here, monkeypatch, [("cpe39", "2030-01-01T00:00:00Z"), ("nosuch", "2026-12-04T20:00:00Z")])
    said = run("run-once", "--at", "2026-12-04T20:01:00+00:00")
    assert "rejected 2 (`forewarn quarantine` lists them)" in said
    listed = run("quarantine")
    assert "jsonl: line 2: unknown element 'nosuch'" in listed
    assert '{"element": "nosuch", "state": "down", "at": "2026-12-04T20:00:00Z"}' in listed
    assert "jsonl: line 1: dated 2030-01-01" in listed


def test_run_once_says_until_when_it_is_damping(
    here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fed(here, monkeypatch, [(f"cpe{n}", "2026-12-04T20:00:00Z") for n in (39, 41, 43, 45)])
    monkeypatch.setenv("FOREWARN_TIME_ZONE", "Europe/London")
    said = run("run-once", "--at", "2026-12-04T20:00:30+00:00")
    assert "elements waiting out damping 4, the first until 2026-12-04 20:02 GMT" in said


# --- times in the operator's zone ---------------------------------------------------------


def test_ops_views_and_the_page_tell_times_in_the_operators_zone(
    here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOREWARN_TIME_ZONE", "Europe/Madrid")
    run("import-network", "topology.csv", "customers.csv", "--region", "GB")
    run("incident", "open", "--element", "cabA", "--title", "Cabinet A", "--since",
        "2026-12-04T10:00")  # fmt: skip
    listed = run("incident", "list")
    assert "UTC" not in listed
    shown = run("incident", "show", "1")
    assert "since 2026-12-04 10:00 CET" in shown
    summary = json.loads((here / "site" / "api" / "v2" / "summary.json").read_text())
    assert summary["page"]["time_zone"] == "Europe/Madrid"
    run("run-once", "--at", "2026-12-04T10:30:00+00:00")
    assert "last feed read: 2026-12-04 11:30 CET" in run("status")
