"""Nothing fails silently: every command that sends says what waits and why, `status`
names the channels failing now, `quarantine` lists the input set aside, and a channel
given half its settings is named before anything runs (issue 14, item 4)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from forewarn.cli import app
from forewarn.config import Settings
from forewarn.context import Context
from forewarn.incidents.ledger.waiting import failing_channels
from forewarn.network.csvfile import CUSTOMER_COLUMNS, TOPOLOGY_COLUMNS
from forewarn.pipeline import note_waiting
from testkit.servers import free_port, smtp_server
from tests.conftest import BOTH_STORES, NOW, either_store, run_cycle
from tests.town import Town, customer_rows, report_cabinet, topology_rows, write_csv

CHANNEL_SETTINGS = (
    "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "FOREWARN_SMS_FROM", "FOREWARN_SMTP_URL",
    "FOREWARN_EMAIL_FROM", "FOREWARN_MASTODON_URL", "FOREWARN_MASTODON_TOKEN",
    "FOREWARN_ALERTMANAGER_URL", "FOREWARN_JSONL_FEED", "FOREWARN_WEBHOOK_TOKEN",
)  # fmt: skip


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """An operator's environment: a fresh store, no channel configured, no quiet hours."""
    monkeypatch.chdir(tmp_path)  # no .env from the working directory
    for name in CHANNEL_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "DB_URL": f"sqlite:///{tmp_path / 'loud.db'}", "SITE_DIR": str(tmp_path / "site"),
        "OUTBOX": str(tmp_path / "outbox"), "JOURNAL_DIR": str(tmp_path / "journal"),
        "OPERATOR_NAME": "Mill Road Fibre", "PHONE_REGION": "GB", "QUIET_HOURS": "",
        "SLEEP_HOURS": "",  # the real clock may be at night: no window holds anything
    }.items():  # fmt: skip
        monkeypatch.setenv(f"FOREWARN_{name}", value)
    monkeypatch.setenv("COLUMNS", "300")
    return CliRunner()


@pytest.fixture
def street(cli: CliRunner, tmp_path: Path) -> Iterator[CliRunner]:
    """The street of tests/town.py imported through the command line."""
    topology = write_csv(tmp_path / "t.csv", TOPOLOGY_COLUMNS, topology_rows())
    people = write_csv(tmp_path / "c.csv", CUSTOMER_COLUMNS, customer_rows())
    run(cli, "import-network", str(topology), str(people), "--region", "GB")
    yield cli


def run(runner: CliRunner, *args: str, code: int = 0) -> list[str]:
    """Run a command; its output as lines, trailing blanks trimmed."""
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return [line.rstrip() for line in result.output.splitlines()]


