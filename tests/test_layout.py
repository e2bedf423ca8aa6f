"""The tree reads as the pipeline: a stage imports only stages to its left, and no stage
imports the flows or the command line (ARCHITECTURE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "forewarn"
STAGES = ["feeds", "detection", "network", "incidents", "notifiers", "status_page", "flows"]
# The command line and what only it uses sit on top of everything.
TOP = {"cli", "cli_ops", "terminal", "demo", "drill", "operate", "report", "receiver"}


def imported(path: Path) -> set[str]:
    """The forewarn modules a file imports, as their first name below forewarn."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "forewarn" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_each_stage_imports_only_stages_to_its_left() -> None:
    wrong = []
    for position, stage in enumerate(STAGES):
        for path in sorted((PACKAGE / stage).rglob("*.py")):
            for name in imported(path):
                if name in TOP or (name in STAGES and STAGES.index(name) > position):
                    wrong.append(f"{path.relative_to(PACKAGE)} imports forewarn.{name}")
    assert wrong == []


def test_shared_modules_import_no_stage() -> None:
    for shared in ("store.py", "config.py", "durations.py"):
        assert imported(PACKAGE / shared) & (set(STAGES) | TOP) == set(), shared


def test_the_checker_sees_a_wrong_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from forewarn.flows.context import Context\nimport forewarn.cli\n")
    assert imported(bad) == {"flows", "cli"}
