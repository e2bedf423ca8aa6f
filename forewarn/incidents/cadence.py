"""When the next promised update is due: a cadence that lengthens as an outage goes on,
kept out of the night."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from forewarn.durations import cadence_steps


@dataclass(frozen=True, slots=True)
class Cadence:
    """How often customers hear from us, by the outage's age; never inside quiet hours."""

    # (from this age on, update this often), by age.
    steps: tuple[tuple[timedelta, timedelta], ...] = (
        (timedelta(0), timedelta(hours=6)),
        (timedelta(hours=24), timedelta(hours=24)),
    )
    quiet_start: time | None = time(21, 0)
    quiet_end: time | None = time(6, 0)
    zone: str = "UTC"

    @classmethod
    def parse(cls, text: str, quiet: Sequence[time | None], zone: str) -> Cadence:
        """'0h=6h,24h=24h': every 6 hours from the start, daily after the first day."""
        return cls(cadence_steps(text), quiet[0], quiet[1], zone)

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
        if self.quiet_start is None or self.quiet_end is None:
            return moment
        local = moment.astimezone(ZoneInfo(self.zone))
        clock = local.time()
        start, end = self.quiet_start, self.quiet_end
        inside = (start <= clock or clock < end) if start > end else (start <= clock < end)
        if not inside:
            return moment
        day = local.date() if clock < end else local.date() + timedelta(days=1)
        resume = datetime.combine(day, end, tzinfo=local.tzinfo)
        return resume.astimezone(moment.tzinfo)

    def quiet_starts_before(self, moment: datetime) -> datetime | None:
        """If `moment` falls in quiet hours, when those quiet hours began; else None."""
        if self.quiet_start is None or self.out_of_quiet(moment) == moment:
            return None
        local = moment.astimezone(ZoneInfo(self.zone))
        day = local.date() if local.time() >= self.quiet_start else local.date() - timedelta(1)
        began = datetime.combine(day, self.quiet_start, tzinfo=local.tzinfo)
        return began.astimezone(moment.tzinfo)
