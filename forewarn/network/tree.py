"""The network topology as arrays: parents, depths and a pre-order numbering, so that
"everything under element X" is the contiguous range `order[X] .. order[X] + size[X]`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# Deeper chains than this are treated as a cycle in the parent links.
MAX_DEPTH = 64


class TopologyError(ValueError):
    """The parent links do not form a forest (a cycle, or a parent that does not exist)."""


@dataclass(frozen=True, slots=True)
class Tree:
    """A forest of elements, indexed 0..n-1, with vectorised subtree ranges."""

    ids: list[str]
    index: dict[str, int]
    parent: IntArray  # -1 for a root
    depth: IntArray
    order: IntArray  # pre-order position; a subtree is order[x] .. order[x] + size[x]
    size: IntArray  # elements in the subtree, itself included
    leaf_count: IntArray  # leaves (elements with no children) in the subtree

    @property
    def is_leaf(self) -> BoolArray:
        """True for elements with no children (CPEs, in a normal network)."""
        leaf: BoolArray = self.size == 1
        return leaf

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def build(cls, ids: Sequence[str], parent_ids: Sequence[str | None]) -> Tree:
        """Build from parallel lists of element ids and parent ids (None or "" for roots)."""
        id_list = list(ids)
        index = {element: i for i, element in enumerate(id_list)}
        if len(index) != len(id_list):
            raise TopologyError("duplicate element ids")
        try:
            parent = np.fromiter(
                (index[p] if p else -1 for p in parent_ids), dtype=np.int64, count=len(id_list)
            )
        except KeyError as err:
            raise TopologyError(f"unknown parent {err.args[0]!r}") from None
        depth = _depths(parent)
        size = _subtree_sums(parent, depth, np.ones(len(id_list), dtype=np.int64))
        leaf_count = _subtree_sums(parent, depth, (size == 1).astype(np.int64))
        order = _preorder(parent, depth, size)
        return cls(id_list, index, parent, depth, order, size, leaf_count)

    def ancestors_within(self, nodes: IntArray, targets: BoolArray) -> BoolArray:
        """For each node, whether any strict ancestor is marked in `targets`."""
        found = np.zeros(len(nodes), dtype=bool)
        current = self.parent[nodes]
        while True:
            alive = current >= 0
            if not alive.any():
                return found
            found[alive] |= targets[current[alive]]
            current = np.where(alive, self.parent[np.maximum(current, 0)], -1)

    def under(self, root: int, nodes: IntArray) -> BoolArray:
        """For each node, whether it lies in the subtree of `root` (root included)."""
        start = self.order[root]
        position = self.order[nodes]
        inside: BoolArray = (position >= start) & (position < start + self.size[root])
        return inside


def _depths(parent: IntArray) -> IntArray:
    depth = np.zeros(len(parent), dtype=np.int64)
    current = parent.copy()
    for _ in range(MAX_DEPTH):
        alive = current >= 0
        if not alive.any():
            return depth
        depth += alive
        current = np.where(alive, parent[np.maximum(current, 0)], -1)
    raise TopologyError(f"parent links form a cycle or are deeper than {MAX_DEPTH} levels")


def _subtree_sums(parent: IntArray, depth: IntArray, values: IntArray) -> IntArray:
    totals = values.copy()
    for level in range(int(depth.max(initial=0)), 0, -1):
        nodes = np.flatnonzero(depth == level)
        np.add.at(totals, parent[nodes], totals[nodes])
    return totals


def _preorder(parent: IntArray, depth: IntArray, size: IntArray) -> IntArray:
    order = np.zeros(len(parent), dtype=np.int64)
    for level in range(int(depth.max(initial=0)) + 1):
        nodes = np.flatnonzero(depth == level)
        if level:
            nodes = nodes[np.argsort(parent[nodes], kind="stable")]
        sizes = size[nodes]
        before = np.cumsum(sizes) - sizes  # sizes of earlier siblings (plus earlier groups)
        if level == 0:
            order[nodes] = before
            continue
        groups = parent[nodes]
        first = np.r_[True, groups[1:] != groups[:-1]]
        group_start = np.maximum.accumulate(np.where(first, np.arange(len(nodes)), 0))
        offset = before - before[group_start]
        order[nodes] = order[groups] + 1 + offset
    return order


def unrooted(parent: IntArray) -> BoolArray:
    """Elements whose parent chain never reaches a root: on or under a cycle."""
    current = parent.copy()
    for _ in range(MAX_DEPTH):
        alive = current >= 0
        if not alive.any():
            break
        current = np.where(alive, parent[np.maximum(current, 0)], -1)
    return current >= 0
