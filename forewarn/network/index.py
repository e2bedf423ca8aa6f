"""In-memory index of the network: which premises (and customers) a fault reaches, by
topology or by area. Built once from the store, queried in micro- to milliseconds."""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.engine import Connection

from forewarn.network.tree import IntArray, Tree
from forewarn.store import customers, elements, get_meta, premises

FloatArray = npt.NDArray[np.float64]
EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True, slots=True)
class NetworkIndex:
    """Elements as a tree; premises sorted by their element's place in it; customers by premise."""

    tree: Tree
    version: str
    premise_ids: list[str]
    premise_position: IntArray  # tree order of each premise's element, ascending
    lat: FloatArray  # NaN where unknown
    lon: FloatArray
    customer_ids: list[str]
    customer_start: IntArray  # customers of premise p: customer_ids[start[p]:start[p + 1]]
    # Each premise's (street, postcode) as a number into `streets`: naming the place a
    # fault reaches is then a count in memory, not a read of its premises from the store.
    street_code: IntArray
    streets: tuple[tuple[str, str], ...]

    @classmethod
    def load(cls, conn: Connection) -> NetworkIndex:
        """Read elements, premises and customers from the store and index them."""
        rows = conn.execute(select(elements.c.element_id, elements.c.parent_id)).all()
        tree = Tree.build([r[0] for r in rows], [r[1] for r in rows])
        del rows
        prem = conn.execute(
            select(
                premises.c.premise_id, premises.c.element_id, premises.c.lat, premises.c.lon,
                premises.c.street, premises.c.postcode,
            )
        ).all()  # fmt: skip
        index = tree.index
        position = np.fromiter(
            (tree.order[index[r[1]]] if r[1] in index else -1 for r in prem),
            dtype=np.int64,
            count=len(prem),
        )
        keep = np.flatnonzero(position >= 0)
        sort = keep[np.argsort(position[keep], kind="stable")]
        premise_ids = [prem[int(i)][0] for i in sort]
        lat = np.array([np.nan if prem[int(i)][2] is None else prem[int(i)][2] for i in sort])
        lon = np.array([np.nan if prem[int(i)][3] is None else prem[int(i)][3] for i in sort])
        codes: dict[tuple[str, str], int] = {}
        street_code = np.fromiter(
            (codes.setdefault((prem[int(i)][4], prem[int(i)][5]), len(codes)) for i in sort),
            dtype=np.int64,
            count=len(sort),
        )
        del prem
        row_of = {p: i for i, p in enumerate(premise_ids)}
        cust = conn.execute(select(customers.c.customer_id, customers.c.premise_id)).all()
        owner = np.fromiter((row_of.get(c[1], -1) for c in cust), dtype=np.int64, count=len(cust))
        cust_sort = np.argsort(owner, kind="stable")
        cust_sort = cust_sort[owner[cust_sort] >= 0]
        customer_ids = [cust[int(i)][0] for i in cust_sort]
        counts = np.bincount(owner[cust_sort], minlength=len(premise_ids))
        customer_start = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        return cls(
            tree=tree,
            version=get_meta(conn, "network_version") or "",
            premise_ids=premise_ids,
            premise_position=position[sort],
            lat=lat.astype(np.float64),
            lon=lon.astype(np.float64),
            customer_ids=customer_ids,
            customer_start=customer_start,
            street_code=street_code,
            streets=tuple(codes),
        )

    def premises_under(self, element_id: str) -> IntArray:
        """Premise rows served by `element_id` or anything below it."""
        node = self.tree.index.get(element_id)
        if node is None:
            raise KeyError(f"unknown element {element_id!r}")
        start = self.tree.order[node]
        lo, hi = np.searchsorted(self.premise_position, [start, start + self.tree.size[node]])
        return np.arange(lo, hi, dtype=np.int64)

    def down_mask(self, element_ids: Sequence[str], down: Collection[str]) -> npt.NDArray[np.bool_]:
        """For each element, whether it or anything above it is in `down` (vectorised)."""
        tree = self.tree
        roots = np.array([tree.index[e] for e in down if e in tree.index], dtype=np.int64)
        if len(roots) == 0 or not element_ids:
            return np.zeros(len(element_ids), dtype=bool)
        starts = tree.order[roots]
        order = np.argsort(starts, kind="stable")
        starts = starts[order]
        # Subtrees nest or are disjoint: a position is covered when the furthest end of
        # the subtrees starting at or before it lies beyond it.
        reach = np.maximum.accumulate((tree.order[roots] + tree.size[roots])[order])
        nodes = np.array([tree.index.get(e, -1) for e in element_ids], dtype=np.int64)
        position = np.where(nodes >= 0, tree.order[np.maximum(nodes, 0)], -1)
        at = np.searchsorted(starts, position, side="right") - 1
        covered: npt.NDArray[np.bool_] = (at >= 0) & (nodes >= 0)
        covered &= reach[np.maximum(at, 0)] > position
        return covered

    def lowest_common_element(self, rows: IntArray) -> str:
        """The deepest element whose subtree serves every one of these premise rows."""
        tree = self.tree
        positions = self.premise_position[rows]
        low, high = int(positions.min()), int(positions.max())
        node_at = np.empty_like(tree.order)
        node_at[tree.order] = np.arange(len(tree.order))
        node = int(node_at[low])
        while tree.parent[node] >= 0 and tree.order[node] + tree.size[node] <= high:
            node = int(tree.parent[node])
        return tree.ids[node]

    def premises_within(self, lat: float, lon: float, radius_m: float) -> IntArray:
        """Premise rows within `radius_m` metres of a point (great-circle distance)."""
        dlat = math.degrees(radius_m / EARTH_RADIUS_M)
        dlon = dlat / max(math.cos(math.radians(lat)), 1e-6)
        box = np.flatnonzero((np.abs(self.lat - lat) <= dlat) & (np.abs(self.lon - lon) <= dlon))
        phi1, phi2 = math.radians(lat), np.radians(self.lat[box])
        a = (
            np.sin((phi2 - phi1) / 2) ** 2
            + math.cos(phi1) * np.cos(phi2) * np.sin(np.radians(self.lon[box] - lon) / 2) ** 2
        )
        distance = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(a, 1.0)))
        found: IntArray = box[distance <= radius_m]
        return found

    def premises_in_polygon(self, ring: Sequence[tuple[float, float]]) -> IntArray:
        """Premise rows inside a polygon ring given as (lon, lat) pairs (GeoJSON order)."""
        if len(ring) < 3:
            raise ValueError("a polygon needs at least three corners")
        xs = np.array([p[0] for p in ring], dtype=np.float64)
        ys = np.array([p[1] for p in ring], dtype=np.float64)
        box = np.flatnonzero(
            (self.lon >= xs.min())
            & (self.lon <= xs.max())
            & (self.lat >= ys.min())
            & (self.lat <= ys.max())
        )
        px, py = self.lon[box], self.lat[box]
        inside = np.zeros(len(box), dtype=bool)
        # Ray casting, one polygon edge at a time, vectorised over the points.
        for x1, y1, x2, y2 in zip(xs, ys, np.roll(xs, -1), np.roll(ys, -1), strict=True):
            crosses = (y1 > py) != (y2 > py)
            if not crosses.any():
                continue
            x_at = x1 + (py - y1) * (x2 - x1) / np.where(y2 == y1, 1.0, y2 - y1)
            inside ^= crosses & (px < x_at)
        return box[inside]

    def customers_of(self, rows: IntArray) -> list[str]:
        """Customer ids at the given premise rows (opt-outs apply when messages are queued)."""
        if len(rows) == 0:
            return []
        starts, ends = self.customer_start[rows], self.customer_start[rows + 1]
        if len(rows) > 1 and np.all(np.diff(rows) == 1):  # a contiguous range: one slice
            return self.customer_ids[int(starts[0]) : int(ends[-1])]
        return [
            self.customer_ids[i] for s, e in zip(starts, ends, strict=True) for i in range(s, e)
        ]
