"""`forewarn demo` itself, as a newcomer runs it."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path


def test_the_demo_runs_end_to_end_and_tells_only_the_right_customers(tmp_path: Path) -> None:
    command = shutil.which("forewarn") or str(Path(sys.executable).parent / "forewarn")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOREWARN_")}
    env["COLUMNS"] = "200"  # rich wraps at the terminal width; keep lines whole
    result = subprocess.run(
        [command, "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "fault at ex0-olt0-pon3-cab2 (inferred, area" in out
    assert "incidents opened" in out and "incidents resolved" in out
    assert "not told: their line was fine" in out
    messages = [
        json.loads(line)
        for path in (tmp_path / "outbox").glob("*.jsonl")
        for line in path.read_text().splitlines()
    ]
    # 16 premises behind the cabinet; every message is for one of them
    personal = [m for m in messages if "customer_id" in m]
    premises = {int(m["customer_id"][1:]) for m in personal}
    assert premises and all(224 <= p < 240 for p in premises)
    assert {m["update_seq"] for m in personal} == {1, 2}
    # The public thread: one post per update, area-level words only.
    public = [m for m in messages if "customer_id" not in m]
    assert [(m["channel"], m["update_seq"]) for m in public] == [("social", 1), ("social", 2)]
    assert "cpe901" not in out.split("fault at")[-1]  # the flapping CPE never became a fault
    # No personal data anywhere on the published site.
    with (tmp_path / "forewarn-demo/customers.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    private = {r[k] for r in rows for k in ("phone", "email", "address") if r[k]}
    for post in public:
        assert not [p for p in private if p in post["body"]], post
    for path in (tmp_path / "site").rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert not [p for p in private if p in text], path
    summary = json.loads((tmp_path / "site/api/v2/summary.json").read_text())
    assert summary["status"]["indicator"] == "none"  # all restored at the end
    assert (tmp_path / "site/index.html").exists()
