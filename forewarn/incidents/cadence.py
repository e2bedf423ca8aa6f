"""When the next promised update is due: a cadence that lengthens as an outage goes on,
kept out of the night, and the durations ops and drills write ("90m", "6h", "2d")."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(min|s|m|h|d|w)", re.IGNORECASE)
_DURATION = re.compile(r"^\s*(?:\d+(?:\.\d+)?\s*(?:min|s|m|h|d|w)\s*)+$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """'90m' or '1h30m' -> 1 h 30 min; units s, m, h, d, w. Anything else is a ValueError."""
    if len(text) > 40 or not _DURATION.match(text):
        raise ValueError(f"not a duration: {text!r} (write e.g. 90m, 6h, 1h30m or 2d)")
    seconds = sum(float(n) * _UNITS[unit.lower()] for n, unit in _PART.findall(text))
    return timedelta(seconds=seconds)


def parse_steps(text: str, separator: str = ",") -> tuple[tuple[timedelta, str], ...]:
    """'0h=6h,24h=24h' or 'AGE=text|AGE=text' lists, sorted by their age."""
    steps = []
    for part in filter(None, (p.strip() for p in text.split(separator))):
        age, sep, value = part.partition("=")
        if not sep or not value.strip():
            raise ValueError(f"expected AGE=VALUE, got {part!r}")
        steps.append((parse_duration(age), value.strip()))
    return tuple(sorted(steps, key=lambda step: step[0]))


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
        steps = tuple((age, parse_duration(every)) for age, every in parse_steps(text))
        if not steps or steps[0][0] != timedelta(0):
            raise ValueError("the cadence must start at 0h, e.g. 0h=6h,24h=24h")
        if any(every < timedelta(minutes=5) for _, every in steps):
            raise ValueError("updates more often than every 5 minutes would be spam")
        return cls(steps, quiet[0], quiet[1], zone)

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
