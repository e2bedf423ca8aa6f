"""Detection: the tree, damping, reported faults, root cause without a monitor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from forewarn.detection import Thresholds, detect
from forewarn.detection.damping import ElementState, apply_signals, effective_down, settle
from forewarn.feeds import Signal
from forewarn.network.tree import TopologyError, Tree
from tests.town import CABINETS, topology_rows

T0 = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
TH = Thresholds()


@pytest.fixture(scope="module")
def tree() -> Tree:
    rows = topology_rows()
    return Tree.build([str(r[0]) for r in rows], [str(r[1]) or None for r in rows])


def down_at(elements: list[str], at: datetime = T0) -> dict[str, datetime]:
    return dict.fromkeys(elements, at)


def cpes(cabinet: str) -> list[str]:
    return [f"cpe{n}" for n in CABINETS[cabinet]]


def test_tree_ranges_cover_exactly_each_subtree(tree: Tree) -> None:
    cab_a = tree.index["cabA"]
    inside = tree.under(cab_a, np.arange(len(tree)))
    assert sorted(tree.ids[i] for i in np.flatnonzero(inside)) == sorted(["cabA", *cpes("cabA")])
    assert int(tree.leaf_count[tree.index["pon1"]]) == 8
    assert int(tree.leaf_count[tree.index["ex1"]]) == 12
    assert tree.is_leaf[tree.index["cpe45"]] and not tree.is_leaf[tree.index["cabA"]]


@pytest.mark.parametrize(
    ("ids", "parents", "message"),
    [
        (["a", "b"], [None, "zz"], "unknown parent"),
        (["a", "b"], ["b", "a"], "cycle"),
        (["a", "a"], [None, None], "duplicate"),
    ],
    ids=["unknown-parent", "cycle", "duplicate"],
)
def test_tree_rejects_broken_topologies(
    ids: list[str], parents: list[str | None], message: str
) -> None:
    with pytest.raises(TopologyError, match=message):
        Tree.build(ids, parents)


def test_burst_of_cpes_infers_the_unmonitored_cabinet(tree: Tree) -> None:
    faults = detect(tree, down_at(cpes("cabA")[:3]), TH)
    assert [(f.root, f.reason, f.scope) for f in faults] == [("cabA", "inferred", "area")]
    assert faults[0].confidence == 0.75
    assert set(faults[0].down_elements) == set(cpes("cabA")[:3])


def test_two_cabinets_down_infer_their_pon_not_two_faults(tree: Tree) -> None:
    faults = detect(tree, down_at(cpes("cabA") + cpes("cabB")), TH)
    assert [f.root for f in faults] == ["pon1"]


def test_a_lone_cpe_is_a_single_premise_fault(tree: Tree) -> None:
    faults = detect(tree, down_at(["cpe45"]), TH)
    assert [(f.root, f.reason, f.scope) for f in faults] == [("cpe45", "single", "premise")]


def test_two_of_four_is_not_most_so_no_area_fault(tree: Tree) -> None:
    faults = detect(tree, down_at(cpes("cabA")[:2]), TH)
    assert {f.root for f in faults} == set(cpes("cabA")[:2])
    assert all(f.scope == "premise" for f in faults)


def test_cpes_down_long_apart_are_not_a_burst(tree: Tree) -> None:
    down = down_at(cpes("cabA")[:2], T0 - timedelta(days=3)) | down_at(cpes("cabA")[2:3])
    faults = detect(tree, down, TH)
    assert "cabA" not in {f.root for f in faults}
    assert len(faults) == 3


def test_reported_element_folds_its_childrens_alerts(tree: Tree) -> None:
    down = down_at(["olt1", "pon1", "cabA", *cpes("cabA"), "cpe2"])
    faults = detect(tree, down, TH)
    assert len(faults) == 1
    assert (faults[0].root, faults[0].reason) == ("olt1", "reported")
    assert "cpe2" in faults[0].down_elements


def test_thresholds_are_configurable(tree: Tree) -> None:
    strict = Thresholds(burst_ratio=1.0)
    assert {f.root for f in detect(tree, down_at(cpes("cabA")[:3]), strict)} == set(
        cpes("cabA")[:3]
    )


def signal(element: str, state: str, at: datetime) -> Signal:
    return Signal(element, state, at, "test")  # type: ignore[arg-type]


def run(
    states: dict[str, ElementState], signals: list[Signal], now: datetime
) -> dict[str, datetime]:
    apply_signals(states, signals, lambda e: True)
    settle(states, now, TH)
    return effective_down(states)


def test_damping_holds_a_new_fault_until_it_has_lasted() -> None:
    states: dict[str, ElementState] = {}
    assert run(states, [signal("cabA", "down", T0)], T0 + timedelta(seconds=60)) == {}
    assert run(states, [], T0 + TH.down_after) == {"cabA": T0}


def test_a_flapping_element_never_counts_as_down() -> None:
    states: dict[str, ElementState] = {}
    bounce = [
        signal("cabA", "down" if i % 2 == 0 else "up", T0 + timedelta(seconds=45 * i))
        for i in range(12)
    ]
    for step in range(0, 12, 2):  # a cycle every 90 s while it bounces
        now = T0 + timedelta(seconds=45 * step + 50)
        assert run(states, bounce[step : step + 2], now) == {}
    assert run(states, [], T0 + timedelta(hours=1)) == {}


def test_a_fault_clears_only_after_staying_up() -> None:
    states: dict[str, ElementState] = {}
    run(states, [signal("cabA", "down", T0)], T0 + timedelta(minutes=5))
    up = T0 + timedelta(minutes=30)
    assert run(states, [signal("cabA", "up", up)], up + timedelta(minutes=1)) == {"cabA": T0}
    # a bounce while clearing keeps the same outage open
    blip = up + timedelta(minutes=2)
    assert run(states, [signal("cabA", "down", blip)], blip) == {"cabA": T0}
    back = blip + timedelta(seconds=20)
    assert run(states, [signal("cabA", "up", back)], back + TH.up_after) == {}


def test_repeated_and_older_signals_are_ignored() -> None:
    states: dict[str, ElementState] = {}
    changed, _ = apply_signals(states, [signal("cabA", "down", T0)], lambda e: True)
    assert changed == {"cabA"}
    again, _ = apply_signals(
        states, [signal("cabA", "down", T0), signal("cabA", "up", T0 - timedelta(minutes=1))],
        lambda e: True,
    )  # fmt: skip
    assert again == set()
    assert states["cabA"].state == "down"


def test_unknown_elements_are_rejected_and_host_port_instances_match() -> None:
    states: dict[str, ElementState] = {}
    known = {"olt1"}.__contains__
    signals = [signal("olt1:9100", "down", T0), signal("nowhere", "down", T0)]
    changed, rejects = apply_signals(states, signals, known)
    assert changed == {"olt1"}
    assert [r.reason for r in rejects] == ["unknown element 'nowhere'"]
