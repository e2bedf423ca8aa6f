"""Several workers against one PostgreSQL: two dispatchers send every message exactly
once (claims skip rows another holds); two detection cycles open one incident."""

from __future__ import annotations

import subprocess
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prefect.logging import disable_run_logger
from sqlalchemy import func, select

from forewarn.channels.mime import message_id
from forewarn.config import Settings
from forewarn.context import Context
from forewarn.pipeline import detect_faults, update_incidents
from forewarn.store import deliveries, incidents, make_engine
from testkit.crash import worker, worker_env
from testkit.ledger_data import fill_ledger, phone
from testkit.servers import fake_twilio, smtp_server
from tests.conftest import NOW, fresh_postgres_database
from tests.town import Town, report_cabinet

# Every test here runs on a real PostgreSQL.
pytestmark = pytest.mark.integration


def test_two_dispatchers_on_postgresql_send_every_message_exactly_once(
    postgres_server: str, tmp_path: Path
) -> None:
    db_url = fresh_postgres_database(postgres_server)
    engine = make_engine(db_url)
    customers = 600
    fill_ledger(engine, customers, ("sms", "email"), datetime.now(UTC))
    with fake_twilio() as (twilio_url, twilio), smtp_server() as (smtp_url, mailbox):
        workers = []
        for n in (1, 2):
            directory = tmp_path / f"worker{n}"
            directory.mkdir()
            env = worker_env(db_url, twilio_url, smtp_url, directory, lease=300)
            workers.append(subprocess.Popen(worker(batch=50), env=env, cwd=directory))
        assert [w.wait(timeout=300) for w in workers] == [0, 0]
        texts = Counter(m["to"] for m in twilio.messages)
        emails = mailbox.by_message_id()
    assert texts == Counter({phone(i): 1 for i in range(customers)})
    sender = "alerts@millroad.example"
    assert emails == Counter({message_id(f"1-1-c{i}-email", sender): 1 for i in range(customers)})
    with engine.connect() as conn:
        statuses = {
            str(s): int(n)
            for s, n in conn.execute(
                select(deliveries.c.status, func.count()).group_by(deliveries.c.status)
            )
        }
    assert statuses == {"sent": 2 * customers}
    engine.dispose()


@pytest.fixture
def db_url(postgres_server: str) -> str:
    """This module's store is PostgreSQL."""
    return fresh_postgres_database(postgres_server)


def test_two_detection_cycles_at_once_open_one_incident(town: Town, settings: Settings) -> None:
    ctx = Context.build(settings)
    report_cabinet(settings.jsonl_feed, "cabA", "down", NOW)
    moment = NOW + timedelta(minutes=3)
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def cycle() -> None:
        try:
            start.wait()
            detection = detect_faults(ctx, moment).detection
            update_incidents(ctx, detection, moment)
        except BaseException as err:  # reported below, not lost in the thread
            errors.append(err)

    threads = [threading.Thread(target=cycle) for _ in range(2)]
    with disable_run_logger():  # a process-wide switch: held here for both threads
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert errors == []
    with ctx.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(incidents)).scalar_one() == 1
        # cabinet A: three customers by SMS and email, no. 45 by email, one public post
        assert conn.execute(select(func.count()).select_from(deliveries)).scalar_one() == 8
