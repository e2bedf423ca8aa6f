"""`forewarn demo` itself, as a newcomer runs it: a sealed rehearsal that tells the same
story, line for line, at any hour and whatever channels the environment names."""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from forewarn.demo import run_demo, serve_command, this_command
from testkit.servers import Mailbox, TwilioState, fake_twilio, free_port, smtp_server

# What the demo prints, rules (the lines of ─) reduced to their titles.
STORY = """\
forewarn demo: Riverside Fibre, a town of 3,000 premises
A rehearsal on a simulated clock (Tuesday 24 November 2026, America/Chicago time) through the drill engine; nothing is sent: every message is written down instead.
Imported 3,237 network elements (exchange > OLTs > PON ports > cabinets > CPEs), 2,911 premises, 2,911 customers.

10:00 a quiet network
  signals read 0, rejected 0; elements waiting out damping 0

10:01 cabinet ex0-olt0-pon3-cab2 loses power: its CPEs go silent; cpe901 drops too, cpe1500 goes down on its own, and a garbled line arrives in the feed
  signals read 18, rejected 1; elements waiting out damping 18
  the garbled line was refused (line 1: 'state' must be one of down, up, degraded) and kept in quarantine; the rest of the batch went on

10:01:30 cpe901 is back after 30 s (a router restarting)
  signals read 1, rejected 0; elements waiting out damping 17

10:03 still down after two minutes of damping: incidents open, customers are told
  signals read 0, rejected 0; elements waiting out damping 0
  incident #1 opened at ex0-olt0-pon3-cab2 (Park Avenue): 16 CPEs behind it, 2 of them empty homes; 14 premises, 14 customers told; on the page
  incident #2 opened at cpe1500: one premise, kept private: not on the page (one home is too small an area to show) and nobody messaged (a lone dead router is usually the customer's own)
  messages: 12 texts, 13 emails, 1 public post

11:50 cabinet ex0-olt0-pon12-cab0 loses power too
  signals read 16, rejected 0; elements waiting out damping 16

11:52 still down after two minutes of damping: incidents open, customers are told
  signals read 0, rejected 0; elements waiting out damping 0
  incident #3 opened at ex0-olt0-pon12-cab0 (Hawthorn Drive): 16 CPEs behind it; 16 premises, 16 customers told; on the page
  messages: 14 texts, 14 emails, 1 public post

12:00 ex0-olt0-pon3-cab2's power is back, and cpe1500's owner restarts their router; both wait ten minutes to be sure
  signals read 17, rejected 0; elements waiting out damping 17

12:10 up for ten minutes: restored, customers are told
  signals read 0, rejected 0; elements waiting out damping 0
  incident #1 resolved
  incident #2 resolved
  messages: 12 texts, 13 emails, 1 public post
where to look
Messages: ./forewarn-demo/messages.jsonl (38 texts, 40 emails, 3 public posts), one JSON line each, in the order they went.
The neighbour (premise p223, next door but on another cabinet) was not told: their line was fine.
30 customers messaged; each incident's first messages went the moment it opened; no promise broken; every figure in ./forewarn-demo/summary.json.
The page: ./forewarn-demo/site/index.html (#1 resolved, #3 in progress; past incidents in ./forewarn-demo/site/history.html).
To browse it: FOREWARN_DB_URL=sqlite:///forewarn-demo/drill.db FOREWARN_SITE_DIR=forewarn-demo/site forewarn serve --no-flows (then http://127.0.0.1:8000)
""".splitlines()  # noqa: E501


def written(demo: Demo) -> list[dict[str, Any]]:
    """Every message the demo wrote down, in order."""
    path = demo.folder / "forewarn-demo/messages.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def lines(output: str) -> list[str]:
    """The printed lines, each rule reduced to its title."""
    return [line.strip("─ ") if "─" in line else line.rstrip() for line in output.splitlines()]


@dataclass
class Demo:
    """A demo run in its own folder, with real channels named in the environment."""

    folder: Path
    stdout: str
    mailbox: Mailbox
    twilio: TwilioState


