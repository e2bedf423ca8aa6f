"""Quiet hours: a daily window of local clock time ("21:00-06:00", across midnight or
not) in which routine messages wait and promised updates are not due."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

_WINDOW = re.compile(r"^\s*(\d\d:\d\d)\s*-\s*(\d\d:\d\d)\s*$")


def _zone(name: str | None) -> ZoneInfo:
    """The zone `name`; an unknown or missing one counts as UTC."""
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
        return self._inside(moment.astimezone(_zone(zone)).time())

    def until(self, moment: datetime, zone: str | None) -> datetime | None:
        """When quiet hours end, if `moment` falls inside them in the zone `zone`; else
        None. The answer is in `moment`'s own time zone."""
        local = moment.astimezone(_zone(zone))
        clock = local.time()
        if not self._inside(clock):
            return None
        day = local.date() if clock < self.end else local.date() + timedelta(days=1)
        return datetime.combine(day, self.end, tzinfo=local.tzinfo).astimezone(moment.tzinfo)

    def since(self, moment: datetime, zone: str | None) -> datetime | None:
        """When the quiet hours that `moment` falls in began (in `moment`'s time zone);
        None outside them."""
        local = moment.astimezone(_zone(zone))
        if not self._inside(local.time()):
            return None
        day = local.date() if local.time() >= self.start else local.date() - timedelta(days=1)
        return datetime.combine(day, self.start, tzinfo=local.tzinfo).astimezone(moment.tzinfo)


# The default: from nine in the evening until six in the morning.
NIGHT = QuietHours(time(21, 0), time(6, 0))

__all__ = ["NIGHT", "QuietHours"]
