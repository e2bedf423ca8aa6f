"""The tree reads as the pipeline: a stage imports only stages before it, stages at the
same level do not import each other, no stage imports the entry points, and no forewarn
module imports itself round a circle (ARCHITECTURE.md)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "forewarn"
# The stages in order, as levels: a stage imports only stages on earlier levels, so the
# two on one level (notifiers and status_page) never import each other. The channels
# (what every stage may know of one) sit under all but the feeds. `context` (what a run
# needs), `reports` and `steps` (what the steps say and how they run) and `pipeline` (the
# one composition of the cycle) are single modules between the stages and the flows.
LEVELS = [
    ["feeds"], ["channels"], ["network"], ["detection"], ["incidents"],
    ["notifiers", "status_page"], ["context", "reports", "steps"], ["pipeline"], ["flows"],
]  # fmt: skip
STAGES = [stage for level in LEVELS for stage in level]
LEVEL = {stage: number for number, level in enumerate(LEVELS) for stage in level}
# The entry points (the command line, the receiver and the mailbox, the demo, drills, and
# what only they use) sit on top of everything.
TOP = {"cli", "demo", "drill", "receiver", "mailbox"}
# A module this long must say why at its top, in its docstring.
MAX_LINES = 400
REASON = "long because"


def imported(path: Path) -> set[str]:
    """The forewarn modules a file imports, as their first name below forewarn."""
    return {name.split(".")[1] for name in imports(path) if name.count(".") >= 1}


def imports(path: Path) -> set[str]:
    """Every dotted forewarn name a file imports (`from a import b` gives `a.b`), inside
    functions too, except under `if TYPE_CHECKING:`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for statement in node.body
        for inner in ast.walk(statement)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {name for name in found if name.startswith("forewarn.")}


