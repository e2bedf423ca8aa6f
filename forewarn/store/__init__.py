"""The store every stage reads and writes: SQLite by default, PostgreSQL by URL.

The shared base, importing no stage: `schema` (tables, meta helpers), `transactions` (busy
retry, turns, locks), `bulk` (many-row writes), `engine` (opening and migrating a store).
Callers import from here: a test's monkeypatch of `forewarn.store.now_utc` replaces this
package's attribute, and no module of the store calls `now_utc` itself.
"""

from forewarn.store.bulk import insert_ignoring_conflicts, upsert
from forewarn.store.engine import make_engine
from forewarn.store.schema import (
    FOLLOWER_PREFIX,
    ONE_OPEN_CASE,
    UTCDateTime,
    customers,
    deliveries,
    element_states,
    elements,
    etr_history,
    feed_cursors,
    first_seen,
    followers,
    geocode_cache,
    get_meta,
    inbox,
    incident_premises,
    incident_updates,
    incidents,
    meta,
    metadata,
    now_utc,
    premises,
    quarantine,
    replies,
    reports,
    safety_checks,
    secret_key,
    seen_requests,
    set_meta,
)
from forewarn.store.transactions import (
    WRITE_ATTEMPTS,
    Turns,
    checkpoint,
    is_busy,
    serialize,
    writing,
)

__all__ = [
    "FOLLOWER_PREFIX",
    "ONE_OPEN_CASE",
    "WRITE_ATTEMPTS",
    "Turns",
    "UTCDateTime",
    "checkpoint",
    "customers",
    "deliveries",
    "element_states",
    "elements",
    "etr_history",
    "feed_cursors",
    "first_seen",
    "followers",
    "geocode_cache",
    "get_meta",
    "inbox",
    "incident_premises",
    "incident_updates",
    "incidents",
    "insert_ignoring_conflicts",
    "is_busy",
    "make_engine",
    "meta",
    "metadata",
    "now_utc",
    "premises",
    "quarantine",
    "replies",
    "reports",
    "safety_checks",
    "secret_key",
    "seen_requests",
    "serialize",
    "set_meta",
    "upsert",
    "writing",
]
