"""Feeds: Alertmanager payloads and polling, JSON lines; bad input never stops the batch."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from forewarn.config import Settings
from forewarn.feeds import alertmanager, jsonl
from forewarn.feeds.inbox import unprocessed
from forewarn.feeds.signal import parse_timestamp

LABELS = ["element", "instance"]
NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)


def alert(element: str, status: str = "firing", **extra: Any) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "CabinetDown", "element": element},
        "annotations": {"summary": "down"},
        "startsAt": "2026-11-23T13:50:00.123456789Z",
        "endsAt": "2026-11-23T13:58:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": f"fp-{element}",
        **extra,
    }


def payload(alerts: list[Any], **extra: Any) -> bytes:
    body = {
        "version": "4", "groupKey": "{}:{}", "truncatedAlerts": 0, "status": "firing",
        "receiver": "forewarn", "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
        "externalURL": "http://am", "alerts": alerts, **extra,
    }  # fmt: skip
    return json.dumps(body).encode()


def test_webhook_gives_down_and_up_signals_and_ignores_unknown_fields() -> None:
    body = payload(
        [alert("cabA"), alert("cabB", "resolved")],
        notification_reason=1,
        routeLabels={},
        orgId=1,
        title="Grafana",
        silenceURL="x",
    )
    result = alertmanager.parse_webhook(body, LABELS)
    got = [(s.element, s.state, s.observed_at) for s in result.batch.signals]
    assert got == [
        ("cabA", "down", datetime(2026, 11, 23, 13, 50, 0, 123456, tzinfo=UTC)),
        ("cabB", "up", datetime(2026, 11, 23, 13, 58, tzinfo=UTC)),
    ]
    assert result.batch.rejects == [] and not result.truncated


def test_repeats_within_a_payload_are_dropped_and_truncation_noticed() -> None:
    body = payload([alert("cabA"), alert("cabA"), alert("cabA")], truncatedAlerts=12)
    result = alertmanager.parse_webhook(body, LABELS)
    assert len(result.batch.signals) == 1
    assert result.truncated


def test_the_element_label_order_is_respected() -> None:
    a = alert("ignored")
    a["labels"] = {"instance": "olt1:9100", "element": "cabA"}
    assert (
        alertmanager.parse_webhook(payload([a]), ["instance", "element"]).batch.signals[0].element
        == "olt1:9100"
    )
    assert alertmanager.parse_webhook(payload([a]), ["element"]).batch.signals[0].element == "cabA"


BAD_ALERTS = [
    ("not-an-object", "just a string", "not an object"),
    ("no-labels", {"status": "firing", "startsAt": "2026-11-23T13:50:00Z"}, "no labels object"),
    ("labels-wrong-type", {"status": "firing", "labels": ["element"]}, "no labels object"),
    ("no-element-label", alert("x") | {"labels": {"alertname": "x"}}, "none of the element labels"),
    ("element-not-string", alert("x") | {"labels": {"element": 42}}, "none of the element labels"),
    ("bad-status", alert("x", status="exploded"), "neither firing nor resolved"),
    ("naive-time", alert("x") | {"startsAt": "2026-11-23T13:50:00"}, "no UTC offset"),
    ("time-not-string", alert("x") | {"startsAt": 1700000000}, "must be a string"),
    ("garbage-time", alert("x") | {"startsAt": "yesterday"}, "not an ISO-8601"),
    (
        "resolved-no-end",
        alert("x", "resolved") | {"endsAt": "0001-01-01T00:00:00Z"},
        "without endsAt",
    ),
    ("huge-element", alert("x" * 500), "longer than 128"),
]


@pytest.mark.parametrize(
    ("bad", "reason"), [(b, r) for _, b, r in BAD_ALERTS], ids=[i for i, _, _ in BAD_ALERTS]
)
def test_a_bad_alert_is_rejected_and_its_neighbours_go_on(bad: object, reason: str) -> None:
    result = alertmanager.parse_webhook(payload([alert("before"), bad, alert("after")]), LABELS)
    assert [s.element for s in result.batch.signals] == ["before", "after"]
    assert len(result.batch.rejects) == 1
    assert reason in result.batch.rejects[0].reason


BAD_PAYLOADS = [
    ("not-utf8", b"\xff\xfe{\x00", "not UTF-8"),
    ("not-json", b'{"alerts": [', "not JSON"),
    ("truncated", payload([alert("a")])[:-20], "not JSON"),
    ("array", b"[1, 2, 3]", "not an object"),
    ("no-alerts", b'{"version": "4"}', "no alerts list"),
    ("alerts-wrong-type", b'{"version": "4", "alerts": {"a": 1}}', "no alerts list"),
    ("version-3", b'{"version": "3", "alerts": []}', "unsupported payload version"),
    ("ten-megabytes", b'{"alerts": [' + b'"x",' * 2_500_000 + b'"x"]}', "2499901 more bad alerts"),
]


@pytest.mark.parametrize(
    ("body", "reason"), [(b, r) for _, b, r in BAD_PAYLOADS], ids=[i for i, _, _ in BAD_PAYLOADS]
)
def test_bad_payloads_are_rejected_with_a_reason(body: bytes, reason: str) -> None:
    result = alertmanager.parse_webhook(body, LABELS)
    assert result.batch.signals == []
    assert len(result.batch.rejects) >= 1
    assert all(len(r.raw) <= 2000 for r in result.batch.rejects)
    assert any(reason in r.reason for r in result.batch.rejects)


def test_polling_reads_active_alerts_and_notices_ended_ones() -> None:
    active = [
        {"labels": {"element": "cabA"}, "annotations": {}, "startsAt": "2026-11-23T13:50:00Z",
         "endsAt": "2026-11-23T14:10:00Z", "updatedAt": "2026-11-23T13:59:00Z",
         "fingerprint": "f1", "receivers": [{"name": "forewarn"}], "generatorURL": "",
         "status": {"state": "active", "silencedBy": [], "inhibitedBy": []}},
    ]  # fmt: skip
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, json=active)

    client = httpx.Client(transport=httpx.MockTransport(handler))
    batch = alertmanager.poll(client, "http://am:9093/", LABELS, ["cabA", "cabB"], NOW)
    assert seen == ["/api/v2/alerts"]
    assert [(s.element, s.state) for s in batch.signals] == [("cabA", "down"), ("cabB", "up")]
    assert batch.signals[1].observed_at == NOW


def test_polling_a_broken_alertmanager_raises_a_clear_error() -> None:
    client = httpx.Client(
        transport=httpx.MockTransport(lambda r: httpx.Response(200, json={"a": 1}))
    )
    with pytest.raises(ValueError, match="did not return a list"):
        alertmanager.poll(client, "http://am", LABELS, [], NOW)
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(503)))
    with pytest.raises(httpx.HTTPStatusError):
        alertmanager.poll(client, "http://am", LABELS, [], NOW)


JSONL_CASES = [
    ("good", b'{"element": "cabA", "state": "down", "at": "2026-11-23T13:50:00+00:00"}', None),
    (
        "unknown-fields",
        b'{"element": "cabA", "state": "up", "at": "2026-11-23T13:50:00Z", "x": [1]}',
        None,
    ),
    ("not-json", b"{element: cabA}", "not JSON"),
    ("not-utf8", b'{"element": "\xff", "state": "down"}', "not UTF-8"),
    ("array", b"[1]", "not an object"),
    (
        "bad-state",
        b'{"element": "cabA", "state": "sideways", "at": "2026-11-23T13:50:00Z"}',
        "'state' must be",
    ),
    (
        "element-number",
        b'{"element": 7, "state": "down", "at": "2026-11-23T13:50:00Z"}',
        "'element' must be",
    ),
    ("no-time", b'{"element": "cabA", "state": "down"}', "'at'"),
    (
        "naive-time",
        b'{"element": "cabA", "state": "down", "at": "2026-11-23T13:50:00"}',
        "no UTC offset",
    ),
    ("huge", b'{"element": "' + b"x" * 70_000 + b'"}', "longer than"),
]


@pytest.mark.parametrize(
    ("line", "reason"), [(b, r) for _, b, r in JSONL_CASES], ids=[i for i, _, _ in JSONL_CASES]
)
def test_jsonl_lines(line: bytes, reason: str | None) -> None:
    batch = jsonl.parse_lines(
        b'{"element": "first", "state": "down", "at": "2026-11-23T13:00:00Z"}\n' + line + b"\n"
    )
    assert batch.signals[0].element == "first"
    if reason is None:
        assert len(batch.signals) == 2 and batch.rejects == []
    else:
        assert len(batch.signals) == 1
        assert reason in batch.rejects[0].reason and batch.rejects[0].reason.startswith("line 2")


def test_jsonl_file_is_read_on_from_its_cursor_and_waits_for_whole_lines(tmp_path: Path) -> None:
    feed = tmp_path / "feed.jsonl"
    line = b'{"element": "cabA", "state": "down", "at": "2026-11-23T13:50:00Z"}\n'
    feed.write_bytes(line + line[:20])
    first = jsonl.read_file(feed, 0)
    assert len(first.batch.signals) == 1 and first.position == len(line)
    feed.write_bytes(line + line)
    second = jsonl.read_file(feed, first.position)
    assert len(second.batch.signals) == 1 and second.position == 2 * len(line)
    assert jsonl.read_file(feed, second.position).batch.signals == []
    feed.write_bytes(line)  # rotated: smaller than the cursor
    assert len(jsonl.read_file(feed, second.position).batch.signals) == 1


def test_jsonl_url_is_read_with_httpx() -> None:
    body = b'{"element": "cabA", "state": "down", "at": "2026-11-23T13:50:00Z"}\nnonsense\n'
    client = httpx.Client(
        transport=httpx.MockTransport(lambda r: httpx.Response(200, content=body))
    )
    batch = jsonl.read_url(client, "http://feeds.local/net.jsonl")
    assert len(batch.signals) == 1 and len(batch.rejects) == 1


def test_timestamps_accept_nanoseconds_and_offsets() -> None:
    assert parse_timestamp("2026-11-23T15:50:00.999999999+02:00") == datetime(
        2026, 11, 23, 13, 50, 0, 999999, tzinfo=UTC
    )


def test_a_cycle_fetches_its_http_feeds_before_it_takes_the_stores_lock(
    settings: Settings, engine: Engine, db_url: str, tmp_path: Path
) -> None:
    """Alertmanager and a feed URL may take their 30 s: the store stays writable meanwhile
    (the receiver keeps storing webhooks); the inbox is still read under the lock."""
    from forewarn.context import Context
    from forewarn.feeds.inbox import store_payload
    from forewarn.notifiers.journal import Journal
    from forewarn.notifiers.registry import Registry
    from forewarn.pipeline import detect_faults

    seen: dict[str, str] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        other = sqlite3.connect(db_url.removeprefix("sqlite:///"), timeout=0.2)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            seen[request.url.path] = "store free"
        except sqlite3.OperationalError as err:
            seen[request.url.path] = str(err)
        finally:
            other.close()
        if request.url.path == "/api/v2/alerts":
            return httpx.Response(200, json=[])
        return httpx.Response(200, content=b"")

    remote = settings.model_copy(
        update={"alertmanager_url": "http://am:9093", "jsonl_feed": "http://feeds.local/x.jsonl"}
    )
    client = httpx.Client(transport=httpx.MockTransport(handler))
    ctx = Context(remote, engine, client, Registry({}, Journal(tmp_path / "journal")))
    webhook = json.dumps({"version": "4", "alerts": []}).encode()
    with engine.begin() as conn:
        store_payload(conn, alertmanager.SOURCE, webhook, NOW)
    sensed = detect_faults(ctx, NOW)
    assert seen == {"/api/v2/alerts": "store free", "/x.jsonl": "store free"}
    assert sensed.feed_errors == []
    with engine.connect() as conn:  # the webhook was read, and acknowledged, once
        assert list(unprocessed(conn, alertmanager.SOURCE)) == []
