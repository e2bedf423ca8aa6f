"""Twilio's callbacks: each is kept in the inbox table before it is handled (so none is
lost); a status callback updates the delivery ledger row of the text or call it is about,
and a key pressed on a call confirms that customer's safety check. Monitoring input goes
through forewarn.feeds; this is what the SMS and voice provider tells us."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from forewarn.channels import sms, voice
from forewarn.channels.sms import MEANINGS, ONCE_CODES, RETRYABLE_DELIVERY_CODES
from forewarn.incidents import safety
from forewarn.incidents.ledger.claims import MAX_ATTEMPTS, backoff
from forewarn.store import customers, deliveries, inbox

INBOUND_SOURCE = "twilio-inbound"
STATUS_SOURCE = "twilio-status"
CALL_STATUS_SOURCE = "twilio-call-status"
KEY_SOURCE = "twilio-key"
# A callback still unmatched after this long is not about a text of ours.
STATUS_PATIENCE = timedelta(days=1)


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
    """Record Twilio's news about a text. A retryable delivery failure (30001, 30003, once
    30008) queues a resend after the same backoff as a failed send, and counts against the
    same cap: each resend is an attempt, and after `MAX_ATTEMPTS` the text is `failed`
    with the reason (a handset off in a power cut does not get a paid text every beat).

    Returns False when no ledger row has that SID (not ours, or not yet recorded). News
    about a text that is no longer `sent` (queued again, resent, settled) changes nothing:
    a repeated or late callback never queues a text twice.
    """
    row = conn.execute(
        select(deliveries.c.id, deliveries.c.status, deliveries.c.attempts).where(
            deliveries.c.provider_ref == message_sid, deliveries.c.channel == sms.CHANNEL.name
        )
    ).first()
    if row is None:
        return False
    if row.status != "sent":
        return True
    values: dict[str, object] = {"provider_status": status[:32]}
    if status in ("failed", "undelivered"):
        code = (error_code or "").strip()
        attempts = int(row.attempts)
        what = f"{status} {code or 'without an error code'}"
        if code in MEANINGS:
            what += f" ({MEANINGS[code]})"
        limit = 2 if code in ONCE_CODES else MAX_ATTEMPTS
        if code in RETRYABLE_DELIVERY_CODES and attempts < limit:
            values.update(
                status="queued",
                next_attempt_at=now + backoff(attempts),
                error=f"{what}, attempt {attempts} of {limit}",
            )
        elif code in RETRYABLE_DELIVERY_CODES:
            plural = "s" if attempts != 1 else ""
            values.update(status="failed", error=f"{what} after {attempts} attempt{plural}")
        else:
            values.update(status="failed", error=what)
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


def apply_call_status(conn: Connection, call_sid: str, status: str, now: datetime) -> bool:
    """Record how a call ended: answered, busy, no answer, or not placed (then `failed`,
    with the reason). An unanswered call is not called again here: only a safety check
    calls twice (safety.escalate). False when no call of ours has that SID."""
    row = conn.execute(
        select(deliveries.c.id, deliveries.c.status).where(
            deliveries.c.provider_ref == call_sid, deliveries.c.channel == voice.CHANNEL.name
        )
    ).first()
    if row is None:
        return False
    if row.status != "sent" or status not in voice.FINAL:
        return True
    values: dict[str, object] = {"provider_status": status}
    if status == "failed":
        values.update(status="failed", error=f"call {voice.ENDINGS[status]}")
    conn.execute(update(deliveries).where(deliveries.c.id == row.id).values(**values))
    return True


def key_pressed(conn: Connection, call_sid: str, now: datetime) -> str | None:
    """A key pressed on one of our calls: the customer heard it, so their open safety
    check of that incident is confirmed. Returns the customer's locale (for the thanks),
    or None when the call is not ours. A press on a call about another incident confirms
    only that one; a press repeated changes nothing more."""
    row = conn.execute(
        select(deliveries.c.customer_id, deliveries.c.incident_id, customers.c.locale)
        .join(customers, customers.c.customer_id == deliveries.c.customer_id)
        .where(deliveries.c.provider_ref == call_sid, deliveries.c.channel == voice.CHANNEL.name)
    ).first()
    if row is None:
        return None
    safety.confirm(conn, [str(row.customer_id)], "key press", now, int(row.incident_id))
    return str(row.locale or "en")
