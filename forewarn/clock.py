"""The hour forewarn lives at, held in the Context: the system's in operation, moved to a
drill's, a rehearsal's or a test's moment when the pipeline is run at one."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

# Moments remembered (a cycle's, a follow-up's...): far more than ever run at once.
KEPT = 64

# A reading of the hour as the sends go on (what claims and heartbeats are stamped with).
Hour = Callable[[], datetime]


class Clock:
    """The true hour, a monotonic count of seconds, a sleep and a wait for an event.

    A pipeline run at a moment (`follow`) lives at that moment's hour as real seconds
    pass: claims are stamped on `since(moment)`, because other workers judge leases on
    their own clocks, so a claim carries the hour as the sends go on, not the cycle's
    start (which a big outage leaves minutes behind). Each moment keeps its own offset
    from the true hour (zero in operation), so a follow-up run beside a cycle moves
    neither's hour."""

    def __init__(self, offsets: dict[datetime, timedelta] | None = None) -> None:
        self.offsets: dict[datetime, timedelta] = dict(offsets or {})
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Clock({len(self.offsets)} moments)"

    def follow(self, moment: datetime) -> None:
        """Live at `moment` from here on (a drill's, a rehearsal's or a test's hour; in
        operation the true hour): its offset is taken the first time it is followed."""
        with self._lock:
            if moment not in self.offsets:
                self.offsets[moment] = moment - datetime.now(UTC)
                while len(self.offsets) > KEPT:
                    del self.offsets[next(iter(self.offsets))]

    def since(self, moment: datetime) -> Hour:
        """The hour as it moves on from `moment`: the true hour unless `moment` was
        followed (a step run on its own, outside a cycle, lives at the true hour)."""
        offset = self.offsets.get(moment, timedelta(0))
        return lambda: datetime.now(UTC) + offset

    def now(self) -> datetime:
        """The true hour, in UTC."""
        return datetime.now(UTC)

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

    def follow(self, moment: datetime) -> None:
        """Hold `moment`."""
        self.at = moment

    def since(self, moment: datetime) -> Hour:
        """The held hour, wherever it is when asked."""
        self.follow(moment)
        return lambda: self.at

    def now(self) -> datetime:
        """The held hour."""
        return self.at

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
