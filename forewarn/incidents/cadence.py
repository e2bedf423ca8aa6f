"""When the next promised update is due: a cadence that lengthens as an outage goes on,
kept out of the night."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from forewarn.durations import cadence_steps
from forewarn.quiet import NIGHT, QuietHours


@dataclass(frozen=True, slots=True)
class Cadence:
    """How often customers hear from us, by the outage's age; never inside quiet hours."""

    # (from this age on, update this often), by age.
    steps: tuple[tuple[timedelta, timedelta], ...] = (
        (timedelta(0), timedelta(hours=6)),
        (timedelta(hours=24), timedelta(hours=24)),
    )
    quiet: QuietHours | None = NIGHT
    zone: str = "UTC"

    @classmethod
    def parse(cls, text: str, quiet: QuietHours | None, zone: str) -> Cadence:
        """'0h=6h,24h=24h': every 6 hours from the start, daily after the first day."""
        return cls(cadence_steps(text), quiet, zone)

    def interval(self, age: timedelta) -> timedelta:
        """How long until the next update for an outage this old."""
        chosen = self.steps[0][1]
        for start, every in self.steps:
            if age >= start:
                chosen = every
        return chosen

    def next_update(self, started: datetime, now: datetime) -> datetime:
        """When the next update is promised: one interval on, moved to the end of quiet
        hours if it would fall inside them (a promise we would then break)."""
        return self.out_of_quiet(now + self.interval(now - started))

    def out_of_quiet(self, moment: datetime) -> datetime:
        """`moment`, or the end of the quiet hours it falls in (operator's time zone)."""
        resume = None if self.quiet is None else self.quiet.until(moment, self.zone)
        return moment if resume is None else resume

    def quiet_starts_before(self, moment: datetime) -> datetime | None:
        """If `moment` falls in quiet hours, when those quiet hours began; else None."""
        return None if self.quiet is None else self.quiet.since(moment, self.zone)
