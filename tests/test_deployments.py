"""prefect.yaml: every deployment's entrypoint loads, its parameters validate, and it
runs in the shared work pool on a schedule."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.flows import Flow, load_flow_from_entrypoint

from forewarn.cli.serve import serve
from forewarn.flows import FLOWS

ROOT = Path(__file__).resolve().parents[1]
SPEC: dict[str, Any] = yaml.safe_load((ROOT / "prefect.yaml").read_text())
DEPLOYMENTS = SPEC["deployments"]


def test_the_file_defines_the_flows_and_one_work_pool() -> None:
    assert SPEC["prefect-version"] == "3.8.8"
    pools = SPEC["definitions"]["work_pools"]
    assert list(pools) == ["forewarn"]
    names = {d["name"] for d in DEPLOYMENTS}
    assert {"detection-cycle", "dispatch", "publication", "follow-up", "mentions"} <= names
    assert len(names) == len(DEPLOYMENTS)


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d["name"])
def test_each_entrypoint_loads_and_its_parameters_validate(deployment: dict[str, Any]) -> None:
    path, _, name = deployment["entrypoint"].partition(":")
    assert path.startswith("flows/") and (ROOT / path).is_file()
    flow: Flow[..., Any] = load_flow_from_entrypoint(str(ROOT / path) + ":" + name)
    # The very flow object `forewarn serve` runs, not a copy that could drift from it.
    assert flow is FLOWS[deployment["name"]]
    assert flow.validate_parameters(deployment.get("parameters") or {}) is not None
    with pytest.raises(Exception, match="now"):
        flow.validate_parameters({"now": "not a time"})
    assert deployment["work_pool"]["name"] == "forewarn"
    [schedule] = deployment["schedules"]
    assert 0 < schedule["interval"] <= 3600


def test_serve_runs_the_same_flows_on_the_same_schedules() -> None:
    defaults = {name: param.default for name, param in inspect.signature(serve).parameters.items()}
    beat = {d["name"]: d["schedules"][0]["interval"] for d in DEPLOYMENTS}
    assert beat == {
        "detection-cycle": defaults["interval"],
        "dispatch": defaults["dispatch_every"],
        "publication": defaults["publish_every"],
        "follow-up": defaults["follow_up_every"],
        "mentions": defaults["mentions_every"],
    }
    source = inspect.getsource(serve)
    for name in beat:
        assert f'to_deployment("{name}"' in source
