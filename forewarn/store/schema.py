"""The schema every stage shares: its tables, stage by stage, the UTC timestamp type
they use, and the key/value meta table's helpers.

Long because every table is here, each beside the comments that say what its columns
mean: one place to read the store whole (the migrations say how it came to be)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Connection, Dialect

from forewarn.store.bulk import insert_ignoring_conflicts, upsert

metadata = MetaData()


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, whatever the database."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use timezone-aware UTC")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def now_utc() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)


# --- network ---------------------------------------------------------------
elements = Table(
    "elements",
    metadata,
    Column("element_id", String(128), primary_key=True),
    Column("parent_id", String(128), nullable=True),
    Column("kind", String(64), nullable=False),
    Column("name", String(256), nullable=False),
    Column("lat", Float, nullable=True),
    Column("lon", Float, nullable=True),
)

premises = Table(
    "premises",
    metadata,
    Column("premise_id", String(128), primary_key=True),
    Column("element_id", String(128), nullable=False, index=True),
    Column("address", String(512), nullable=False),
    Column("postcode", String(32), nullable=False, index=True),
    Column("street", String(512), nullable=False, index=True),
    Column("lat", Float, nullable=True),
    Column("lon", Float, nullable=True),
)

customers = Table(
    "customers",
    metadata,
    Column("customer_id", String(128), primary_key=True),
    Column("premise_id", String(128), nullable=False, index=True),
    Column("phone", String(32), nullable=True),
    Column("email", String(320), nullable=True),
    Column("social", String(320), nullable=True),
    Column("channels", String(128), nullable=False),
    Column("locale", String(16), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("opted_out", Boolean, nullable=False, default=False),
    # What the line keeps alive ("telecare;medical"): at risk when it fails. Never public.
    Column("needs", String(128), nullable=True),
)

geocode_cache = Table(
    "geocode_cache",
    metadata,
    Column("query", String(700), primary_key=True),
    Column("lat", Float, nullable=True),
    Column("lon", Float, nullable=True),
    Column("looked_up_at", UTCDateTime, nullable=False),
)

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# --- feeds -----------------------------------------------------------------
inbox = Table(
    "inbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(64), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("processed_at", UTCDateTime, nullable=True, index=True),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("reason", Text, nullable=False),
    Column("raw", Text, nullable=False),
)

feed_cursors = Table(
    "feed_cursors",
    metadata,
    Column("source", String(512), primary_key=True),
    Column("position", Integer, nullable=False),
)

# --- detection -------------------------------------------------------------
element_states = Table(
    "element_states",
    metadata,
    Column("element_id", String(128), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("since", UTCDateTime, nullable=False),
    Column("observed_at", UTCDateTime, nullable=False),
    Column("source", String(64), nullable=False),
    # Confirmed: down long enough to count, and not yet up long enough to clear.
    Column("confirmed", Boolean, nullable=False),
    Column("down_since", UTCDateTime, nullable=True),
)

# --- incidents -------------------------------------------------------------
# Which incidents are cases, at most one open per line (migration 0006 says the same).
ONE_OPEN_CASE = text(
    "scope = 'premise' AND status <> 'resolved' AND source IN ('detected', 'reply')"
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("title", String(256), nullable=False),
    # What the title says (templates/words/<locale>/title_<kind>.txt) and its values as
    # JSON, for the page's other locales; NULL for a title ops wrote.
    Column("title_kind", String(48), nullable=True),
    Column("title_params", Text, nullable=True),
    Column("status", String(16), nullable=False),
    Column("scope", String(16), nullable=False),
    Column("source", String(16), nullable=False),
    Column("root_element", String(128), nullable=True, index=True),
    Column("public", Boolean, nullable=False),
    Column("notify", Boolean, nullable=False),
    Column("cause", Text, nullable=True),
    Column("etr", UTCDateTime, nullable=True),
    Column("area_name", String(256), nullable=True),
    Column("premises_count", Integer, nullable=False, default=0),
    Column("customers_count", Integer, nullable=False, default=0),
    Column("started_at", UTCDateTime, nullable=False),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime, nullable=True),
    Column("next_update_at", UTCDateTime, nullable=True),
    # The incident a single-premise case was split from (still down, or an OUT reply).
    Column("parent_id", Integer, nullable=True),
    # The announced estimate that customers were already warned would be missed.
    Column("etr_warned", UTCDateTime, nullable=True),
    # Planned work: when it starts and ends.
    Column("scheduled_for", UTCDateTime, nullable=True),
    Column("scheduled_until", UTCDateTime, nullable=True),
    # One open case per line: a single-premise incident of the detection cycle or of an
    # OUT reply (a case, restoration.open_case) is never opened twice for one element.
    Index(
        "uq_incidents_one_open_case",
        "root_element",
        unique=True,
        sqlite_where=ONE_OPEN_CASE,
        postgresql_where=ONE_OPEN_CASE,
    ),
)

incident_updates = Table(
    "incident_updates",
    metadata,
    Column("incident_id", Integer, ForeignKey("incidents.id"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("event", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("body", Text, nullable=False),
    # What the body says, so the page can say it in any locale: the kind of words
    # (templates/words/<locale>/update_<kind>.txt) and their values as JSON; NULL for free
    # text (an ops note), shown as written.
    Column("kind", String(48), nullable=True),
    Column("params", Text, nullable=True),
    Column("etr", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("next_update_at", UTCDateTime, nullable=True),
    Column("notify", Boolean, nullable=False),
    Column("deliveries_queued", Boolean, nullable=False, default=False),
)

etr_history = Table(
    "etr_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=False, index=True),
    Column("etr", UTCDateTime, nullable=True),
    Column("set_at", UTCDateTime, nullable=False),
    Column("reason", Text, nullable=False),
    # Whether customers were told this estimate (small wobbles are kept, not announced).
    Column("announced", Boolean, nullable=False, default=True),
)

incident_premises = Table(
    "incident_premises",
    metadata,
    Column("incident_id", Integer, ForeignKey("incidents.id"), primary_key=True),
    Column("premise_id", String(128), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("added_seq", Integer, nullable=False),
    # The update that last changed this premise's state (who hears "restored" when).
    Column("changed_seq", Integer, nullable=True),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", Integer, nullable=False),
    Column("update_seq", Integer, nullable=False),
    # The customer, or "" for a public post; a partner key for webhooks.
    Column("customer_id", String(128), nullable=False),
    Column("channel", String(32), nullable=False),
    # queued -> sending -> sent | failed | cancelled; retryable failures go back to queued.
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("rank", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("claimed_at", UTCDateTime, nullable=True),
    # Who holds a `sending` row ("host:pid:start"), until when (renewed while its sends
    # run), and the claim's token: only the claim that still holds a row records it.
    Column("claimed_by", String(128), nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("claim_token", String(32), nullable=True),
    Column("sent_at", UTCDateTime, nullable=True),
    # What was sent, to whom, and the provider's id for it: the customer's history, and
    # what a restart compares with the provider before it resends anything.
    Column("recipient", String(512), nullable=True),
    Column("subject", Text, nullable=True),
    Column("body", Text, nullable=True),
    Column("provider_ref", String(256), nullable=True, index=True),
    Column("provider_status", String(32), nullable=True),
    Column("error", Text, nullable=True),
    UniqueConstraint("incident_id", "update_seq", "customer_id", "channel", name="uq_delivery"),
    # The dispatch queue in the order it is served; what a customer was already sent.
    Index("ix_deliveries_queue", "status", "rank", "id"),
    Index("ix_deliveries_customer", "customer_id", "incident_id"),
)


# --- conversation -----------------------------------------------------------
replies = Table(
    "replies",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("channel", String(32), nullable=False),
    Column("sender", String(512), nullable=False),
    # Null when the sender matches no customer.
    Column("customer_id", String(128), nullable=True, index=True),
    Column("body", Text, nullable=False),
    Column("provider_ref", String(256), nullable=True),
    # What forewarn made of it: stop, start, help, or other.
    Column("action", String(16), nullable=False),
    Column("answer", Text, nullable=True),
    # What one number said lately: how many of its texts were answered this hour.
    Index("ix_replies_sender", "sender", "received_at"),
)

# Webhook requests already handled, by the sender's idempotency token.
seen_requests = Table(
    "seen_requests",
    metadata,
    Column("token", String(256), primary_key=True),
    Column("received_at", UTCDateTime, nullable=False),
)


# The ledger's recipient key of a follower starts so; no customer's id may (the import).
FOLLOWER_PREFIX = "follower:"

# People who follow a place without an account: a postcode, a premise or an incident.
# Nothing is sent to a follow until it is confirmed (an email's signed link, a text's YES).
followers = Table(
    "followers",
    metadata,
    # "follower:<hex>": the ledger's recipient key, never a customer's id (the import refuses it).
    Column("follower_id", String(128), primary_key=True),
    Column("channel", String(32), nullable=False),
    # A number in E.164 or an email address, as confirmed.
    Column("contact", String(320), nullable=False, index=True),
    # What is followed: postcode (as the network has it), premise id or incident id.
    Column("place_kind", String(16), nullable=False),
    Column("place", String(128), nullable=False, index=True),
    # The place as the follower named it, for their messages ("CB1 2AB", "45 Mill Road").
    Column("label", String(256), nullable=False),
    Column("locale", String(16), nullable=False),
    Column("timezone", String(64), nullable=False),
    # pending -> active -> ended (its incident resolved) | stopped (by them or by ops).
    Column("state", String(16), nullable=False),
    # Consent: when it was asked for, how and from where (the form's IP, the number that
    # texted), when and how it was confirmed; when it ended and why.
    Column("requested_at", UTCDateTime, nullable=False),
    Column("requested_via", String(16), nullable=False),
    Column("requested_from", String(128), nullable=False),
    Column("confirm_sent_at", UTCDateTime, nullable=True),
    Column("confirm_error", Text, nullable=True),
    Column("confirmed_at", UTCDateTime, nullable=True),
    Column("confirmed_by", String(32), nullable=True),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("end_reason", String(64), nullable=True),
    UniqueConstraint("channel", "contact", "place_kind", "place", name="uq_follow"),
    Index("ix_followers_state_kind", "state", "place_kind"),
)


# At-risk customers in an outage: asked to confirm they have our message, called when they
# do not, listed for a visit when the call gets no answer, until ops mark them reached.
safety_checks = Table(
    "safety_checks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("customer_id", String(128), nullable=False),
    Column("incident_id", Integer, nullable=False),
    Column("needs", String(128), nullable=False),
    # asked -> confirmed | calling -> confirmed | visit -> reached; ended: the line is back.
    Column("state", String(16), nullable=False),
    # The calls made (the escalation's call, then one retry) and the update they carry.
    Column("calls", Integer, nullable=False, default=0),
    Column("call_seq", Integer, nullable=True),
    Column("asked_at", UTCDateTime, nullable=False),
    Column("confirmed_at", UTCDateTime, nullable=True),
    Column("confirmed_by", String(32), nullable=True),
    Column("called_at", UTCDateTime, nullable=True),
    Column("visit_at", UTCDateTime, nullable=True),
    Column("reached_at", UTCDateTime, nullable=True),
    Column("note", Text, nullable=True),
    Column("ended_at", UTCDateTime, nullable=True),
    UniqueConstraint("customer_id", "incident_id", name="uq_safety_checks"),
    Index("ix_safety_checks_state", "state"),
)

# Reports of an outage from anyone (the site's form, an OUT text naming an address): where
# each came from and what it came to, as evidence detection weighs (incidents/reporting.py).
reports = Table(
    "reports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("via", String(16), nullable=False),  # web or sms
    # The form's IP or the number that texted: one origin counts once towards an area.
    Column("origin", String(128), nullable=False),
    Column("place", String(200), nullable=False),  # as they named it, cleaned
    Column("premise_id", String(128), nullable=True, index=True),
    # case (a line's case opened or joined), known (in an open incident), seen_up
    # (monitoring sees the line working), unknown (no such premise).
    Column("outcome", String(16), nullable=False),
    Column("incident_id", Integer, nullable=True, index=True),
    # The follow a reporter who gave a contact was asked to confirm.
    Column("follower_id", String(128), nullable=True),
    Index("ix_reports_origin_received", "origin", "received_at"),
)


def get_meta(conn: Connection, key: str) -> str | None:
    """Read one value from the key/value meta table."""
    row = conn.execute(meta.select().where(meta.c.key == key)).first()
    return None if row is None else str(row.value)


def set_meta(conn: Connection, key: str, value: str) -> None:
    """Write one value to the key/value meta table."""
    upsert(conn, meta, [{"key": key, "value": value}])


def first_seen(conn: Connection, tokens: Sequence[str], now: datetime) -> bool:
    """Whether none of these tokens (one request's or message's names) was seen before;
    they are all remembered either way. Each is cut to the column's 256 characters."""
    kept = [token[:256] for token in tokens if token]
    if not kept:
        return True
    before = conn.execute(
        seen_requests.select().where(seen_requests.c.token.in_(kept)).limit(1)
    ).first()
    if before is not None:
        return False
    insert_ignoring_conflicts(conn, seen_requests, [{"token": t, "received_at": now} for t in kept])
    return True


def secret_key(conn: Connection, name: str) -> bytes:
    """A random key made on first use and kept in the store (e.g. to sign unsubscribe links)."""
    key = f"secret:{name}"
    insert_ignoring_conflicts(conn, meta, [{"key": key, "value": secrets.token_hex(32)}])
    return bytes.fromhex(get_meta(conn, key) or "")
