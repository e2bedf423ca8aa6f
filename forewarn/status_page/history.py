"""Ninety days of history per component: for each day, the worst impact of the public
incidents that touched the component that day."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.engine import Connection

from forewarn.network import NetworkIndex
from forewarn.status_page.components import Component, coverage
from forewarn.status_page.statuspage import SEVERITY, PageConfig, impact
from forewarn.store import incidents

DAYS = 90


@dataclass(frozen=True, slots=True)
class Day:
    """One bar: the day and the worst impact on it ("none" for a clear day)."""

    day: date
    impact: str


@dataclass(frozen=True, slots=True)
class ComponentHistory:
    """A component's bars, oldest first, and the share of clear days."""

    component_id: str
    days: tuple[Day, ...]

    @property
    def clear_share(self) -> float:
        """The share of days with no outage at all."""
        return sum(d.impact == "none" for d in self.days) / len(self.days)


def recent_public_incidents(conn: Connection, now: datetime) -> list[Any]:
    """Public incidents that were open at some time in the last DAYS days."""
    since = now - timedelta(days=DAYS)
    return list(
        conn.execute(
            select(
                incidents.c.id,
                incidents.c.title,
                incidents.c.title_kind,
                incidents.c.title_params,
                incidents.c.status,
                incidents.c.root_element,
                incidents.c.premises_count,
                incidents.c.started_at,
                incidents.c.resolved_at,
            )
            .where(
                incidents.c.public.is_(True),
                or_(incidents.c.resolved_at.is_(None), incidents.c.resolved_at >= since),
            )
            .order_by(incidents.c.started_at.desc())
        )
    )


def component_histories(
    index: NetworkIndex,
    components: Sequence[Component],
    rows: Sequence[Any],
    now: datetime,
    page: PageConfig,
) -> list[ComponentHistory]:
    """Bars for every component from the incidents of the last DAYS days."""
    total = max(len(index.premise_ids), 1)
    today = now.date()
    first = today - timedelta(days=DAYS - 1)
    worst = {c.id: [0] * DAYS for c in components}
    for row in rows:
        share = max(
            [row.premises_count / total]
            + [coverage(index, c, row.root_element) for c in components]
        )
        severity = SEVERITY.index(impact(share, page))
        start = max(row.started_at.date(), first)
        end = min((row.resolved_at or now).date(), today)
        if end < start:
            continue
        for component in components:
            if coverage(index, component, row.root_element) <= 0:
                continue
            days = worst[component.id]
            for offset in range((start - first).days, (end - first).days + 1):
                days[offset] = max(days[offset], severity)
    return [
        ComponentHistory(
            c.id,
            tuple(Day(first + timedelta(days=i), SEVERITY[s]) for i, s in enumerate(worst[c.id])),
        )
        for c in components
    ]
