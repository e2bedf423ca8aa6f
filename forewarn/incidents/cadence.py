"""When the next promised update is due: a cadence that lengthens as an outage goes on,
planned within the daily ceiling of routine messages, and kept out of the night in every
affected customer's time zone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from forewarn.durations import cadence_steps
from forewarn.quiet import NIGHT, Night

DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Cadence:
    """How often customers hear from us, by the outage's age; never more often than the
    daily ceiling allows, never at a time the night would hold the update."""

    # (from this age on, update this often), by age.
    steps: tuple[tuple[timedelta, timedelta], ...] = (
        (timedelta(0), timedelta(hours=6)),
        (timedelta(hours=24), timedelta(hours=24)),
    )
    night: Night = NIGHT
    # The operator's zone: used when an incident has no customer with a zone of their own.
    zone: str = "UTC"
    # Routine messages a customer may get per day: the cadence never asks for more.
    per_day: int = 4

    @classmethod
    def parse(cls, text: str, night: Night, zone: str, per_day: int = 4) -> Cadence:
        """'0h=6h,24h=24h': every 6 hours from the start, daily after the first day."""
        return cls(cadence_steps(text), night, zone, per_day)

    def interval(self, age: timedelta) -> timedelta:
        """How long until the next update for an outage this old (at least a day's share
        of the ceiling)."""
        chosen = self.steps[0][1]
        for start, every in self.steps:
            if age >= start:
                chosen = every
        return max(chosen, DAY / self.per_day)

    def next_update(self, started: datetime, now: datetime, zones: Sequence[str] = ()) -> datetime:
        """When the next update is promised: one interval on, moved past any night that
        would hold it in one of `zones` (a promise we would then break)."""
        return self.awake(now + self.interval(now - started), zones)

    def awake(self, moment: datetime, zones: Sequence[str] = ()) -> datetime:
        """The first moment from `moment` on at which a routine message may go in every
        one of `zones` (the operator's zone if none); if the zones share no waking hour,
        the operator's."""
        chosen = list(dict.fromkeys(zones)) or [self.zone]
        resume = moment
        for _ in range(4 * len(chosen) + 4):
            later = [held for z in chosen if (held := self.night.held_until(resume, z, True))]
            if not later:
                return resume
            resume = max(later)
            if resume - moment > DAY:
                break
        return self.night.held_until(moment, self.zone, True) or moment

    def held_since(
        self, moment: datetime, zones: Sequence[str] = (), routine: bool = True
    ) -> datetime | None:
        """If messages (routine ones, or all) are held at `moment` in any of `zones` (the
        operator's if none), when the earliest of those nights began; else None."""
        starts = [
            began
            for z in dict.fromkeys(zones or [self.zone])
            if (began := self.night.began(moment, z, routine)) is not None
        ]
        return min(starts, default=None)
