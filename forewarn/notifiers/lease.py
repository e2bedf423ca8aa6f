"""A claim's lease as the worker holding it sees it: renewed by a heartbeat while its
sends run, judged on the worker's own steady clock, and lost once a renewal finds the rows
taken over, so a worker that stalled past its lease sends nothing more of the claim."""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy.engine import Engine

from forewarn.clock import Hour
from forewarn.incidents.ledger import renew
from forewarn.store import writing

logger = logging.getLogger("forewarn.dispatch")


# Seconds on a clock that never goes back and also counts time the machine spent
# suspended (Linux's boot time), so a worker woken from a suspend sees its lease gone.
_ticks: Callable[[], float] = (
    functools.partial(time.clock_gettime, time.CLOCK_BOOTTIME)
    if hasattr(time, "CLOCK_BOOTTIME")
    else time.monotonic
)


class Lease:
    """A claim's lease as its own worker sees it, on its own steady clock: held until a
    little before the last renewal's lease runs out (others judge it by the store's
    clock), and no longer once a renewal finds the rows taken over."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        # Room for the clocks of the worker and of those judging its lease to differ.
        self.margin = min(seconds / 10, 5.0)
        self.began = _ticks()
        self.until = self.began + seconds - self.margin
        self.lost = False

    def spent(self) -> float:
        """Seconds since the lease began."""
        return _ticks() - self.began

    def held(self) -> bool:
        """Whether a message may still go under this claim."""
        return not self.lost and _ticks() < self.until

    def found(self, began: float, held: int, rows: int) -> None:
        """What a renewal that began at `began` found: `held` of the claim's `rows` still
        its own extends the lease; fewer means the claim was taken over."""
        if held < rows:
            self.lost = True
        else:
            self.until = max(self.until, began + self.seconds - self.margin)


def renew_now(
    engine: Engine, token: str, clock: Hour, lease: timedelta, view: Lease, rows: int
) -> None:
    """Renew the claim's lease at once, waiting out a busy store (a claim slow to write)."""
    began = _ticks()
    held = writing(engine, lambda conn: renew(conn, token, clock() + lease), "claim renewal")
    view.found(began, held, rows)


@contextmanager
def heartbeat(
    engine: Engine, token: str, clock: Hour, lease: timedelta, view: Lease, rows: int
) -> Iterator[None]:
    """Renew the claim's lease every few seconds (a sixth of it, at most 5 s) while the
    block runs, each time in a short transaction of its own; keep `view` up to date."""
    every = min(max(lease.total_seconds() / 6, 0.05), 5.0)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every) and not view.lost:
            began = _ticks()
            try:  # one attempt: on a busy store the next beat is the retry
                held = writing(
                    engine, lambda conn: renew(conn, token, clock() + lease), "claim beat", 1
                )
            except Exception:  # a busy store: the next beat tries again
                logger.warning("claim renewal failed", exc_info=True)
                continue
            view.found(began, held, rows)  # lost if taken over while this worker stalled

    thread = threading.Thread(target=beat, name="claim-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