def demo_command() -> list[str]:
    """The installed `forewarn` command (this checkout's code: PYTHONPATH leads)."""
    return [shutil.which("forewarn") or str(Path(sys.executable).parent / "forewarn")]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """`forewarn demo` where an operator's real SMTP server and Twilio account are set,
    in the environment and in a `.env`, and no quiet hours to hold a message back."""
    folder = tmp_path_factory.mktemp("demo")
    with smtp_server() as (smtp_url, mailbox), fake_twilio() as (twilio_url, twilio):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FOREWARN_", "TWILIO_"))}
        env.update(
            COLUMNS="200",  # rich wraps at the terminal width; keep lines whole
            FOREWARN_SMTP_URL=smtp_url,
            FOREWARN_EMAIL_FROM="noc@riverside.example",
            TWILIO_ACCOUNT_SID="AC" + "0" * 32,
            TWILIO_AUTH_TOKEN="secret",
            FOREWARN_SMS_FROM="+15005550006",
            FOREWARN_TWILIO_API_URL=twilio_url,
            FOREWARN_QUIET_HOURS="",  # the operator's would hold messages: here none do
            FOREWARN_DB_URL=f"sqlite:///{folder / 'production.db'}",
            FOREWARN_SITE_DIR=str(folder / "production-site"),
        )
        (folder / ".env").write_text(
            f"FOREWARN_SMTP_URL={smtp_url}\nFOREWARN_MASTODON_URL=http://127.0.0.1:{free_port()}\n"
            "FOREWARN_MASTODON_TOKEN=secret\n"
        )
        result = subprocess.run(
            [*demo_command(), "demo"], cwd=folder, env=env, capture_output=True, text=True,
            timeout=300, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        time.sleep(0.2)  # let a stray SMTP session (there should be none) finish
        yield Demo(folder, result.stdout, mailbox, twilio)


@pytest.mark.integration
def test_the_demo_prints_its_story_line_for_line(demo: Demo) -> None:
    # The closing command names forewarn as this shell would find it: here, by its path.
    typed = lines(demo.stdout.replace(f" {demo_command()[0]} serve", " forewarn serve"))
    assert typed == STORY


@pytest.mark.integration
def test_the_demo_sends_nothing_whatever_channels_the_environment_names(demo: Demo) -> None:
    assert demo.mailbox.received == []
    assert demo.twilio.messages == []
    counts = Counter(m["channel"] for m in written(demo))
    assert counts == {"sms": 38, "email": 40, "social": 3}
    assert not (demo.folder / "forewarn-demo/outbox").exists()  # nothing even queued there
    # Nothing of the operator's own store or site was touched.
    assert not (demo.folder / "production.db").exists()
    assert not (demo.folder / "production-site").exists()


@pytest.mark.integration
def test_the_demo_tells_only_the_right_customers_and_the_page_names_nobody(demo: Demo) -> None:
    messages = written(demo)
    personal = [m for m in messages if m["customer_id"]]
    # Cabinet A serves premises 224-239 (two empty houses), cabinet B 768-783.
    told: dict[int, set[int]] = {m["incident_id"]: set() for m in personal}
    for m in personal:
        told[m["incident_id"]].add(int(m["customer_id"][1:]))
    assert sorted(told) == [1, 3]
    assert len(told[1]) == 14 and all(224 <= p < 240 for p in told[1])
    assert len(told[3]) == 16 and all(768 <= p < 784 for p in told[3])
    public = [(m["incident_id"], m["update_seq"]) for m in messages if not m["customer_id"]]
    assert sorted(public) == [(1, 1), (1, 2), (3, 1)]
    assert "cpe901" not in demo.stdout.split("10:03")[-1]  # the flapping CPE never became a fault
    with (demo.folder / "forewarn-demo/town/customers.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    private = {r[k] for r in rows for k in ("phone", "email", "address") if r[k]}
    for path in (demo.folder / "forewarn-demo/site").rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert not [p for p in private if p in text], path
    summary = json.loads((demo.folder / "forewarn-demo/site/api/v2/summary.json").read_text())
    assert [i["id"] for i in summary["incidents"]] == ["3"]  # still in progress at the end


@pytest.mark.integration
def test_the_suggested_command_serves_the_demos_page(demo: Demo) -> None:
    suggested = lines(demo.stdout)[-1].removeprefix("To browse it: ").split(" (then")[0]
    words = shlex.split(suggested)
    settings = dict(word.split("=", 1) for word in words if "=" in word)
    command = [word for word in words if "=" not in word]
    assert command == [demo_command()[0], "serve", "--no-flows"]  # as the test ran it
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FOREWARN_", "TWILIO_"))}
    port = free_port()
    server = subprocess.Popen(
        [*demo_command(), *command[1:], "--port", str(port)], cwd=demo.folder,
        env={**env, **settings}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                page = httpx.get(f"{base}/", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.communicate()[1]
                assert time.monotonic() < deadline, "the receiver did not start"
                time.sleep(0.3)
        assert page.status_code == 200 and "Hawthorn Drive" in page.text
        for incident in (1, 3):
            assert httpx.get(f"{base}/incidents/{incident}.html").status_code == 200
        assert "Park Avenue" in httpx.get(f"{base}/history.html").text
    finally:
        server.terminate()
        server.communicate(timeout=30)  # and close its stderr pipe
        server.wait(timeout=30)


@pytest.mark.integration
def test_the_readme_tells_the_demos_story_number_for_number(demo: Demo) -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    paragraph = readme.split("The demo is a sealed rehearsal")[1].split("\n\n")[0]
    paragraph = " ".join(paragraph.split())
    # Counts with what they count ("14 premises"), clock times and incident numbers.
    claims = re.findall(r"(?<![\w-])(?:\d+ \w+|\d\d:\d\d|#\d+)", paragraph)
    assert len(claims) > 15
    assert [c for c in claims if c not in demo.stdout] == []


def test_the_story_is_the_same_whatever_the_nights_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Quiet and sleep hours all day long in the environment change nothing: the demo's
    settings are its own, and so is its clock (claims are stamped on the demo's time,
    moved on by the real seconds that pass, so the real hour never enters the story)."""
    monkeypatch.setenv("FOREWARN_QUIET_HOURS", "00:00-23:59")
    monkeypatch.setenv("FOREWARN_SLEEP_HOURS", "00:00-23:59")
    monkeypatch.chdir(tmp_path)
    console = Console(record=True, width=200, file=open(os.devnull, "w"))  # noqa: SIM115
    run_demo(console, Path("forewarn-demo"), 3000)
    console.file.close()
    assert lines(console.export_text()) == STORY


def test_the_closing_command_is_typed_as_the_newcomer_typed_forewarn(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Run as `.venv/bin/forewarn demo` with the venv not activated, the command it
    suggests starts `.venv/bin/forewarn`: a bare `forewarn` is "command not found"."""
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "forewarn").write_text("#!/bin/sh\n")
    (bin_dir / "forewarn").chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.setattr(sys, "argv", [".venv/bin/forewarn", "demo"])
    assert this_command() == ".venv/bin/forewarn"
    assert serve_command(Path("forewarn-demo"), this_command()).endswith(
        " .venv/bin/forewarn serve --no-flows"
    )
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")  # the venv activated
    assert this_command() == "forewarn"
