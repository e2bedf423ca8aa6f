"""`forewarn run-once` without a Prefect server: the pipeline in this process, no
temporary Prefect server to start (it cost 10-15 s a run, most of a cron'd cycle)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from forewarn.cli import app

PROBE = """
import json, sys
from typer.testing import CliRunner
from forewarn.cli import app
result = CliRunner().invoke(app, ["run-once", "--at", "2026-11-24T10:00:00+00:00"])
print(json.dumps({"exit": result.exit_code, "output": result.output,
                  "prefect": sorted(m for m in sys.modules if m.split(".")[0] == "prefect")[:3]}))
"""


def test_run_once_without_a_prefect_server_runs_the_cycle_without_prefect(tmp_path: Path) -> None:
    feed = tmp_path / "feed.jsonl"
    feed.write_text('{"element": "cpe1", "state": "down", "at": "2026-11-24T09:59:00+00:00"}\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FOREWARN_", "PREFECT_"))}
    env.update(FOREWARN_DB_URL=f"sqlite:///{tmp_path / 'store.db'}", FOREWARN_JSONL_FEED=str(feed))
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=300, check=True,
    )  # fmt: skip
    seen = json.loads(result.stdout.splitlines()[-1])
    assert seen["exit"] == 0, seen["output"]
    assert "signals read 1," in seen["output"]  # the cycle ran, and read the feed
    assert seen["prefect"] == []  # not even imported
    assert (tmp_path / "site" / "index.html").exists()  # and published the site


@pytest.mark.integration
@pytest.mark.usefixtures("prefect_harness")
def test_run_once_with_a_prefect_server_runs_the_flows_it_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect import get_client
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.settings import PREFECT_API_URL

    # The harness's server, named the way an operator names theirs.
    monkeypatch.setenv("PREFECT_API_URL", str(PREFECT_API_URL.value()))
    monkeypatch.setenv("FOREWARN_DB_URL", f"sqlite:///{tmp_path / 'store.db'}")
    monkeypatch.setenv("FOREWARN_SITE_DIR", str(tmp_path / "site"))
    monkeypatch.setenv("FOREWARN_OUTBOX", str(tmp_path / "outbox"))
    with get_client(sync_client=True) as client:
        before = {run.id for run in client.read_flow_runs(limit=200, sort=FlowRunSort.ID_DESC)}
    result = CliRunner().invoke(app, ["run-once", "--at", "2026-11-24T10:00:00+00:00"])
    assert result.exit_code == 0, result.output
    with get_client(sync_client=True) as client:
        runs = [
            run
            for run in client.read_flow_runs(limit=200, sort=FlowRunSort.ID_DESC)
            if run.id not in before
        ]
        names = sorted(client.read_flow(run.flow_id).name for run in runs)
    assert names == ["detection-cycle", "follow-up"]
