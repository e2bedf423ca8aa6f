"""A store holding one incident and a queued fan-out to `n` customers, for the crash
trials and the fan-out benchmark (no network import needed)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from forewarn.store import (
    customers,
    deliveries,
    incident_updates,
    incidents,
    insert_ignoring_conflicts,
    premises,
)


def phone(n: int) -> str:
    """A distinct UK mobile number per customer."""
    return f"+447700{n:06d}"


def fill_ledger(engine: Engine, n: int, channels: tuple[str, ...], now: datetime) -> int:
    """One open cabinet incident reaching `n` customers on `channels`; returns the rows queued."""
    with engine.begin() as conn:
        conn.execute(
            incidents.insert(),
            {
                "id": 1, "title": "Broadband fault", "status": "investigating", "scope": "area",
                "source": "inferred", "root_element": "cab1", "public": True, "notify": True,
                "area_name": "Cabinet 1, Mill Road exchange", "premises_count": n,
                "customers_count": n, "started_at": now - timedelta(minutes=3),
                "opened_at": now, "updated_at": now,
                "next_update_at": now + timedelta(hours=2),
            },
        )  # fmt: skip
        conn.execute(
            incident_updates.insert(),
            {
                "incident_id": 1, "seq": 1, "event": "opened", "status": "investigating",
                "body": "We know.", "created_at": now, "notify": True,
                "next_update_at": now + timedelta(hours=2), "deliveries_queued": True,
            },
        )  # fmt: skip
        insert_ignoring_conflicts(
            conn,
            premises,
            [
                {"premise_id": f"p{i}", "element_id": f"cpe{i}", "address": f"{i} Mill Road",
                 "postcode": "CB1 2AB", "street": "mill road"}
                for i in range(n)
            ],
        )  # fmt: skip
        insert_ignoring_conflicts(
            conn,
            customers,
            [
                {"customer_id": f"c{i}", "premise_id": f"p{i}", "phone": phone(i),
                 "email": f"house{i}@example.org", "social": None,
                 "channels": ";".join(channels), "locale": "en", "timezone": "UTC",
                 "priority": 0, "opted_out": False}
                for i in range(n)
            ],
        )  # fmt: skip
        rows = [
            {"incident_id": 1, "update_seq": 1, "customer_id": f"c{i}", "channel": channel,
             "status": "queued", "attempts": 0, "rank": rank, "created_at": now,
             "next_attempt_at": now}
            for i in range(n)
            for rank, channel in enumerate(channels)
        ]  # fmt: skip
        insert_ignoring_conflicts(conn, deliveries, rows)
    return len(rows)
