"""The tree reads as the pipeline: a stage imports only stages to its left, and no stage
imports the flows or the command line (ARCHITECTURE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "forewarn"
# The stages in order; `context` (what a run needs) and `pipeline` (the one composition of
# the cycle) are single modules between the stages and the flows.
STAGES = [
    "feeds", "network", "detection", "incidents", "notifiers", "status_page",
    "context", "pipeline", "flows",
]  # fmt: skip
# The command line and what only it uses sit on top of everything.
TOP = {"cli", "cli_ops", "terminal", "demo", "drill", "report", "receiver"}


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
        folder = PACKAGE / stage
        paths = sorted(folder.rglob("*.py")) if folder.is_dir() else [PACKAGE / f"{stage}.py"]
        for path in paths:
            for name in imported(path):
                if name in TOP or (name in STAGES and STAGES.index(name) > position):
                    wrong.append(f"{path.relative_to(PACKAGE)} imports forewarn.{name}")
    assert wrong == []


def test_shared_modules_import_no_stage() -> None:
    for shared in ("store.py", "config.py", "durations.py", "texts.py"):
        assert imported(PACKAGE / shared) & (set(STAGES) | TOP) == set(), shared


def test_the_checker_sees_a_wrong_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from forewarn.flows import dispatch\nimport forewarn.cli\n")
    assert imported(bad) == {"flows", "cli"}


def test_the_wheel_lists_every_package_and_ships_the_root_templates() -> None:
    import tomllib

    project = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {
        ".".join(init.parent.relative_to(PACKAGE.parent).parts)
        for init in PACKAGE.rglob("__init__.py")
    }
    assert set(project["packages"]) == found | {"forewarn.templates"}
    assert project["package-dir"] == {"forewarn.templates": "templates"}
    assert (PACKAGE.parent / "templates" / "sms" / "en" / "opened.txt").is_file()


def test_one_template_file_is_overridden_and_the_rest_are_shipped(tmp_path: Path) -> None:
    from forewarn.texts import environment

    (tmp_path / "sms" / "en").mkdir(parents=True)
    (tmp_path / "sms" / "en" / "opened.txt").write_text("Ours: {{ operator }}")
    env = environment(override=str(tmp_path))
    assert env.get_template("sms/en/opened.txt").render(operator="Mill Road") == "Ours: Mill Road"
    shipped = env.get_template("sms/en/restored.txt").filename or ""
    assert Path(shipped).is_relative_to(PACKAGE.parent / "templates")
