"""Crash trials: a dispatch of a few thousand messages to local servers (a stateful
Twilio and a real SMTP server) whose workers are killed or stopped at a random point;
afterwards every message must be held exactly once. tests/test_crash.py runs one of each
kind, bench/crash.py (which describes the three kinds) runs many."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.engine import Engine

from forewarn.channels.mime import message_id
from forewarn.store import deliveries, make_engine
from testkit.ledger_data import fill_ledger, phone
from testkit.servers import Mailbox, TwilioState, fake_twilio, smtp_server

# The checkout this module is in: the workers import forewarn and testkit from it.
ROOT = Path(__file__).resolve().parents[1]

ACCOUNT = "AC" + "0123456789abcdef" * 2
SENDER = "alerts@millroad.example"


@dataclass
class Counted:
    """What the servers held after a trial."""

    messages: int
    killed_after: int
    in_flight_at_kill: int
    sms_copies: Counter[int]
    email_copies: Counter[int]
    raw_email_duplicates: int
    unsent_rows: int

    @property
    def exactly_once(self) -> bool:
        """Every message held once: texts by recipient, emails by Message-ID."""
        return set(self.sms_copies) | set(self.email_copies) <= {1} and not self.unsent_rows


@dataclass
class Trial(Counted):
    """What one trial saw, and how long it took."""

    seconds: float


@dataclass
class PacedTrial(Counted):
    """What one trial of two paced dispatchers, one killed and restarted, saw."""

    # From the restart: until no row was held by the dead worker; until all was sent.
    resumed_s: float
    finished_s: float


@dataclass
class TwoWorkers:
    """A filled ledger, the local Twilio and SMTP server, and two delivery workers."""

    engine: Engine
    total: int
    env: dict[str, str]
    workers: list[subprocess.Popen[bytes]]
    twilio: TwilioState
    mailbox: Mailbox


@contextmanager
def two_workers(directory: Path, customers: int, lease: float, rate: float) -> Iterator[TwoWorkers]:
    """A ledger of `customers` texts and emails in `directory`, and two workers started
    on it against local servers at `rate` a second with a `lease`-second lease."""
    db = directory / "crash.db"
    engine = make_engine(f"sqlite:///{db}")
    total = fill_ledger(engine, customers, ("sms", "email"), datetime.now(UTC))
    try:
        with fake_twilio() as (twilio_url, twilio), smtp_server() as (smtp_url, mailbox):
            env = worker_env(f"sqlite:///{db}", twilio_url, smtp_url, directory, lease, rate)
            workers = [subprocess.Popen(worker(), env=env, cwd=directory) for _ in range(2)]
            yield TwoWorkers(engine, total, env, workers, twilio, mailbox)
    finally:
        engine.dispose()


def run_paced_trial(
    rng: random.Random, customers: int, directory: Path, rate: float = 20.0, lease: float = 20.0
) -> PacedTrial:
    """Two dispatchers sending at `rate` a second per channel with a short lease; one is
    killed at a random point and restarted at once; count what the servers hold."""
    with two_workers(directory, customers, lease, rate) as run:
        engine, total, env, workers = run.engine, run.total, run.env, run.workers
        twilio, mailbox = run.twilio, run.mailbox
        victim = rng.randrange(2)
        arrived_at(rng.randint(1, total - 1), twilio, mailbox, workers[victim])
        dead = workers[victim]
        dead.send_signal(signal.SIGKILL)
        dead.wait()
        killed_after = len(twilio.messages) + len(mailbox.received)
        workers[victim] = subprocess.Popen(worker(), env=env, cwd=directory)
        restarted = time.monotonic()
        resumed = finished = None
        in_flight = rows(engine, held_by(dead.pid))
        while time.monotonic() - restarted < 300:
            orphans, unsent = rows(engine, held_by(dead.pid)), rows(engine, NOT_SENT)
            if resumed is None and not orphans:
                resumed = time.monotonic() - restarted
            if finished is None and not unsent:
                finished = time.monotonic() - restarted
            if all(w.poll() is not None for w in workers):
                break
            time.sleep(0.1)
        for w in workers:
            w.wait(timeout=60)
        sms_copies, email_copies, raw_duplicates = count_held(twilio, mailbox, customers)
    never = float("inf")
    return PacedTrial(
        total, killed_after, in_flight, sms_copies, email_copies, raw_duplicates,
        unsent, never if resumed is None else resumed,
        never if finished is None else finished,
    )  # fmt: skip


# Ledger rows not yet sent.
NOT_SENT = deliveries.c.status != "sent"


def held_by(pid: int) -> ColumnElement[bool]:
    """Ledger rows a worker process holds in `sending`."""
    return (deliveries.c.status == "sending") & deliveries.c.claimed_by.like(f"%:{pid}:%")


def rows(engine: Engine, where: ColumnElement[bool]) -> int:
    """How many ledger rows match `where` now."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).where(where)).scalar_one())


