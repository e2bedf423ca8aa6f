"""How the pipeline's steps run: `Steps` runs them in this process (side-by-side steps
in threads); the flows pass their own, which runs each as a Prefect task."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, ParamSpec, Protocol, TypeVar

from forewarn.notifiers.delivery import BatchReport

if TYPE_CHECKING:
    from forewarn.context import Context

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


class Pending(Protocol[R_co]):
    """A step started beside others (a thread's future, or a Prefect future)."""

    def result(self) -> R_co: ...


class Steps:
    """Runs the pipeline's steps in this process; side-by-side steps get a thread each.

    `on_batch` hears the running totals of a delivery after every batch (the ops
    commands' progress bars)."""

    def __init__(self, on_batch: Callable[[BatchReport], None] | None = None) -> None:
        self._on_batch = on_batch
        self._total = BatchReport()
        self._lock = threading.Lock()

    def call(self, step: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run a step now and return what it returns."""
        return step(*args, **kwargs)

    def submit(self, step: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> Pending[R]:
        """Start a step beside the caller."""
        future: Future[R] = Future()

        def run() -> None:
            try:
                future.set_result(step(*args, **kwargs))
            except BaseException as err:  # handed to whoever asks for the result
                future.set_exception(err)

        threading.Thread(target=run, name=getattr(step, "__name__", "step"), daemon=True).start()
        return future

    def batch_done(self, ctx: Context, batch: BatchReport) -> None:
        """A delivery batch is recorded."""
        if self._on_batch is not None:
            with self._lock:
                self._total.add(batch)
                self._on_batch(self._total)

    def delivered(self, ctx: Context, incident_ids: set[int]) -> None:
        """A delivery run has settled for these incidents."""

    def updated(self, ctx: Context, incident_ids: Sequence[int]) -> None:
        """These incidents have new updates."""


def logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """The Prefect run's logger inside a flow or task run, else forewarn's own."""
    if "prefect" not in sys.modules:  # no run without Prefect; and importing it costs seconds
        return logging.getLogger("forewarn.pipeline")
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("forewarn.pipeline")


INLINE = Steps()
