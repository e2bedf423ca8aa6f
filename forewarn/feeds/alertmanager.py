"""Alertmanager: webhook payloads (version 4) and polling `GET /api/v2/alerts`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from httpx import USE_CLIENT_DEFAULT

from forewarn.cleantext import credentials_apart
from forewarn.feeds.safejson import Unreadable, loads
from forewarn.feeds.signal import FeedBatch, Reject, Signal, parse_timestamp

SOURCE = "alertmanager"
MAX_REJECTS_KEPT = 100
# Alertmanager writes this as endsAt while an alert is still firing.
_ZERO_TIME_PREFIX = "0001-01-01"


@dataclass(slots=True)
class WebhookResult:
    """Signals from one webhook payload; `truncated` means the rest must be polled."""

    batch: FeedBatch = field(default_factory=FeedBatch)
    truncated: bool = False


def element_of(labels: Mapping[str, Any], label_names: Sequence[str]) -> str | None:
    """The element an alert is about: the first of `label_names` present with a value."""
    for name in label_names:
        value = labels.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _alert_signal(
    alert: object, label_names: Sequence[str], firing_field: str = "status"
) -> Signal | str:
    """Turn one alert object into a signal, or return the reason it cannot be used."""
    if not isinstance(alert, dict):
        return f"alert is a {type(alert).__name__}, not an object"
    labels = alert.get("labels")
    if not isinstance(labels, dict):
        return "alert has no labels object"
    element = element_of(labels, label_names)
    if element is None:
        return f"alert has none of the element labels {list(label_names)}"
    if len(element) > 128:
        return "element name longer than 128 characters"
    fingerprint = alert.get("fingerprint")
    if fingerprint is not None and not isinstance(fingerprint, str):
        return f"fingerprint must be a string, not {_a(fingerprint)}"
    starts = alert.get("startsAt")
    if starts is not None and not isinstance(starts, str):
        return f"startsAt must be a string, not {_a(starts)}"
    status = alert.get(firing_field)
    if isinstance(status, dict):  # GET /api/v2/alerts: {"state": "active", ...}
        status = "firing"
    if status not in ("firing", "resolved"):
        return f"alert status {str(status)[:32]!r} is neither firing nor resolved"
    try:
        if status == "firing":
            observed = parse_timestamp(starts)
            return Signal(element, "down", observed, SOURCE, alert)
        ends = alert.get("endsAt")
        if not isinstance(ends, str) or ends.startswith(_ZERO_TIME_PREFIX):
            return "resolved alert without endsAt"
        return Signal(element, "up", parse_timestamp(ends), SOURCE, alert)
    except ValueError as err:
        return str(err)


def parse_webhook(body: bytes, label_names: Sequence[str]) -> WebhookResult:
    """Parse one webhook body; bad alerts are rejected one by one, the rest go on."""
    result = WebhookResult()
    try:
        payload = loads(body)
    except Unreadable as err:
        result.batch.rejects.append(Reject.of(SOURCE, f"payload is {err}", body))
        return result
    if not isinstance(payload, dict):
        reason = f"payload is a JSON {type(payload).__name__}, not an object"
        result.batch.rejects.append(Reject.of(SOURCE, reason, body))
        return result
    version = payload.get("version")
    if version is not None and str(version) != "4":
        reason = f"unsupported payload version {str(version)[:16]!r} (expected 4)"
        result.batch.rejects.append(Reject.of(SOURCE, reason, body))
        return result
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        result.batch.rejects.append(Reject.of(SOURCE, "payload has no alerts list", body))
        return result
    truncated = payload.get("truncatedAlerts")
    result.truncated = isinstance(truncated, int) and truncated > 0
    result.batch.extend(_signals_from_alerts(alerts, label_names))
    return result


def _signals_from_alerts(alerts: Iterable[object], label_names: Sequence[str]) -> FeedBatch:
    batch = FeedBatch()
    seen: set[tuple[object, ...]] = set()
    unrecorded = 0
    for alert in alerts:
        outcome = _alert_signal(alert, label_names)
        if isinstance(outcome, str):
            # A hostile payload can hold millions of bad alerts: keep the first few.
            if len(batch.rejects) < MAX_REJECTS_KEPT:
                batch.rejects.append(Reject.of(SOURCE, outcome, json.dumps(alert, default=str)))
            else:
                unrecorded += 1
            continue
        # HA pairs and retries repeat alerts: (fingerprint, startsAt) names one occurrence.
        assert isinstance(alert, dict)
        # Both are strings or absent: _alert_signal refused anything else.
        key = (alert.get("fingerprint") or outcome.element, alert.get("startsAt"), outcome.state)
        if key in seen:
            continue
        seen.add(key)
        batch.signals.append(outcome)
    if unrecorded:
        reason = f"{unrecorded} more bad alerts in the same payload (not kept)"
        batch.rejects.append(Reject.of(SOURCE, reason, ""))
    return batch


def poll(
    client: httpx.Client,
    base_url: str,
    label_names: Sequence[str],
    known_down: Iterable[str],
    now: datetime,
) -> FeedBatch:
    """Read the active alerts; elements we hold down from Alertmanager but no longer
    listed have recovered, so they get an `up` signal at `now`."""
    batch = fetch_active(client, base_url, label_names)
    batch.signals.extend(recoveries(batch, known_down, now))
    return batch


def fetch_active(client: httpx.Client, base_url: str, label_names: Sequence[str]) -> FeedBatch:
    """GET the active alerts (HTTP only: needs nothing from the store)."""
    url, auth = credentials_apart(base_url)
    response = client.get(
        url.rstrip("/") + "/api/v2/alerts", timeout=30, auth=auth or USE_CLIENT_DEFAULT
    )
    response.raise_for_status()
    try:
        alerts = loads(response.content)
    except Unreadable as err:
        raise ValueError(f"GET /api/v2/alerts answered with a body that is {err}") from None
    if not isinstance(alerts, list):
        raise ValueError("GET /api/v2/alerts did not return a list")
    return _signals_from_alerts(alerts, label_names)


def recoveries(active: FeedBatch, known_down: Iterable[str], now: datetime) -> list[Signal]:
    """An `up` at `now` for each element held down from Alertmanager that `active` (the
    alerts polled, and whatever else this read heard about) no longer names."""
    named = {s.element for s in active.signals}
    return [
        Signal(element, "up", now, SOURCE, {"reason": "no longer active"})
        for element in sorted(set(known_down) - named)
    ]


def _a(value: object) -> str:
    """What a JSON value is, in words: 'an object', 'a number'."""
    kinds = {dict: "an object", list: "a list", bool: "true or false", int: "a number"}
    return kinds.get(type(value), "a number" if isinstance(value, float) else "a value")
