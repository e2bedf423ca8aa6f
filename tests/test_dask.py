"""Big fan-outs on a Dask task runner, with no change to the flows: the dispatch flow
run with FOREWARN_DASK_ADDRESS=local sends from Dask's worker processes, each message
once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# The flow runs on Prefect's temporary server and a local Dask cluster.
pytestmark = pytest.mark.integration

ROOT = Path(__file__).parent.parent

SCRIPT = """
import json, os
from datetime import UTC, datetime
from testkit.ledger_data import fill_ledger
from forewarn.flows import dispatch
from forewarn.store import make_engine

fill_ledger(make_engine(os.environ["FOREWARN_DB_URL"]), 300, ("sms", "email"), datetime.now(UTC))
report = dispatch()
print(json.dumps({"sent": report.sent, "pid": os.getpid()}))
"""


def test_the_dispatch_flow_runs_its_tasks_on_dask_worker_processes(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "FOREWARN_DB_URL": f"sqlite:///{tmp_path / 'dask.db'}",
        "FOREWARN_OUTBOX": str(tmp_path / "outbox"),
        "FOREWARN_JOURNAL_DIR": str(tmp_path / "journal"),
        "FOREWARN_QUIET_HOURS": "",
        "FOREWARN_SLEEP_HOURS": "",
        "FOREWARN_DASK_ADDRESS": "local",
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
        "DO_NOT_TRACK": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["sent"] == 600
    for channel in ("sms", "email"):
        lines = (tmp_path / "outbox" / f"{channel}.jsonl").read_text().splitlines()
        customers = [json.loads(line)["customer_id"] for line in lines]
        assert len(customers) == len(set(customers)) == 300
    # Each process journals its own outcomes: the sends happened in Dask's workers.
    writers = {p.name.split("-")[1] for p in (tmp_path / "journal").glob("journal-*.jsonl")}
    assert writers and str(result["pid"]) not in writers
