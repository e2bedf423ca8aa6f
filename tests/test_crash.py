"""A dispatch killed with SIGKILL at random points and restarted: every text arrives
exactly once, every email is held once by its Message-ID, nothing is left unsent.
(bench/crash.py runs 20 and more of these trials.)"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bench.crash import run_trial


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_a_killed_dispatch_neither_loses_nor_repeats_a_message(seed: int, tmp_path: Path) -> None:
    trial = run_trial(random.Random(seed), customers=400, directory=tmp_path, batch=100)
    assert 0 < trial.killed_after < trial.messages  # the kill landed mid-dispatch
    assert trial.unsent_rows == 0
    assert trial.sms_copies == {1: 400}  # reconciled with the provider's message list
    assert trial.email_copies == {1: 400}  # one per Message-ID
    # Only an email the server took but whose answer the killed worker never read can go
    # twice, under the same Message-ID: at most one per SMTP connection.
    assert trial.raw_email_duplicates <= 8
