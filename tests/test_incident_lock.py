"""Incident changes take turns inside the incidents API itself, whoever calls it: an OUT
reply arriving through the receiver while the cycle follows up the same case never
numbers two updates alike nor opens a second case for one line (PostgreSQL, where the
webhook and the cycle really run at once)."""

from __future__ import annotations

import json
import threading
import zlib
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError

from forewarn import pipeline
from forewarn.config import Settings
from forewarn.context import Context
from forewarn.incidents.lock import LOCK, incidents_lock
from forewarn.incidents.replies import Voice, handle_reply
from forewarn.store import incident_updates, incidents
from tests.conftest import NOW, fresh_postgres_database, outage_and_restoration, run_cycle
from tests.town import Town

# This module's store is a real PostgreSQL.
pytestmark = pytest.mark.integration

PHONE_39 = "+447911123039"
ROUNDS = 12


@pytest.fixture
def db_url(postgres_server: str) -> str:
    """This module's store is PostgreSQL."""
    return fresh_postgres_database(postgres_server)


def at_once(*jobs: Callable[[], object]) -> list[BaseException]:
    """Run the jobs in threads released together; the errors they raised."""
    start = threading.Barrier(len(jobs))
    errors: list[BaseException] = []

    def run(job: Callable[[], object]) -> None:
        try:
            start.wait()
            job()
        except BaseException as err:  # reported by the test, not lost in the thread
            errors.append(err)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


def open_cases(town: Town) -> list[int]:
    with town.engine.connect() as conn:
        return list(
            conn.execute(
                select(incidents.c.id).where(
                    incidents.c.root_element == "cpe39",
                    incidents.c.scope == "premise",
                    incidents.c.status != "resolved",
                )
            ).scalars()
        )


def test_out_replies_and_the_cycle_at_once_keep_one_case_and_one_number_per_update(
    town: Town, settings: Settings
) -> None:
    ctx = Context.build(settings)
    outage_and_restoration(ctx, settings)  # "restored ... reply OUT"
    voice = Voice("Mill Road Fibre", "Outage alerts.")
    errors: list[BaseException] = []
    cases_per_round = []
    for n in range(ROUNDS):
        at = NOW + timedelta(hours=2, minutes=n)

        def out(k: int, n: int = n, at: datetime = at) -> None:
            # What the receiver does with an inbound text: one transaction per request.
            with town.engine.begin() as conn:
                handle_reply(conn, "sms", PHONE_39, "OUT", f"SM{n}-{k}", at, voice)

        def follow_up(n: int = n) -> None:
            # The follow-up beat, a day on: every open case owes its customer an update.
            pipeline.keep_promises(ctx, NOW + timedelta(days=1 + n))

        errors += at_once(lambda: out(1), lambda: out(2), follow_up)
        cases_per_round.append(len(open_cases(town)))
        # A reply arriving while its case is open adds to it (another numbered update).
        errors += at_once(lambda: out(3), follow_up)
        with town.engine.begin() as conn:  # ops close the case: the next round opens one
            conn.execute(
                update(incidents)
                .where(incidents.c.scope == "premise", incidents.c.status != "resolved")
                .values(status="resolved", resolved_at=at)
            )
    assert [repr(e)[:300] for e in errors] == []
    assert cases_per_round == [1] * ROUNDS
    with town.engine.connect() as conn:
        numbers = conn.execute(select(incident_updates.c.incident_id, incident_updates.c.seq))
        seqs = Counter(tuple(row) for row in numbers)
    assert [key for key, count in seqs.items() if count > 1] == []


def test_a_lone_fault_on_a_line_with_a_case_open_is_that_case(
    town: Town, settings: Settings
) -> None:
    """The cycle never opens a second incident for a line whose OUT reply opened a case."""
    ctx = Context.build(settings)
    outage_and_restoration(ctx, settings)
    at = NOW + timedelta(hours=2)
    with town.engine.begin() as conn:
        handle_reply(conn, "sms", PHONE_39, "OUT", "SMout", at, Voice("Mill Road Fibre", ""))
    case = open_cases(town)
    assert len(case) == 1
    assert settings.jsonl_feed is not None
    with open(settings.jsonl_feed, "a") as feed:  # now the monitoring sees it too
        feed.write(json.dumps({"element": "cpe39", "state": "down", "at": at.isoformat()}) + "\n")
    run_cycle(ctx, at + timedelta(minutes=5))
    run_cycle(ctx, at + timedelta(minutes=10))
    assert open_cases(town) == case


def test_the_store_refuses_a_second_open_case_for_one_line(town: Town, settings: Settings) -> None:
    """The last line of defence, whatever a future caller forgets: a database constraint."""
    case = {
        "title": "Your line", "status": "investigating", "scope": "premise", "source": "reply",
        "root_element": "cpe39", "public": False, "notify": True, "started_at": NOW,
        "opened_at": NOW, "updated_at": NOW,
    }  # fmt: skip
    with town.engine.begin() as conn:
        conn.execute(incidents.insert().values(**case))
    with pytest.raises(IntegrityError), town.engine.begin() as conn:
        conn.execute(incidents.insert().values(**{**case, "source": "detected"}))
    with town.engine.begin() as conn:  # once it is resolved, a new case may open
        conn.execute(update(incidents).values(status="resolved", resolved_at=NOW))
        conn.execute(incidents.insert().values(**case))
        # An area incident, or one ops opened on that line, is not a case.
        conn.execute(incidents.insert().values(**{**case, "scope": "area"}))
        conn.execute(incidents.insert().values(**{**case, "source": "ops"}))


def test_the_lock_is_held_until_the_transaction_ends_and_taken_twice_is_harmless(
    town: Town,
) -> None:
    key = zlib.crc32(LOCK.encode())
    try_lock = text("SELECT pg_try_advisory_xact_lock(:key)")
    with town.engine.begin() as conn:
        incidents_lock(conn)
        incidents_lock(conn)  # an API function calling another: no second wait, no error
        with town.engine.begin() as other:
            assert other.execute(try_lock, {"key": key}).scalar() is False
    with town.engine.begin() as other:  # released with the transaction
        assert other.execute(try_lock, {"key": key}).scalar() is True
