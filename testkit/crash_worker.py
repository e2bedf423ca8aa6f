"""A crash trials' dispatch worker: `python -m testkit.crash_worker BATCH` sends until
nothing is due, BATCH deliveries a claim, with the settings in the environment
(testkit.crash.worker_env)."""

from __future__ import annotations

import sys

from forewarn import pipeline
from forewarn.config import Settings
from forewarn.context import Context
from forewarn.store import now_utc


def main() -> None:
    """Deliver until nothing is due."""
    batch = int(sys.argv[1])
    pipeline.deliver(Context.build(Settings()), now_utc(), batch_size=batch)


if __name__ == "__main__":
    main()
