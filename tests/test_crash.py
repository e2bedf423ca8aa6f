"""A dispatch killed with SIGKILL at random points and restarted: every text and every
call arrives exactly once, every email is held once by its Message-ID, nothing is left
unsent.
(bench/crash.py runs 20 and more of these trials.)"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from testkit.crash import run_call_trial, run_paced_trial, run_stalled_trial, run_trial

# Every trial sends to a real SMTP server (aiosmtpd).
pytestmark = pytest.mark.integration


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


def test_a_paced_dispatcher_killed_beside_another_is_taken_over_within_seconds(
    tmp_path: Path,
) -> None:
    # Two dispatchers at a long code's pace (20 texts and 20 emails a second each, a 20 s
    # lease); one is killed mid-send and restarted at once. Before claims named their
    # holder, the restart found nothing due and left the dead worker's rows `sending`.
    trial = run_paced_trial(random.Random(21), customers=300, directory=tmp_path)
    assert 0 < trial.killed_after < trial.messages
    assert trial.unsent_rows == 0
    assert trial.sms_copies == {1: 300}
    assert trial.email_copies == {1: 300}
    assert trial.raw_email_duplicates <= 4
    assert trial.resumed_s < 20  # taken over without waiting out the lease
    assert trial.finished_s < 60  # every owed message handed over within a minute


def test_a_dispatcher_stalled_past_its_lease_sends_nothing_more_of_its_claim(
    tmp_path: Path,
) -> None:
    # One of two paced dispatchers is stopped (SIGSTOP) for 8 s with a 3 s lease; the other
    # takes its claim over and sends it. Before the worker asked whether its claim was
    # still held, the woken one sent the rest of its claim again (31 to 40 phones texted
    # twice of 300).
    trial = run_stalled_trial(random.Random(31), customers=300, directory=tmp_path)
    assert trial.in_flight_at_kill > 0  # it was holding a claim when it stopped
    assert trial.unsent_rows == 0
    assert trial.sms_copies == {1: 300}
    assert trial.email_copies == {1: 300}
    # Only a message already on its way when the process stopped can go twice.
    assert trial.raw_email_duplicates <= 2


@pytest.mark.parametrize("seed", [41, 42])
def test_a_killed_dispatch_calls_nobody_twice_and_misses_nobody(seed: int, tmp_path: Path) -> None:
    trial = run_call_trial(random.Random(seed), customers=150, directory=tmp_path)
    assert 0 < trial.killed_after < trial.messages  # the kill landed mid-dispatch
    assert trial.unsent_rows == 0
    assert trial.call_copies == {1: 150}  # reconciled with Twilio's list of calls
    assert trial.sms_copies == {1: 150}
