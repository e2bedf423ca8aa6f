"""A thread-safe token bucket: each channel sends no faster than its provider allows."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """Allows `rate` units per second on average, with bursts of up to `burst` units."""

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = max(burst if burst is not None else rate, 1.0)
        self._tokens = self.burst
        self._clock, self._sleep = clock, sleep
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self, units: float = 1.0) -> None:
        """Wait until `units` may be spent, then spend them."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            # Going into debt keeps the order of callers and the average rate exact.
            self._tokens -= units
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)


# A grant covers this much of a channel's time: few enough store writes (five a second),
# small enough that a worker that stops early leaves little of the budget unused.
GRANT_S = 0.2

# Asks the shared budget for `units` at `rate` (with up to `burst` saved up while idle);
# answers how many seconds from now the first of them may go.
Grant = Callable[[float, float, float], float]


class SharedRateLimiter(RateLimiter):
    """A channel's one rate however many workers send on it: the budget lives in the
    store (forewarn.notifiers.budget.rate_grant), and each worker draws small grants of
    it, then spends each grant's slots in order. Together the workers never exceed `rate`
    (plus the `burst` a quiet channel has saved up); a worker alone gets all of it."""

    def __init__(
        self,
        rate: float,
        grant: Grant,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(rate, burst, clock, sleep)
        self._grant = grant
        self._size = max(rate * GRANT_S, 1.0)
        self._left = 0.0
        self._next = 0.0

    def acquire(self, units: float = 1.0) -> None:
        """Wait for this worker's next slot of the shared budget, then spend it."""
        with self._lock:
            if self._left < units:
                size = max(units, self._size)
                delay = self._grant(size, self.rate, self.burst)
                self._next, self._left = self._clock() + delay, size
            wait = self._next - self._clock()
            self._next += units / self.rate
            self._left -= units
        if wait > 0:
            self._sleep(wait)
