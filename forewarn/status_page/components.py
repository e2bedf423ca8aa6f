"""The page's components: the operator's services and regions, each covering some
elements of the network, from a JSON file (or one for the whole service by default)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.engine import Connection

from forewarn.network import NetworkIndex
from forewarn.network.tree import IntArray
from forewarn.store import elements
from forewarn.texts import say

DEFAULT_ID = "broadband"


class ComponentConfigError(ValueError):
    """The components file cannot be used, and says why."""


@dataclass(frozen=True, slots=True)
class Component:
    """A service or region on the page, covering the subtrees of `elements`."""

    id: str
    name: str
    elements: tuple[str, ...]
    description: str | None = None
    group: str | None = None


def load_components(path: Path | None, conn: Connection) -> list[Component]:
    """Components from `path` (JSON: {"components": [{id, name, elements, ...}]}), or one
    component, the service, over the whole network when no file is configured (named as
    a service, never after the equipment at the top of the tree)."""
    if path is None:
        roots = conn.execute(
            select(elements.c.element_id)
            .where(elements.c.parent_id.is_(None))
            .order_by(elements.c.element_id)
        ).scalars()
        return [
            Component(id=DEFAULT_ID, name=say("component_default", None), elements=tuple(roots))
        ]
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        items = data["components"]
        components = [
            Component(
                id=str(item["id"]),
                name=str(item["name"]),
                elements=tuple(str(e) for e in item["elements"]),
                description=item.get("description"),
                group=item.get("group"),
            )
            for item in items
        ]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ComponentConfigError(f"components file {path}: {err!r}") from None
    if len({c.id for c in components}) != len(components):
        raise ComponentConfigError(f"components file {path}: component ids must be unique")
    return components


def coverage(index: NetworkIndex, component: Component, root: str) -> float:
    """The share (0..1) of a component's premises that a fault at `root` reaches."""
    tree = index.tree
    node = tree.index.get(root)
    if node is None:
        return 0.0
    total = hit = 0
    for element in component.elements:
        own = tree.index.get(element)
        if own is None:
            continue
        leaves = int(tree.leaf_count[own])
        total += leaves
        if tree.under(node, _one(own))[0]:  # the component lies inside the fault
            hit += leaves
        elif tree.under(own, _one(node))[0]:  # the fault lies inside the component
            hit += int(tree.leaf_count[node])
    return hit / total if total else 0.0


def component_status(share: float, major: float, critical: float) -> str:
    """Statuspage's component status from the share (0..1) of its premises that open
    faults reach together: below `major` degraded, from it a partial outage, from
    `critical` a major outage."""
    if share <= 0:
        return "operational"
    if share >= critical:
        return "major_outage"
    return "partial_outage" if share >= major else "degraded_performance"


def _one(node: int) -> IntArray:
    return np.array([node], dtype=np.int64)
