"""tests/ and bench/ share testkit/ and never import each other, and testkit/ imports
neither: the support code has one home and no import runs round a circle."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Each folder, and the top-level packages it must not import.
FORBIDDEN = {"tests": {"bench"}, "bench": {"tests"}, "testkit": {"tests", "bench"}}


def top_level_imports(path: Path) -> set[str]:
    """The first names of every absolute import in a file, inside functions too."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
    return found


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_a_support_folder_imports_only_what_it_may(folder: str) -> None:
    crossing = {
        str(path.relative_to(ROOT)): sorted(top_level_imports(path) & FORBIDDEN[folder])
        for path in sorted((ROOT / folder).rglob("*.py"))
        if "node_modules" not in path.parts
    }
    assert {path: names for path, names in crossing.items() if names} == {}


def test_testkit_is_not_shipped_in_the_wheel() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert not any(name.startswith("testkit") for name in project["tool"]["setuptools"]["packages"])
