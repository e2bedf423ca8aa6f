"""From the elements that count as down to faults: fold children into a reported parent,
and infer an unmonitored parent from a burst of its CPEs going down."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import numpy as np
import numpy.typing as npt

from forewarn.detection.damping import Thresholds
from forewarn.network.tree import BoolArray, IntArray, Tree

Scope = Literal["area", "premise"]
Reason = Literal["reported", "inferred", "single"]


@dataclass(frozen=True, slots=True)
class Fault:
    """One root cause: `root` is down, taking `down_elements` (the ones seen down) with it."""

    root: str
    down_elements: tuple[str, ...]
    since: datetime
    confidence: float
    scope: Scope
    reason: Reason


def detect(tree: Tree, down: Mapping[str, datetime], thresholds: Thresholds) -> list[Fault]:
    """Turn the set of down elements (with the start of each outage) into faults."""
    known = [(tree.index[e], t) for e, t in down.items() if e in tree.index]
    if not known:
        return []
    nodes = np.fromiter((i for i, _ in known), dtype=np.int64, count=len(known))
    since = np.fromiter((t.timestamp() for _, t in known), dtype=np.float64, count=len(known))
    leaf = tree.is_leaf[nodes]

    # Reported faults: a monitored element that is not a CPE; anything below it folds in.
    reported = np.zeros(len(tree), dtype=bool)
    reported[nodes[~leaf]] = True
    folded = tree.ancestors_within(nodes, reported)
    roots = [int(n) for n in nodes[~leaf & ~folded]]
    reasons: list[Reason] = ["reported"] * len(roots)

    # Inference over the CPEs that no reported fault explains.
    loose = leaf & ~folded
    inferred = _infer(tree, nodes[loose], since[loose], thresholds)
    roots += inferred
    reasons += ["inferred"] * len(inferred)

    return _group(tree, nodes, since, roots, reasons)


def _group(
    tree: Tree,
    nodes: IntArray,
    since: npt.NDArray[np.float64],
    roots: list[int],
    reasons: list[Reason],
) -> list[Fault]:
    """Give each down element to its topmost root; what no root explains stands alone."""
    is_root = np.zeros(len(tree), dtype=bool)
    is_root[roots] = True
    reason_of = dict(zip(roots, reasons, strict=True))
    owner = np.where(is_root[nodes], nodes, -1)
    current = tree.parent[nodes]
    while (alive := current >= 0).any():
        hit = alive & is_root[np.maximum(current, 0)]
        owner[hit] = current[hit]  # walking upwards, so the topmost root wins
        current = np.where(alive, tree.parent[np.maximum(current, 0)], -1)
    owner = np.where(owner >= 0, owner, nodes)
    by_owner = np.argsort(owner, kind="stable")
    cuts = np.flatnonzero(np.diff(owner[by_owner])) + 1
    faults = []
    for group in np.split(by_owner, cuts):
        root = int(owner[group[0]])
        faults.append(_fault(tree, root, reason_of.get(root, "single"), nodes[group], since[group]))
    faults.sort(key=lambda f: (f.since, f.root))
    return faults


def _infer(
    tree: Tree, leaves: IntArray, since: npt.NDArray[np.float64], th: Thresholds
) -> list[int]:
    """The topmost elements where most CPEs went down, enough of them within the window."""
    if len(leaves) < th.burst_min_down:
        return []
    n = len(tree)
    down_count = np.zeros(n, dtype=np.int64)
    newest = np.full(n, -np.inf)
    _walk_up(tree, leaves, lambda anc, rows: np.add.at(down_count, anc, 1))
    _walk_up(tree, leaves, lambda anc, rows: np.maximum.at(newest, anc, since[rows]))
    recent = np.zeros(n, dtype=np.int64)
    window = th.burst_window.total_seconds()

    def count_recent(anc: IntArray, rows: IntArray) -> None:
        np.add.at(recent, anc, (since[rows] >= newest[anc] - window).astype(np.int64))

    _walk_up(tree, leaves, count_recent)
    qualifies: BoolArray = (
        (down_count >= th.burst_min_down)
        & (down_count >= th.burst_ratio * tree.leaf_count)
        & (recent >= th.burst_min_down)
    )
    candidates = np.flatnonzero(qualifies)
    topmost = candidates[~tree.ancestors_within(candidates, qualifies)]
    return [int(c) for c in topmost]


def _walk_up(tree: Tree, leaves: IntArray, visit: object) -> None:
    """Call visit(ancestor_indices, leaf_rows) once per level, from parents to roots."""
    assert callable(visit)
    rows = np.arange(len(leaves))
    current = tree.parent[leaves]
    while True:
        alive = current >= 0
        if not alive.any():
            return
        rows, current = rows[alive], current[alive]
        visit(current, rows)
        current = tree.parent[current]


def _fault(
    tree: Tree, root: int, reason: Reason, members: IntArray, since: npt.NDArray[np.float64]
) -> Fault:
    leaves = int(tree.leaf_count[root])
    if reason == "inferred":
        confidence = float(np.count_nonzero(tree.is_leaf[members])) / max(leaves, 1)
    else:
        confidence = 1.0
    scope: Scope = "premise" if leaves <= 1 else "area"
    return Fault(
        root=tree.ids[root],
        down_elements=tuple(sorted(tree.ids[int(m)] for m in members)),
        since=datetime.fromtimestamp(float(since.min()), UTC),
        confidence=round(confidence, 3),
        scope=scope,
        reason=reason,
    )