def modules() -> dict[str, Path]:
    """Every forewarn module by its dotted name (a package by its own name)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def graph() -> dict[str, set[str]]:
    """Module -> the forewarn modules it imports: `from a import b` is an arrow to module
    `a.b` when there is one, else to `a`; a name that is not a module counts as the
    nearest module above it."""
    known = modules()

    def module(name: str) -> str:
        while name not in known:
            name = name.rpartition(".")[0]
        return name

    return {
        name: {module(target) for target in imports(path)} - {name} for name, path in known.items()
    }


def cycles(arrows: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(arrows.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(arrows):
        if node not in index:
            visit(node)
    return found


def test_each_stage_imports_only_stages_on_earlier_levels() -> None:
    wrong = []
    for stage in STAGES:
        folder = PACKAGE / stage
        paths = sorted(folder.rglob("*.py")) if folder.is_dir() else [PACKAGE / f"{stage}.py"]
        for path in paths:
            for name in imported(path):
                if name in TOP or (name in LEVEL and name != stage and LEVEL[name] >= LEVEL[stage]):
                    wrong.append(f"{path.relative_to(PACKAGE)} imports forewarn.{name}")
    assert wrong == []


def test_no_forewarn_modules_import_each_other_round_a_circle() -> None:
    assert cycles(graph()) == []


def test_the_cycle_finder_sees_a_circle() -> None:
    arrows = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(arrows) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def unexplained_long_modules(root: Path) -> list[str]:
    """The modules under `root` over MAX_LINES lines whose docstring gives no reason."""
    unexplained = []
    for path in sorted(root.rglob("*.py")):
        name = path.relative_to(root).as_posix()
        text = path.read_text(encoding="utf-8")
        if text.count("\n") <= MAX_LINES:
            continue
        if REASON not in (ast.get_docstring(ast.parse(text)) or "").lower():
            unexplained.append(f"{name}: {text.count(chr(10))} lines")
    return unexplained


def test_every_long_module_says_why_at_its_top() -> None:
    assert unexplained_long_modules(PACKAGE) == []


def test_the_length_check_sees_a_long_module_without_a_reason(tmp_path: Path) -> None:
    body = "x = 1\n" * MAX_LINES
    (tmp_path / "short.py").write_text('"""Short."""\n')
    (tmp_path / "silent.py").write_text('"""Many lines."""\n' + body)
    (tmp_path / "said.py").write_text('"""Many lines.\n\nLong because it must be."""\n' + body)
    assert unexplained_long_modules(tmp_path) == [f"silent.py: {MAX_LINES + 1} lines"]


def test_shared_modules_import_no_stage() -> None:
    store = sorted((PACKAGE / "store").glob("*.py"))
    assert store, "forewarn/store/ is the shared base"
    for path in [
        *store,
        *(PACKAGE / f"{name}.py" for name in ("clock", "config", "durations", "texts")),
    ]:
        assert imported(path) & (set(STAGES) | TOP) == set(), path.relative_to(PACKAGE)


def test_the_checker_sees_a_wrong_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from typing import TYPE_CHECKING\n"
        "from forewarn.flows import dispatch\n"
        "def later() -> None:\n"
        "    import forewarn.cli\n"
        "if TYPE_CHECKING:\n"
        "    from forewarn.pipeline import Steps\n"
    )
    assert imported(bad) == {"flows", "cli"}
    assert imports(bad) == {"forewarn.flows.dispatch", "forewarn.cli"}


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


# The incident record: incidents, their numbered updates, their premises (cases) and the
# history of their estimates. One module writes it (forewarn/incidents/record.py).
RECORD_TABLES = "incidents|incident_updates|incident_premises|etr_history"
RECORD_WRITER = PACKAGE / "incidents" / "record.py"
_WRITES = re.compile(
    rf"\b(?:insert|update|delete)\(\s*(?:{RECORD_TABLES})\b"
    rf"|\b(?:{RECORD_TABLES})\.(?:insert|update|delete)\("
    rf"|\b(?:upsert|insert_ignoring_conflicts|bulk_insert)\(\s*\w+,\s*(?:{RECORD_TABLES})\b"
    rf"|\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(?:{RECORD_TABLES})\b"  # SQL as text
)


def record_writers(root: Path) -> list[str]:
    """The modules under `root`, other than the record's writer and the migrations (which
    shape the tables), that write an incident record table themselves."""
    return sorted(
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if path != RECORD_WRITER and "migrations" not in path.parts
        and _WRITES.search(path.read_text(encoding="utf-8"))
    )  # fmt: skip


def test_one_module_writes_incidents_updates_and_cases() -> None:
    assert record_writers(PACKAGE) == []


def test_the_writer_check_sees_a_write_elsewhere(tmp_path: Path) -> None:
    (tmp_path / "reads.py").write_text("select(incidents).where(incidents.c.id == 1)\n")
    (tmp_path / "a.py").write_text("conn.execute(update(incidents).values(status='x'))\n")
    (tmp_path / "b.py").write_text("conn.execute(incident_updates.insert().values(seq=1))\n")
    (tmp_path / "c.py").write_text("insert_ignoring_conflicts(conn, incident_premises, rows)\n")
    (tmp_path / "d.py").write_text('text("UPDATE etr_history SET announced = 1")\n')
    assert record_writers(tmp_path) == ["a.py", "b.py", "c.py", "d.py"]


# One way to write: every writer (pipeline, receiver, ops, drill, import) goes through
# forewarn.store.writing (busy retry, writers taking turns); only the store begins one.
_BEGINS = re.compile(r"\.begin\(\)|\.commit\(\)")  # an explicit one, or one a commit ends


def own_transactions(root: Path) -> list[str]:
    """The modules under `root`, outside the store package, that begin a transaction."""
    return sorted(
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if "store" not in path.relative_to(root).parts[:1]
        and _BEGINS.search(path.read_text(encoding="utf-8"))
    )


def test_only_the_store_begins_a_transaction() -> None:
    assert own_transactions(PACKAGE) == []
    assert own_transactions(PACKAGE.parent / "flows") == []


def test_the_transaction_check_sees_one_begun_elsewhere(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "transactions.py").write_text("with engine.begin() as conn: ...\n")
    (tmp_path / "ops.py").write_text("with ctx.engine.begin() as conn: ...\n")
    (tmp_path / "auto.py").write_text("conn.execute(q)\nconn.commit()\n")
    assert own_transactions(tmp_path) == ["auto.py", "ops.py"]