def arrived_at(
    target: int, twilio: TwilioState, mailbox: Mailbox, worker: subprocess.Popen[bytes]
) -> None:
    """Wait until the servers hold `target` messages (or the worker has finished)."""
    while len(twilio.messages) + len(mailbox.received) < target and worker.poll() is None:
        time.sleep(0.005)


def run_stalled_trial(
    rng: random.Random,
    customers: int,
    directory: Path,
    rate: float = 20.0,
    lease: float = 3.0,
    stall: float = 8.0,
) -> Counted:
    """Two dispatchers at `rate` a second per channel with a short lease; one is stopped
    mid-send for `stall` seconds (longer than its lease, so the other takes its claim
    over), then woken; count what the servers hold once both have finished."""
    with two_workers(directory, customers, lease, rate) as run:
        engine, total, workers = run.engine, run.total, run.workers
        twilio, mailbox = run.twilio, run.mailbox
        stalled = workers[rng.randrange(2)]
        arrived_at(rng.randint(total // 10, total // 3), twilio, mailbox, stalled)
        stalled.send_signal(signal.SIGSTOP)
        stopped_after = len(twilio.messages) + len(mailbox.received)
        holding = rows(engine, held_by(stalled.pid))
        time.sleep(stall)
        stalled.send_signal(signal.SIGCONT)
        for w in workers:
            w.wait(timeout=120)
        unsent = rows(engine, NOT_SENT)
        sms_copies, email_copies, raw_duplicates = count_held(twilio, mailbox, customers)
    return Counted(total, stopped_after, holding, sms_copies, email_copies, raw_duplicates, unsent)


def count_held(
    twilio: TwilioState, mailbox: Mailbox, customers: int
) -> tuple[Counter[int], Counter[int], int]:
    """What the servers hold: copies per phone, copies per Message-ID, and how many emails
    were sent again under an ID already delivered (a mailbox keeps one per Message-ID)."""
    by_phone = Counter(m["to"] for m in twilio.messages)
    sms_copies = Counter(by_phone.get(phone(i), 0) for i in range(customers))
    arrived = mailbox.by_message_id()
    ids = [message_id(f"1-1-c{i}-email", SENDER) for i in range(customers)]
    email_copies = Counter(min(arrived.get(mid, 0), 1) for mid in ids)
    unknown = set(arrived) - set(ids)
    assert not unknown, f"unexpected emails: {sorted(unknown)[:3]}"
    return sms_copies, email_copies, sum(n - 1 for n in arrived.values())


def worker(batch: int = 1000) -> list[str]:
    """The command of a delivery worker (testkit/crash_worker.py) claiming `batch` at a
    time; run it with worker_env() as its environment."""
    return [sys.executable, "-m", "testkit.crash_worker", str(batch)]


def worker_env(
    db_url: str,
    twilio_url: str,
    smtp_url: str,
    directory: Path,
    lease: float,
    rate: float = 100_000,
) -> dict[str, str]:
    """The environment of a dispatch worker sending to the local servers at `rate` a second
    on each channel (by default as fast as they go)."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "FOREWARN_DB_URL": db_url,
        "TWILIO_ACCOUNT_SID": ACCOUNT,
        "TWILIO_AUTH_TOKEN": "crash-test",
        "FOREWARN_SMS_FROM": "+15005550006",
        "FOREWARN_TWILIO_API_URL": twilio_url,
        "FOREWARN_SMS_RATE": str(rate),
        "FOREWARN_SMTP_URL": smtp_url,
        "FOREWARN_EMAIL_FROM": SENDER,
        "FOREWARN_EMAIL_RATE": str(rate),
        "FOREWARN_OUTBOX": str(directory / "outbox"),
        "FOREWARN_JOURNAL_DIR": str(directory / "journal"),
        "FOREWARN_QUIET_HOURS": "",
        "FOREWARN_SLEEP_HOURS": "",
        "FOREWARN_CLAIM_LEASE_S": str(lease),
    }


def run_trial(rng: random.Random, customers: int, directory: Path, batch: int = 250) -> Trial:
    """Fill a store, start a worker, kill it mid-flight, restart it, and count."""
    started = time.monotonic()
    db = directory / "crash.db"
    engine = make_engine(f"sqlite:///{db}")
    total = fill_ledger(engine, customers, ("sms", "email"), datetime.now(UTC))
    with fake_twilio() as (twilio_url, twilio), smtp_server() as (smtp_url, mailbox):
        # One worker at a time here: what the killed one held is taken over at the restart
        # because its process is gone, not because its lease ran out.
        env = worker_env(f"sqlite:///{db}", twilio_url, smtp_url, directory, lease=300)
        command = worker(batch)
        process = subprocess.Popen(command, env=env, cwd=directory)
        target = rng.randint(1, total - 1)
        while len(twilio.messages) + len(mailbox.received) < target:
            if process.poll() is not None:
                break  # finished before the kill point: still a valid (uneventful) trial
            time.sleep(0.001)
        process.send_signal(signal.SIGKILL)
        process.wait()
        killed_after = len(twilio.messages) + len(mailbox.received)
        in_flight = rows(engine, deliveries.c.status == "sending")
        subprocess.run(command, env=env, cwd=directory, check=True, timeout=600)
        unsent = rows(engine, NOT_SENT)
        sms_copies, email_copies, raw_duplicates = count_held(twilio, mailbox, customers)
    engine.dispose()
    return Trial(
        total, killed_after, in_flight, sms_copies, email_copies, raw_duplicates,
        unsent, time.monotonic() - started,
    )  # fmt: skip


@dataclass
class CallTrial:
    """What a trial of texts and calls, its worker killed mid-flight, saw: copies per
    phone of each (one each is right) and rows left unsent."""

    messages: int
    killed_after: int
    sms_copies: Counter[int]
    call_copies: Counter[int]
    unsent_rows: int


def run_call_trial(rng: random.Random, customers: int, directory: Path) -> CallTrial:
    """Fill a store with a text and a call for each customer, start a worker, kill it
    mid-flight, restart it, and count what the local Twilio holds."""
    db = directory / "calls.db"
    engine = make_engine(f"sqlite:///{db}")
    total = fill_ledger(engine, customers, ("sms", "voice"), datetime.now(UTC))
    with fake_twilio() as (twilio_url, twilio), smtp_server() as (smtp_url, _):
        env = worker_env(f"sqlite:///{db}", twilio_url, smtp_url, directory, lease=300)
        env["FOREWARN_VOICE_RATE"] = "100000"
        command = worker(50)
        process = subprocess.Popen(command, env=env, cwd=directory)
        target = rng.randint(total // 4, 3 * total // 4)
        while len(twilio.messages) + len(twilio.calls) < target and process.poll() is None:
            time.sleep(0.001)
        process.send_signal(signal.SIGKILL)
        process.wait()
        killed_after = len(twilio.messages) + len(twilio.calls)
        subprocess.run(command, env=env, cwd=directory, check=True, timeout=600)
        unsent = rows(engine, NOT_SENT)
        texts = Counter(m["to"] for m in twilio.messages)
        calls = Counter(c["to"] for c in twilio.calls)
    engine.dispose()
    return CallTrial(
        total,
        killed_after,
        Counter(texts.get(phone(i), 0) for i in range(customers)),
        Counter(calls.get(phone(i), 0) for i in range(customers)),
        unsent,
    )
