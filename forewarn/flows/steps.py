"""How the flows run the pipeline's steps: each as a Prefect task (threads, or Dask with
FOREWARN_DASK_ADDRESS), with the incidents' progress in the Prefect UI; and the context
an entrypoint gives the flows of its process."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, cast

from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from forewarn import pipeline
from forewarn.config import Settings, process_settings
from forewarn.context import Context
from forewarn.flows.observe import delivery_progress, update_tables
from forewarn.notifiers.delivery import BatchReport
from forewarn.steps import P, Pending, R, Steps

# One Prefect task per pipeline step, made once (the task names are the steps' names).
_STEPS: tuple[Callable[..., Any], ...] = (
    pipeline.detect_faults,
    pipeline.update_incidents,
    pipeline.queue_rest,
    pipeline.confirm_followers,
    pipeline.deliver_channel,
    pipeline.keep_promises,
    pipeline.publish_site,
    pipeline.answer_new_mentions,
)
TASKS: dict[Callable[..., Any], Task[..., Any]] = {
    step: task(cache_policy=NO_CACHE)(step) for step in _STEPS
}


class PrefectSteps(Steps):
    """Each step a Prefect task; side-by-side steps go to the flow's task runner."""

    def call(self, step: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the step's task now."""
        return cast(R, TASKS[step](*args, **kwargs))

    def submit(self, step: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> Pending[R]:
        """Submit the step's task to the flow's task runner."""
        return cast(Pending[R], TASKS[step].submit(*args, **kwargs))

    def batch_done(self, ctx: Context, batch: BatchReport) -> None:
        """Move the incidents' progress artifacts on."""
        delivery_progress(ctx, batch.incidents)

    def delivered(self, ctx: Context, incident_ids: set[int]) -> None:
        """The settled progress of each incident."""
        delivery_progress(ctx, incident_ids)

    def updated(self, ctx: Context, incident_ids: Sequence[int]) -> None:
        """Each changed incident's table of updates."""
        update_tables(ctx, incident_ids)

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        # Sent to a Dask worker with a task's arguments: nothing to carry.
        return (PrefectSteps, ())


PREFECT = PrefectSteps()


def task_runner() -> TaskRunner[Any]:
    """The flows' task runner: Dask when FOREWARN_DASK_ADDRESS is set, else threads."""
    address = process_settings().dask_address
    if not address:
        return ThreadPoolTaskRunner()
    from prefect_dask.task_runners import DaskTaskRunner

    if address == "local":
        return DaskTaskRunner()
    return DaskTaskRunner(address=address)


# The context an entrypoint gave the flows it runs: a context variable, so each thread
# (and each test) sees only what it was given (serve's beats copy it into theirs).
_GIVEN: ContextVar[Context | None] = ContextVar("forewarn_given_context", default=None)


@contextmanager
def given_context(ctx: Context) -> Iterator[Context]:
    """Run this thread's flows with `ctx` (built once by the entrypoint: `serve`,
    `run-once`, the demo, a test) while the block lasts."""
    token = _GIVEN.set(ctx)
    try:
        yield ctx
    finally:
        _GIVEN.reset(token)


@contextmanager
def flow_context() -> Iterator[Context]:
    """The context an entrypoint gave; a flow run that a Prefect worker started (the run
    is then the entrypoint) builds its own from the worker's environment, and closes it
    when the run ends."""
    given = _GIVEN.get()
    if given is not None:
        yield given
        return
    own = Context.build(Settings())
    try:
        yield own
    finally:
        own.close()
