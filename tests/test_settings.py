"""The settings as an operator meets them: grouped as the README's tables are, every
FOREWARN_* read through them (a `.env` too), and a setting that became a constant said
to be no longer read rather than silently ignored."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from forewarn import texts
from forewarn.cli import app
from forewarn.cli.startup import env_name
from forewarn.config import Process, Settings, process_settings
from forewarn.notifiers import compose
from forewarn.store import make_engine

README = Path(__file__).resolve().parents[1] / "README.md"


def documented() -> list[str]:
    """The variables of the README's configuration tables, in their order."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return [name for row in rows for name in re.findall(r"`([A-Z_]+)`", row.split("|")[1])]


def test_every_setting_is_in_the_readme_in_the_order_the_code_declares_it() -> None:
    # The process's own two (read before the rest) are documented with "Running".
    once = [env_name(field) for field in Process.model_fields]
    declared = [env_name(f) for f in Settings.model_fields if f not in Process.model_fields]
    assert [name for name in documented() if name not in once] == declared
    running = documented()[: documented().index("FOREWARN_ALERTMANAGER_URL")]
    assert set(once) <= set(running)


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A working folder of its own (its `.env` is the one read), caches dropped around."""
    monkeypatch.chdir(tmp_path)
    for name in ("FOREWARN_TEMPLATES_DIR", "FOREWARN_DASK_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    forget()
    yield tmp_path
    forget()


def forget() -> None:
    """Drop what this process read of its templates and their folder."""
    process_settings.cache_clear()
    texts.environment.cache_clear()
    texts._sentence.cache_clear()
    compose.template_for.cache_clear()


def test_a_templates_folder_named_in_dot_env_replaces_the_shipped_words(here: Path) -> None:
    words = here / "mine" / "words" / "en"
    words.mkdir(parents=True)
    (words / "reply_help.txt").write_text("{{ operator }}: call us on 0800 000 111.\n")
    (here / ".env").write_text(f"FOREWARN_TEMPLATES_DIR={here / 'mine'}\n")

    said = texts.say("reply_help", "en", operator="Mill Road Fibre", help_text="")

    assert said == "Mill Road Fibre: call us on 0800 000 111."


def test_without_a_templates_folder_the_shipped_words_are_said(here: Path) -> None:
    said = texts.say("reply_help", "en", operator="Mill Road Fibre", help_text="")
    assert said.startswith("Mill Road Fibre: Outage alerts for your broadband.")


def test_the_task_runner_address_is_read_from_dot_env(here: Path) -> None:
    (here / ".env").write_text("FOREWARN_DASK_ADDRESS=tcp://127.0.0.1:8786\n")
    assert process_settings().dask_address == "tcp://127.0.0.1:8786"


def test_a_retired_setting_is_said_to_be_no_longer_read_and_the_command_runs(
    here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOREWARN_DB_URL", f"sqlite:///{here / 'forewarn.db'}")
    make_engine(f"sqlite:///{here / 'forewarn.db'}").dispose()
    monkeypatch.setenv("FOREWARN_DISPATCH_BATCH", "50")
    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert first.startswith("forewarn: FOREWARN_DISPATCH_BATCH is no longer read: ")
    assert "1,000 at a time" in first


def test_no_retired_setting_no_notice(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOREWARN_DB_URL", f"sqlite:///{here / 'forewarn.db'}")
    make_engine(f"sqlite:///{here / 'forewarn.db'}").dispose()
    monkeypatch.delenv("FOREWARN_DISPATCH_BATCH", raising=False)
    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    assert "no longer read" not in result.output
