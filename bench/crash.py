"""Crash trials: a dispatch of a few thousand messages to local servers (a stateful
Twilio and a real SMTP server), killed with SIGKILL at a random point, then restarted.
Afterwards every message must be held exactly once:
`python bench/crash.py --trials 20 --customers 2000`.

`--paced` runs two dispatchers at a long code's pace (20 texts and 20 emails a second
each, a short lease), kills one of them at a random point and restarts it at once: every
message is still held once, and the dead worker's claims are taken over within seconds
(not after the lease): `python bench/crash.py --paced --trials 10 --customers 300`.

`--stalled` stops one of two paced dispatchers (SIGSTOP) for longer than its lease, lets
the other take its claim over, then wakes it (SIGCONT): the woken worker must not send
what it had claimed: `python bench/crash.py --stalled --trials 10 --customers 300`.

The trials themselves are testkit/crash.py, which tests/test_crash.py runs too."""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from testkit.crash import (  # noqa: E402
    Counted,
    PacedTrial,
    Trial,
    run_paced_trial,
    run_stalled_trial,
    run_trial,
)


def main() -> None:
    """Run the trials and print one line each, then the totals."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--paced", action="store_true", help="two dispatchers at 20/s")
    parser.add_argument("--stalled", action="store_true", help="one of two stopped a while")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    kind = "paced" if args.paced else "stalled" if args.stalled else "killed"
    runs: dict[str, Callable[[random.Random, int, Path], Counted]] = {
        "killed": run_trial, "paced": run_paced_trial, "stalled": run_stalled_trial,
    }  # fmt: skip
    run = runs[kind]
    passed = 0
    for n in range(args.trials):
        with tempfile.TemporaryDirectory(prefix="forewarn-crash-") as directory:
            trial = run(rng, args.customers, Path(directory))
        passed += trial.exactly_once
        print(f"{kind} trial {n + 1:2d}: {describe(trial)}")
    print(f"{passed}/{args.trials} {kind} trials: every message held exactly once")


def describe(trial: Counted) -> str:
    """One trial's line: where the worker was stopped, what the servers held."""
    what = {Trial: "the worker killed", PacedTrial: "one of two workers killed"}
    line = (
        f"{trial.messages} messages, {what.get(type(trial), 'one of two workers stopped')} "
        f"after {trial.killed_after} arrived holding {trial.in_flight_at_kill}; "
        f"texts held {dict(trial.sms_copies)}, emails held {dict(trial.email_copies)} "
        f"(raw resends with the same Message-ID: {trial.raw_email_duplicates}); "
        f"unsent rows {trial.unsent_rows}"
    )
    if isinstance(trial, Trial):
        line += f"; {trial.seconds:.1f} s"
    if isinstance(trial, PacedTrial):
        line += (
            f"; its rows taken over {trial.resumed_s:.1f} s and all sent "
            f"{trial.finished_s:.1f} s after the restart"
        )
    return line


if __name__ == "__main__":
    main()
