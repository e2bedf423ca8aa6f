"""One detection step over the store: apply signals, settle damping, find faults."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Connection

from forewarn.detection import states as state_store
from forewarn.detection.damping import (
    ElementState,
    Thresholds,
    apply_signals,
    effective_down,
    settle,
)
from forewarn.detection.rootcause import Fault, detect
from forewarn.feeds import Reject, Signal
from forewarn.network.tree import Tree


@dataclass(slots=True)
class Detection:
    """Faults now, the elements that count as down, and what is still within damping."""

    faults: list[Fault] = field(default_factory=list)
    down: set[str] = field(default_factory=set)
    pending: int = 0
    rejects: list[Reject] = field(default_factory=list)
    # When damping next settles one of the pending elements (None: nothing pending).
    settles_at: datetime | None = None


def alertmanager_down(conn: Connection) -> list[str]:
    """Elements currently held down on Alertmanager's word (to notice alerts that ended)."""
    return [
        s.element
        for s in state_store.load(conn).values()
        if s.state != "up" and s.source == "alertmanager"
    ]


def run_detection(
    conn: Connection, tree: Tree, signals: Sequence[Signal], now: datetime, thresholds: Thresholds
) -> Detection:
    """Apply `signals` to the stored states, settle them at `now`, and detect faults."""
    states = state_store.load(conn)
    changed, rejects = apply_signals(states, signals, lambda e: e in tree.index, now)
    settled, forgettable = settle(states, now, thresholds)
    state_store.save(conn, states, changed | settled, forgettable)
    down = effective_down(states)
    # Within damping either way: down and not yet confirmed, or back and not yet cleared.
    pending = sum(1 for s in states.values() if (s.state == "down") != s.confirmed)
    settles = min(_settle_times(states.values(), thresholds), default=None)
    return Detection(detect(tree, down, thresholds), set(down), pending, rejects, settles)


def down_now(conn: Connection) -> set[str]:
    """Elements that count as down now (confirmed by detection)."""
    return set(effective_down(state_store.load(conn)))


def next_due(conn: Connection, thresholds: Thresholds) -> list[datetime]:
    """When damping next settles an element: one down long enough is confirmed, one back
    up long enough stops counting (moments already past are due at the next cycle)."""
    return _settle_times(state_store.load(conn).values(), thresholds)


def _settle_times(states: Iterable[ElementState], thresholds: Thresholds) -> list[datetime]:
    due = []
    for st in states:
        if st.state == "down" and not st.confirmed:
            due.append(st.since + thresholds.down_after)
        elif st.state != "down" and st.confirmed:
            due.append(st.since + thresholds.up_after)
    return due
