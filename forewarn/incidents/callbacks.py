"""Twilio's callbacks: each is kept in the inbox table before it is handled (so none is
lost), and a status callback updates the delivery ledger row of the text it is about.
Monitoring input goes through forewarn.feeds; this is what the SMS provider tells us."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from forewarn.store import deliveries, inbox

INBOUND_SOURCE = "twilio-inbound"
STATUS_SOURCE = "twilio-status"
# A callback still unmatched after this long is not about a text of ours.
STATUS_PATIENCE = timedelta(days=1)
# Twilio's delivery error codes worth a resend; the rest are final (FACTS.md).
RETRYABLE_DELIVERY_CODES = frozenset({"30001", "30003", "30008"})


def keep(conn: Connection, source: str, form: Mapping[str, str], now: datetime) -> int:
    """Keep a callback's form until it is handled; returns its inbox id."""
    result = conn.execute(
        inbox.insert().values(source=source, received_at=now, body=json.dumps(form).encode())
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def handled(conn: Connection, ids: Sequence[int], now: datetime) -> None:
    """Record that these callbacks have been handled."""
    if ids:
        conn.execute(update(inbox).where(inbox.c.id.in_(ids)).values(processed_at=now))


def apply_status(
    conn: Connection, message_sid: str, status: str, error_code: str | None, now: datetime
) -> bool:
    """Record Twilio's news about a text; a retryable delivery failure queues a resend.

    Returns False when no ledger row has that SID (not ours, or not yet recorded).
    """
    row = conn.execute(
        select(deliveries.c.id, deliveries.c.status, deliveries.c.attempts).where(
            deliveries.c.provider_ref == message_sid, deliveries.c.channel == "sms"
        )
    ).first()
    if row is None:
        return False
    values: dict[str, object] = {"provider_status": status[:32]}
    if status in ("failed", "undelivered"):
        code = (error_code or "").strip()
        values["error"] = f"twilio {status}, error {code or 'unknown'}"
        # 30008 ("unknown error") is worth one more try, not more (FACTS.md).
        once = code == "30008" and row.attempts >= 2
        if code in RETRYABLE_DELIVERY_CODES and not once:
            values.update(status="queued", next_attempt_at=now)
        else:
            values["status"] = "failed"
    conn.execute(update(deliveries).where(deliveries.c.id == row.id).values(**values))
    return True


def replay_status_callbacks(conn: Connection, now: datetime, limit: int = 1000) -> int:
    """Apply the status callbacks that arrived before their text's SID was recorded (Twilio
    can answer faster than the dispatcher writes); returns how many now matched."""
    rows = conn.execute(
        select(inbox.c.id, inbox.c.body, inbox.c.received_at)
        .where(inbox.c.source == STATUS_SOURCE, inbox.c.processed_at.is_(None))
        .order_by(inbox.c.id)
        .limit(limit)
    ).all()
    done, matched = [], 0
    for inbox_id, body, received_at in rows:
        form = json.loads(body)
        if apply_status(
            conn, form["MessageSid"], form["MessageStatus"], form.get("ErrorCode"), now
        ):
            matched += 1
            done.append(inbox_id)
        elif received_at < now - STATUS_PATIENCE:
            done.append(inbox_id)
    handled(conn, done, now)
    return matched
