"""The detection-cycle flow through Prefect's real engine."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import threading
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from prefect.settings import PREFECT_API_URL
from sqlalchemy import func, select

from forewarn import pipeline
from forewarn.channels import CHANNELS
from forewarn.channels.base import Message
from forewarn.config import Settings
from forewarn.context import Context
from forewarn.drill import Capture
from forewarn.flows import detection_cycle, dispatch, follow_up_cycle, given_context
from forewarn.notifiers.journal import Journal
from forewarn.notifiers.registry import Registry
from forewarn.store import customers, deliveries, make_engine, premises
from tests.conftest import NOW, use_settings
from tests.town import Town, report_cabinet

# Every flow here runs against a Prefect test server.
pytestmark = pytest.mark.integration


def latest_artifact(key: str) -> dict[str, Any]:
    """The newest artifact under `key`, read from the Prefect server's REST API (Prefect
    3.8.8's own `Artifact.get` sends a filter its server refuses)."""
    query = {"artifacts": {"key": {"any_": [key]}}, "limit": 1, "offset": 0, "sort": "CREATED_DESC"}
    response = httpx.post(f"{PREFECT_API_URL.value()}/artifacts/filter", json=query)
    response.raise_for_status()
    [artifact] = response.json()
    return dict(artifact)


@pytest.mark.usefixtures("prefect_harness")
def test_the_flow_runs_a_cycle_and_a_second_run_queues_nothing(
    town: Town, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_settings(monkeypatch, settings)
    report_cabinet(settings.jsonl_feed, "cabB", "down", NOW)
    first = detection_cycle(now=NOW + timedelta(minutes=5))
    assert [f.root for f in first.detection.faults] == ["cabB"]
    # four customers by SMS and email, and one public post
    assert first.changes.opened == [1] and first.dispatch.sent == first.queued == 9
    lines = sum(len(p.read_text().splitlines()) for p in settings.outbox.glob("*.jsonl"))
    second = detection_cycle(now=NOW + timedelta(minutes=6))
    assert second.queued == 0 and second.dispatch.sent == 0 and second.changes.opened == []
    again = sum(len(p.read_text().splitlines()) for p in settings.outbox.glob("*.jsonl"))
    assert again == lines == 9
    with town.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(deliveries)).scalar_one() == 9
    summary = json.loads((settings.site_dir / "api/v2/summary.json").read_text())
    assert summary["incidents"][0]["id"] == "1"
    # What the Prefect UI shows of the incident: its delivery progress and its updates.
    delivered = latest_artifact("incident-1-delivery")
    assert delivered["data"] == 100.0
    assert "email: 4 sent (of 4)" in delivered["description"]
    assert "sms: 4 sent (of 4)" in delivered["description"]
    assert "social: 1 sent (of 1)" in delivered["description"]
    updates = latest_artifact("incident-1-updates")
    assert [row["event"] for row in json.loads(updates["data"])] == ["opened"]


@pytest.mark.usefixtures("prefect_harness")
def test_the_dispatch_flow_sends_what_waited_for_the_morning(
    town: Town, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_settings(monkeypatch, settings)
    night = NOW.replace(hour=23)
    report_cabinet(settings.jsonl_feed, "cabB", "down", night)
    cycle = detection_cycle(now=night + timedelta(minutes=5))
    assert cycle.queued == 9 and cycle.dispatch.deferred == 8 and cycle.dispatch.sent == 1
    morning = dispatch(now=night + timedelta(hours=8, minutes=5))  # 07:05 in London
    assert morning.sent == 8 and morning.batches >= 1
    with town.engine.connect() as conn:
        statuses = set(conn.execute(select(deliveries.c.status)).scalars())
    assert statuses == {"sent"}


class Heard(logging.Handler):
    """Keeps every log line the flows write, formatted as an operator would read it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.mark.usefixtures("prefect_harness")
def test_the_flows_logs_name_incidents_never_people(
    town: Town, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_settings(monkeypatch, settings.model_copy(update={"quiet_hours": "", "sleep_hours": ""}))
    # Every line forewarn's flows log goes through get_run_logger (Prefect's run logger,
    # which Prefect configures afresh per run): listen to what they are given.
    heard = Heard()
    listener = logging.getLogger("tests.heard")
    listener.addHandler(heard)
    listener.setLevel(logging.DEBUG)
    monkeypatch.setattr(pipeline, "logger", lambda: listener)
    logging.getLogger("forewarn").addHandler(heard)
    report_cabinet(settings.jsonl_feed, "cabB", "down", NOW)
    detection_cycle(now=NOW + timedelta(minutes=5))
    promise = NOW + timedelta(hours=7)
    assert follow_up_cycle(now=promise).reminded == [1]
    report_cabinet(settings.jsonl_feed, "cabB", "up", promise + timedelta(minutes=1))
    detection_cycle(now=promise + timedelta(minutes=2))
    detection_cycle(now=promise + timedelta(minutes=12))
    logging.getLogger("forewarn").removeHandler(heard)
    logs = heard.lines
    assert any("incident=1" in line for line in logs), logs
    with town.engine.connect() as conn:
        people = conn.execute(
            select(customers.c.customer_id, customers.c.phone, customers.c.email,
                   premises.c.address)
            .join(premises, premises.c.premise_id == customers.c.premise_id)
        ).all()  # fmt: skip
    assert len(people) == 12
    personal = {value for row in people for value in row[1:] if value}
    personal |= {phone[-6:] for _, phone, _, _ in people}  # reformatted numbers too
    ids = re.compile(r"\b(" + "|".join(re.escape(row[0]) for row in people) + r")\b")
    for line in logs:
        assert not [value for value in personal if value in line], line
        assert not ids.search(line), line


@pytest.mark.usefixtures("prefect_harness")
def test_a_flow_run_by_an_entrypoint_uses_the_context_it_was_given(
    town: Town, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flows find the context `serve` or `run-once` built (its senders, here ones that
    only record), in the thread that gave it and in a copy of its context, not one of
    their own from the environment (which would write to the outbox)."""
    use_settings(monkeypatch, settings)
    sent: list[tuple[datetime, Message]] = []
    clock = [NOW]
    registry = Registry(
        {c: Capture(c, clock, sent) for c in CHANNELS}, Journal(settings.journal_dir)
    )
    ctx = Context(settings, make_engine(settings.db_url), httpx.Client(), registry)
    report_cabinet(settings.jsonl_feed, "cabB", "down", NOW)
    with given_context(ctx):
        detection_cycle(now=NOW + timedelta(minutes=5))
        beat = contextvars.copy_context()
        thread = threading.Thread(target=beat.run, args=(follow_up_cycle, NOW + timedelta(hours=7)))
        thread.start()
        thread.join(timeout=120)
    ctx.close()
    assert len([m for _, m in sent if m.update_seq == 1]) == 9  # the opening, recorded here
    assert any(m.update_seq == 2 for _, m in sent)  # the follow-up's, from the other thread
    assert not list(settings.outbox.glob("*.jsonl"))  # no context of their own
