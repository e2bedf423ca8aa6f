"""A drill's record: every captured message as written, and the figures computed from
those messages (per customer, promises kept, estimates missed without warning, routine
messages in quiet hours)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from forewarn.context import Context
from forewarn.notifiers.base import Message
from forewarn.notifiers.dispatch import UNCAPPED, Rules
from forewarn.store import customers, incident_updates, incidents


def messages_sent(ctx: Context, sent: list[tuple[datetime, Message]]) -> list[dict[str, Any]]:
    """Every captured message as the drill writes it, with its update's event and times."""
    with ctx.engine.connect() as conn:
        updates = {
            (r.incident_id, r.seq): r
            for r in conn.execute(
                select(
                    incident_updates.c.incident_id,
                    incident_updates.c.seq,
                    incident_updates.c.event,
                    incident_updates.c.etr,
                    incident_updates.c.next_update_at,
                )
            )
        }
    found = []
    for at, m in sent:
        update = updates[(m.incident_id, m.update_seq)]
        found.append({
            "at": iso(at), "direction": "out", "channel": m.channel,
            "to": m.to if m.customer_id else None, "customer_id": m.customer_id,
            "incident_id": m.incident_id, "update_seq": m.update_seq, "event": update.event,
            "etr": iso(update.etr) if update.etr else None,
            "next_update_at": iso(update.next_update_at) if update.next_update_at else None,
            "body": m.body, **({"subject": m.subject} if m.subject else {}),
        })  # fmt: skip
    return found


def summarise(
    ctx: Context, messages: list[dict[str, Any]], until: datetime, tick: timedelta
) -> dict[str, Any]:
    """The drill's figures, computed from the messages themselves."""
    to_customers = [m for m in messages if m["direction"] == "out" and m.get("customer_id")]
    by_customer: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for m in to_customers:
        by_customer[m["customer_id"]].append(m)
    with ctx.engine.connect() as conn:
        zones = dict(conn.execute(select(customers.c.customer_id, customers.c.timezone)).all())
        opened = {
            r.id: r.opened_at for r in conn.execute(select(incidents.c.id, incidents.c.opened_at))
        }
    rules = ctx.rules
    kept = broken = warned_missing = quiet = 0
    broken_list: list[str] = []
    per_incident: dict[tuple[str, int, str], int] = defaultdict(int)
    for customer_id, own in by_customer.items():
        own.sort(key=lambda m: m["at"])
        # One update reaches a customer on several channels: judge each update once.
        updates = list(
            {(m["incident_id"], m.get("update_seq"), m["event"]): m for m in own}.values()
        )
        updates.sort(key=lambda m: m["at"])
        for m in own:
            if m["event"] not in UNCAPPED:
                per_incident[(customer_id, m["incident_id"], m["channel"])] += 1
            if m["event"] not in ("restored", "answer") and _in_quiet(
                m["at"], zones.get(customer_id), rules
            ):
                quiet += 1
        for n, m in enumerate(updates):
            later = updates[n + 1]["at"] if n + 1 < len(updates) else None
            promise = m.get("next_update_at")
            if promise and parse_iso(promise) <= until:
                if later is not None and parse_iso(later) <= parse_iso(promise) + tick:
                    kept += 1
                else:
                    broken += 1
                    broken_list.append(f"{customer_id}: promised {promise} after {m['at']}")
            estimate = parse_iso(m["etr"]) if m.get("etr") and m["event"] not in UNCAPPED else None
            if estimate and estimate <= until and (later is None or parse_iso(later) > estimate):
                warned_missing += 1
    firsts: dict[int, datetime] = {}
    for m in to_customers:
        if m["incident_id"] is not None:
            firsts.setdefault(m["incident_id"], parse_iso(m["at"]))
    waits = [(at - opened[i]).total_seconds() / 60 for i, at in firsts.items() if i in opened]
    cap = rules.max_per_incident
    return {
        "messages": len(to_customers),
        "public_posts": sum(
            1 for m in messages if m["direction"] == "out" and not m.get("customer_id")
        ),
        "customers_messaged": len(by_customer),
        # Per customer, every channel and incident together.
        "most_messages_to_one_customer": max((len(v) for v in by_customer.values()), default=0),
        "median_messages_per_customer": statistics.median(
            [len(v) for v in by_customer.values()] or [0]
        ),
        # Per customer, incident and channel, as the cap counts ("restored" and the
        # summary are never capped).
        "max_messages_per_customer_incident_channel": max(per_incident.values(), default=0),
        "over_cap": sum(1 for n in per_incident.values() if n > cap),
        "minutes_to_first_message": round(max(waits), 1) if waits else None,
        "promised_updates_kept": kept,
        "promised_updates_broken": broken,
        "broken_promises": broken_list[:20],
        "estimates_missed_without_warning": warned_missing,
        "routine_messages_in_quiet_hours": quiet,
        "replies": sum(1 for m in messages if m["direction"] == "in"),
    }


def _in_quiet(at: str, zone: str | None, rules: Rules) -> bool:
    return rules.quiet is not None and rules.quiet.contains(parse_iso(at), zone)


def iso(moment: datetime) -> str:
    """A moment as the drill writes it (UTC, with Z)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    """A moment the drill wrote, read back."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
