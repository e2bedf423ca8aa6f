"""The one confirmation a follow asked for on the site is owed: a text to answer YES, or
an email with a signed link (opened, it shows a button; only the button confirms, since
mail scanners open links). Sent through the channels' own senders, once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy.engine import Engine

from forewarn.channels.base import Message, Outcome, Sender
from forewarn.channels.unsubscribe import sign, verify
from forewarn.incidents import followers
from forewarn.incidents.followers import Confirmation
from forewarn.store import writing
from forewarn.texts import say


def confirm_path(key: bytes, follower_id: str) -> str:
    """The receiver's path that confirms one follow, signed (not the unsubscribe signature:
    one link can never do the other's work)."""
    return f"/follow/confirm/{follower_id}/{sign(key, 'confirm ' + follower_id)}"


def confirms(key: bytes, follower_id: str, signature: str) -> bool:
    """Whether `signature` is the one `confirm_path` gives this follow (constant time)."""
    return verify(key, "confirm " + follower_id, signature)


def safe_path(key: bytes, customer_id: str, incident_id: int) -> str:
    """The receiver's path where an at-risk customer confirms they have our message about
    one incident, signed (neither the unsubscribe nor a follow's signature)."""
    signed = sign(key, f"safe {customer_id} {incident_id}")
    return f"/at-risk/confirm/{customer_id}/{incident_id}/{signed}"


def confirms_safe(key: bytes, customer_id: str, incident_id: int, signature: str) -> bool:
    """Whether `signature` is the one `safe_path` gives (constant time)."""
    return verify(key, f"safe {customer_id} {incident_id}", signature)


def message(
    confirmation: Confirmation, operator: str, public_url: str | None, key: bytes, index: int
) -> Message | None:
    """The confirmation as its channel sends it (None: an email needs a public URL)."""
    c = confirmation
    if c.channel == "email":
        if not public_url:
            return None
        link = public_url.rstrip("/") + confirm_path(key, c.follower_id)
        body = say("follow_confirm_email", c.locale, operator=operator, place=c.label, link=link)
        subject = say("follow_confirm_subject", c.locale, operator=operator, place=c.label)
    else:
        body = say("reply_follow_confirm", c.locale, operator=operator, place=c.label)
        subject = None
    # Not a ledger row: numbered within the batch, keyed by the follow (its idempotency key).
    return Message(index, c.channel, c.contact, c.follower_id, 0, 0, body, subject, locale=c.locale)


def send_confirmations(
    engine: Engine,
    senders: Mapping[str, Sender],
    operator: str,
    public_url: str | None,
    key: bytes,
    now: datetime,
    channels: Sequence[str] | None = None,
) -> int:
    """Send the confirmations follows are owed (on these `channels`, or all; each claimed
    before it goes: at most once); how many went. One that fails is noted against its
    follow, not sent again."""
    due = writing(
        engine, lambda conn: followers.confirmations_due(conn, now, channels=channels), "confirm"
    )
    if not due:
        return 0
    failures: dict[str, str] = {}
    sent = 0
    for channel in {c.channel for c in due}:
        sender = senders.get(channel)
        batch = [c for c in due if c.channel == channel]
        messages = [message(c, operator, public_url, key, i) for i, c in enumerate(batch)]
        for c, m in zip(batch, messages, strict=True):
            if m is None:
                failures[c.follower_id] = "no FOREWARN_PUBLIC_URL for the confirmation link"
            elif sender is None:
                failures[c.follower_id] = f"no {channel} channel"
        ready = [m for m in messages if m is not None and sender is not None]
        if sender is None or not ready:
            continue
        for m, result in zip(ready, sender.send(ready), strict=True):
            if result.outcome is Outcome.DELIVERED:
                sent += 1
            else:
                failures[m.customer_id or ""] = result.detail or result.outcome.value
    if failures:
        writing(engine, lambda conn: followers.confirmation_failed(conn, failures), "confirmations")
    return sent
