"""The night policy: quiet hours (a daily window of local clock time, "21:00-08:00")
hold routine messages, sleep hours ("23:00-07:00") hold everything but an answer to a
customer who just wrote; promised updates are never due inside a window that holds them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

_WINDOW = re.compile(r"^\s*(\d\d:\d\d)\s*-\s*(\d\d:\d\d)\s*$")


def zone_info(name: str | None) -> ZoneInfo:
    """The zone `name`; an unknown or missing one (the importer warns of it) counts as UTC."""
    try:
        return ZoneInfo(name or "UTC")
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


@dataclass(frozen=True, slots=True)
class QuietHours:
    """From `start` until `end`, local time; a window with start == end is empty."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """'21:00-06:00' -> 21:00 until 06:00 the next morning."""
        found = _WINDOW.match(text)
        if found is None:
            raise ValueError(f"not quiet hours: {text!r} (write HH:MM-HH:MM, e.g. 21:00-06:00)")
        try:
            return cls(time.fromisoformat(found[1]), time.fromisoformat(found[2]))
        except ValueError:
            raise ValueError(f"not quiet hours: {text!r} (a time is out of range)") from None

    @classmethod
    def from_setting(cls, text: str) -> QuietHours | None:
        """Like `parse`, except that an empty setting means no quiet hours."""
        return cls.parse(text) if text.strip() else None

    def _inside(self, clock: time) -> bool:
        start, end = self.start, self.end
        return (start <= clock or clock < end) if start > end else (start <= clock < end)

    def contains(self, moment: datetime, zone: str | None) -> bool:
        """Whether `moment` falls inside quiet hours in the zone `zone`."""
        return self._inside(moment.astimezone(zone_info(zone)).time())

    def until(self, moment: datetime, zone: str | None) -> datetime | None:
        """When quiet hours end, if `moment` falls inside them in the zone `zone`; else
        None. The answer is in `moment`'s own time zone."""
        local = moment.astimezone(zone_info(zone))
        clock = local.time()
        if not self._inside(clock):
            return None
        day = local.date() if clock < self.end else local.date() + timedelta(days=1)
        return datetime.combine(day, self.end, tzinfo=local.tzinfo).astimezone(moment.tzinfo)

    def since(self, moment: datetime, zone: str | None) -> datetime | None:
        """When the quiet hours that `moment` falls in began (in `moment`'s time zone);
        None outside them."""
        local = moment.astimezone(zone_info(zone))
        if not self._inside(local.time()):
            return None
        day = local.date() if local.time() >= self.start else local.date() - timedelta(days=1)
        return datetime.combine(day, self.start, tzinfo=local.tzinfo).astimezone(moment.tzinfo)


# The defaults: routine waits from nine in the evening until eight in the morning;
# nothing but an answer goes from eleven at night until seven in the morning.
QUIET_HOURS = QuietHours(time(21, 0), time(8, 0))
SLEEP_HOURS = QuietHours(time(23, 0), time(7, 0))


@dataclass(frozen=True, slots=True)
class Night:
    """Quiet hours hold routine messages; sleep hours hold every message (answers to a
    customer who just wrote are not held: they are not queued at all)."""

    quiet: QuietHours | None = QUIET_HOURS
    sleep: QuietHours | None = SLEEP_HOURS

    def _windows(self, routine: bool) -> tuple[QuietHours, ...]:
        chosen = (self.quiet, self.sleep) if routine else (self.sleep,)
        return tuple(w for w in chosen if w is not None)

    def held_until(self, moment: datetime, zone: str | None, routine: bool) -> datetime | None:
        """When a message due at `moment` may go, if the night holds it; else None. The
        windows may overlap or follow each other: the answer is outside all of them."""
        resume, held = moment, False
        for _ in range(8):  # two windows a day: a few rounds reach a free moment
            moved = False
            for window in self._windows(routine):
                end = window.until(resume, zone)
                if end is not None:
                    resume, moved, held = end, True, True
            if not moved:
                break
        return resume if held else None

    def holds(self, moment: datetime, zone: str | None, routine: bool) -> bool:
        """Whether a message (routine or not) may not go at `moment` in the zone `zone`."""
        return any(w.contains(moment, zone) for w in self._windows(routine))

    def began(self, moment: datetime, zone: str | None, routine: bool) -> datetime | None:
        """If `moment` is held, when the stretch of held time it falls in began; else None."""
        start = None
        probe = moment
        for _ in range(8):
            starts = [s for w in self._windows(routine) if (s := w.since(probe, zone)) is not None]
            if not starts:
                break
            start = min(starts)
            probe = start - timedelta(microseconds=1)
        return start


NIGHT = Night()
# No night at all: every message goes when it is due.
AWAKE = Night(None, None)

__all__ = ["AWAKE", "NIGHT", "QUIET_HOURS", "SLEEP_HOURS", "Night", "QuietHours", "zone_info"]