def test_an_unreachable_smtp_server_is_named_with_what_waits_and_status_lists_it(
    street: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()  # nobody listens there
    monkeypatch.setenv("FOREWARN_SMTP_URL", f"smtp://127.0.0.1:{port}")
    monkeypatch.setenv("FOREWARN_EMAIL_FROM", "alerts@millroad.example")
    out = run(street, "incident", "open", "--element", "cabA", "--title", "Fibre cut")
    # Three texts go to the outbox (no Twilio); all four emails wait for the server.
    assert "messages queued 7, sent 3, failed for good 0, cancelled 0, waiting 4" in out
    [retry] = [line for line in out if line.startswith("  email:")]
    assert retry.startswith(
        f"  email: 4 retrying after: smtp connection failed: connection refused by "
        f"127.0.0.1:{port}; next try "
    )
    assert re.search(r"next try \d{4}-\d\d-\d\d \d\d:\d\d UTC$", retry), retry
    status = run(street, "status")
    assert "channels failing now:" in status
    [failing] = [line for line in status if line.startswith("  email:")]
    assert failing.startswith("  email: 4 waiting to retry, 0 failed for good in the last 24 h;")
    assert failing.endswith(f": smtp connection failed: connection refused by 127.0.0.1:{port}")


@pytest.mark.integration
def test_a_permanent_failure_is_shown_with_the_providers_reason(
    street: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    with smtp_server() as (url, mailbox):
        mailbox.refuse["house45@example.org"] = "550 5.1.1 no such user"
        monkeypatch.setenv("FOREWARN_SMTP_URL", url)
        monkeypatch.setenv("FOREWARN_EMAIL_FROM", "alerts@millroad.example")
        out = run(street, "incident", "open", "--element", "cabA", "--title", "Fibre cut")
    assert "messages queued 7, sent 6, failed for good 1, cancelled 0, waiting 0" in out
    assert "  email: 1 failed for good: smtp 550: 5.1.1 no such user" in out
    status = run(street, "status")
    [failing] = [line for line in status if line.startswith("  email:")]
    assert failing.startswith("  email: 0 waiting to retry, 1 failed for good in the last 24 h;")
    assert failing.endswith(": smtp 550: 5.1.1 no such user")


@pytest.mark.integration
@pytest.mark.usefixtures("prefect_harness")
def test_a_quiet_night_says_how_many_wait_and_until_when(
    street: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    night = NOW.replace(hour=23)  # 23:00 in London (UTC in November)
    feed = tmp_path / "feed.jsonl"
    report_cabinet(feed, "cabA", "down", night)
    monkeypatch.setenv("FOREWARN_JSONL_FEED", str(feed))
    monkeypatch.setenv("FOREWARN_QUIET_HOURS", "21:00-08:00")  # the defaults
    monkeypatch.setenv("FOREWARN_SLEEP_HOURS", "23:00-07:00")
    started = (night + timedelta(minutes=3)).isoformat()
    out = run(street, "run-once", "--at", started)
    # The public post goes out at night; the customers' first word waits out their sleep
    # hours (23:00 to 07:00 by default).
    assert "  messages queued 8, sent 1, failed for good 0, cancelled 0, waiting 7" in out
    until = "until 07:00 Europe/London (2026-11-24 07:00 UTC)"
    assert f"    email: 4 held (night or daily ceiling) {until}" in out
    assert f"    sms: 3 held (night or daily ceiling) {until}" in out


@pytest.mark.integration
@pytest.mark.usefixtures("prefect_harness")
def test_run_once_with_nothing_to_watch_says_what_to_do(cli: CliRunner) -> None:
    out = run(cli, "run-once")
    assert out[:2] == [
        "warning: no network imported: faults cannot be mapped to customers; run "
        "`forewarn import-network TOPOLOGY CUSTOMERS` first",
        "warning: no feed configured: nothing can be detected; set FOREWARN_ALERTMANAGER_URL "
        "or FOREWARN_JSONL_FEED (or FOREWARN_WEBHOOK_TOKEN, with `forewarn serve` taking "
        "Alertmanager's webhooks)",
    ]


def test_quarantine_lists_malformed_feed_lines_newest_first_with_their_reason(
    street: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed = tmp_path / "feed.jsonl"
    monkeypatch.setenv("FOREWARN_JSONL_FEED", str(feed))
    ctx = Context.build(Settings())
    feed.write_text('{"element": "cpe41", "state": "sideways"}\n')
    run_cycle(ctx, NOW)
    with feed.open("a") as handle:
        handle.write("cpe43 is down\n")
    run_cycle(ctx, NOW + timedelta(minutes=1))
    ctx.close()
    assert run(street, "quarantine") == [
        "2026-11-23 14:01 UTC  jsonl: line 1: not JSON: Expecting value at position 0",
        "    cpe43 is down",
        "2026-11-23 14:00 UTC  jsonl: line 1: 'state' must be one of down, up, degraded",
        '    {"element": "cpe41", "state": "sideways"}',
    ]
    assert run(street, "quarantine", "--limit", "1")[-1] == "1 of 2 shown (use --limit)"
    status = run(street, "status")
    assert status[-1] == (
        "quarantined input: 2, the latest at 2026-11-23 14:01 UTC "
        "(`forewarn quarantine` lists them)"
    )


@pytest.mark.parametrize(
    ("given", "line"),
    [
        (
            {"FOREWARN_SMTP_URL": "smtp://127.0.0.1:2525"},
            "error: email: FOREWARN_SMTP_URL is set but FOREWARN_EMAIL_FROM is not; set both "
            "to send email, or neither to write it to the outbox",
        ),
        (
            {"TWILIO_ACCOUNT_SID": "AC123", "FOREWARN_SMS_FROM": "+15005550006"},
            "error: sms: TWILIO_ACCOUNT_SID and FOREWARN_SMS_FROM are set but TWILIO_AUTH_TOKEN "
            "is not; set all three to send sms, or none to write it to the outbox",
        ),
        (
            {"TWILIO_ACCOUNT_SID": "AC123", "TWILIO_AUTH_TOKEN": "secret"},
            "error: sms: TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are set but FOREWARN_SMS_FROM "
            "is not; set all three to send sms, or none to write it to the outbox",
        ),
        (
            {"FOREWARN_MASTODON_URL": "https://social.example"},
            "error: social: FOREWARN_MASTODON_URL is set but FOREWARN_MASTODON_TOKEN is not; "
            "set both to send social, or neither to write it to the outbox",
        ),
    ],
    ids=["smtp-without-sender", "twilio-without-token", "twilio-without-sender", "mastodon"],
)
def test_a_half_configured_channel_stops_every_command_that_sends(
    street: CliRunner, monkeypatch: pytest.MonkeyPatch, given: dict[str, str], line: str
) -> None:
    for name, value in given.items():
        monkeypatch.setenv(name, value)
    # Reading sends nothing: the read-only commands still answer.
    assert "No incidents." in run(street, "incident", "list")
    assert run(street, "run-once", code=2) == [line]
    assert run(street, "incident", "open", "--element", "cabA", "--title", "Cut", code=2) == [line]


@pytest.fixture(params=BOTH_STORES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The ledger's grouped reads, on both stores."""
    return either_store(request, tmp_path)


def test_the_cycle_report_carries_what_waits_and_why_on_either_store(
    town: Town, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    refused = f"smtp://127.0.0.1:{free_port()}"
    ctx = Context.build(
        settings.model_copy(
            update={"smtp_url": SecretStr(refused), "email_from": "alerts@millroad.example"}
        )
    )
    report_cabinet(settings.jsonl_feed, "cabA", "down", NOW)
    day = note_waiting(
        ctx, run_cycle(ctx, NOW + timedelta(minutes=3)).dispatch, NOW + timedelta(minutes=3)
    )
    reason = f"smtp connection failed: connection refused by {refused[7:]}"
    assert [(w.channel, w.kind, w.count, w.reason) for w in day.waiting] == [
        ("email", "retrying", 4, reason)
    ]
    assert day.waiting[0].next_at > NOW + timedelta(minutes=3)
    # A batch with failures is logged as a warning (what `serve` shows as it goes).
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(m.startswith("batch: claimed=") and "retrying=4" in m for m in warned), warned
    night = NOW.replace(hour=23)
    report_cabinet(settings.jsonl_feed, "cabB", "down", night)
    at_night = night + timedelta(minutes=3)
    later = note_waiting(ctx, run_cycle(ctx, at_night).dispatch, at_night)
    held = [(w.channel, w.count, w.zone, w.next_at) for w in later.waiting if w.kind == "held"]
    morning = (NOW + timedelta(days=1)).replace(hour=7)  # the end of sleep hours
    assert held == [("email", 4, "Europe/London", morning), ("sms", 4, "Europe/London", morning)]
    with ctx.engine.connect() as conn:
        [failing] = failing_channels(conn, NOW)
    ctx.close()
    assert (failing.channel, failing.retrying, failing.failed, failing.latest) == (
        "email",
        4,
        0,
        reason,
    )
