"""The hour forewarn lives at, held in the Context: the system's in operation, moved to a
drill's, a rehearsal's or a test's moment when the pipeline is run at one."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta


class Clock:
    """The true hour moved by `offset` (zero in operation), a monotonic count of seconds,
    a sleep and a wait for an event. Claims are stamped on `now()`: other workers judge
    leases on their own clocks, so a claim carries the hour as the sends go on, not the
    cycle's start (which a big outage leaves minutes behind)."""

    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self.offset = offset
        self.moment: datetime | None = None

    def __repr__(self) -> str:
        return f"Clock(offset={self.offset})"

    def now(self) -> datetime:
        """The hour, in UTC."""
        return datetime.now(UTC) + self.offset

    def follow(self, moment: datetime) -> None:
        """Live at `moment` from here on, as real seconds pass (a drill's, a rehearsal's
        or a test's hour; in operation the true hour, so nothing moves). Following the
        moment already followed changes nothing: a cycle's deliveries keep its hour."""
        if moment != self.moment:
            self.moment = moment
            self.offset = moment - datetime.now(UTC)

    def monotonic(self) -> float:
        """Seconds that only go forward, for measuring how long something took."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Wait `seconds`."""
        time.sleep(seconds)

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Wait until `event` is set, for `seconds` at most; whether it was."""
        return event.wait(seconds)


class HeldClock(Clock):
    """A clock a test holds: its hour moves only when set or slept through, and a wait
    for an event that is not set passes its whole time at once."""

    def __init__(self, at: datetime) -> None:
        super().__init__()
        self.at = at
        self.elapsed = 0.0

    def __repr__(self) -> str:
        return f"HeldClock({self.at.isoformat()})"

    def now(self) -> datetime:
        """The held hour."""
        return self.at

    def follow(self, moment: datetime) -> None:
        """Hold `moment`."""
        self.at = moment

    def monotonic(self) -> float:
        """The seconds slept through so far."""
        return self.elapsed

    def sleep(self, seconds: float) -> None:
        """Move the hour on by `seconds`, at once."""
        self.elapsed += seconds
        self.at += timedelta(seconds=seconds)

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Set: at once; not set: the whole time passes, at once."""
        if not event.is_set():
            self.sleep(seconds)
        return event.is_set()
