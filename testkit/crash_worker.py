"""A crash trials' dispatch worker: `python -m testkit.crash_worker` sends until nothing
is due, with the settings in the environment (testkit.crash.worker_env)."""

from __future__ import annotations

from forewarn import pipeline
from forewarn.config import Settings
from forewarn.context import Context
from forewarn.store import now_utc


def main() -> None:
    """Dispatch until nothing is due."""
    pipeline.deliver(Context.build(Settings()), now_utc())


if __name__ == "__main__":
    main()
