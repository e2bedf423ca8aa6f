"""One writer of incidents at a time, taken by the incidents API itself.

Every function here that changes incidents (open, update, resolve, cases, follow-ups,
the ledger rows of their updates) calls `incidents_lock(conn)` first, before it reads
what it will change, so callers (the cycle, ops commands, the receiver's OUT replies,
drills) never have to remember to. The lock lasts until the caller's transaction ends;
taking it again in the same transaction costs nothing.

On PostgreSQL it is a transaction-scoped advisory lock: numbering an update
(max(seq) + 1) and opening a case (check, then insert) see every change committed before
them. On SQLite it is the database's write lock. The store backs it up with constraints:
one number per update of an incident (the primary key of incident_updates) and one open
case per line (the partial unique index uq_incidents_one_open_case).
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from forewarn.store import serialize

LOCK = "incidents"


def incidents_lock(conn: Connection) -> None:
    """Hold the incidents lock until this transaction ends (at once if already held)."""
    serialize(conn, LOCK)


__all__ = ["LOCK", "incidents_lock"]
