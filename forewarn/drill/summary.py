"""A drill's record: every captured message as written, and the figures computed from
those messages (per customer and day, promises kept, estimates missed without warning,
messages the night should have held)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from forewarn.channels.base import Message
from forewarn.context import Context
from forewarn.incidents.ledger import is_routine
from forewarn.incidents.safety import SAFETY
from forewarn.quiet import Night
from forewarn.store import customers, incident_updates, incidents

# The last words of an incident carry its last estimate, which no longer stands.
LAST = ("restored", "summary")


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
        at_risk = set(
            conn.execute(
                select(customers.c.customer_id).where(customers.c.needs.is_not(None))
            ).scalars()
        )
        opened = {
            r.id: r.opened_at for r in conn.execute(select(incidents.c.id, incidents.c.opened_at))
        }
    rules = ctx.rules
    kept = broken = warned_missing = 0
    night = _Night()
    broken_list: list[str] = []
    per_day: dict[tuple[str, str, date], int] = defaultdict(int)
    routine_per_day: dict[tuple[str, str, date], int] = defaultdict(int)
    for customer_id, own in by_customer.items():
        own.sort(key=lambda m: (m["at"], m.get("update_seq") or 0))
        zone = zones.get(customer_id) or "UTC"
        heard: set[int] = set()  # incidents this customer was told of, so far
        for m in own:
            day = parse_iso(m["at"]).astimezone(ZoneInfo(zone)).date()
            per_day[(customer_id, "all", day)] += 1
            if is_routine(m["event"], True) and m["event"] != "answer":
                routine_per_day[(customer_id, m["channel"], day)] += 1
            night.judge(m, m["incident_id"] in heard, zone, rules.night, customer_id in at_risk)
            if m["event"] != "answer":
                heard.add(m["incident_id"])
        # One update reaches a customer on several channels: judge each update once.
        updates = list(
            {(m["incident_id"], m.get("update_seq"), m["event"]): m for m in own}.values()
        )
        updates.sort(key=lambda m: m["at"])
        for n, m in enumerate(updates):
            later = updates[n + 1]["at"] if n + 1 < len(updates) else None
            promise = m.get("next_update_at")
            if promise and parse_iso(promise) <= until:
                if later is not None and parse_iso(later) <= parse_iso(promise) + tick:
                    kept += 1
                else:
                    broken += 1
                    broken_list.append(f"{customer_id}: promised {promise} after {m['at']}")
            estimate = parse_iso(m["etr"]) if m.get("etr") and m["event"] not in LAST else None
            if estimate and estimate <= until and (later is None or parse_iso(later) > estimate):
                warned_missing += 1
    firsts: dict[int, datetime] = {}
    for m in to_customers:
        if m["incident_id"] is not None:
            firsts.setdefault(m["incident_id"], parse_iso(m["at"]))
    waits = [(at - opened[i]).total_seconds() / 60 for i, at in firsts.items() if i in opened]
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
        # Per customer and day in their zone, every channel together.
        "most_messages_to_one_customer_in_a_day": max(per_day.values(), default=0),
        # Routine messages per customer, channel and day in their zone, and how many such
        # days went over the ceiling (only a promise due may take a day over it).
        "most_routine_messages_per_customer_channel_day": max(routine_per_day.values(), default=0),
        "days_over_routine_ceiling": sum(
            1 for n in routine_per_day.values() if n > rules.routine_per_day
        ),
        "minutes_to_first_message": round(max(waits), 1) if waits else None,
        "promised_updates_kept": kept,
        "promised_updates_broken": broken,
        "broken_promises": broken_list[:20],
        "estimates_missed_without_warning": warned_missing,
        "messages_in_sleep_hours": night.asleep,
        # The night's one override: at-risk customers told their line is out, at any hour.
        "at_risk_messages_in_the_night": night.safety,
        "routine_messages_in_quiet_hours": night.quiet,
        "replies": sum(1 for m in messages if m["direction"] == "in"),
    }


class _Night:
    """Counts messages the night should have held: any but an answer in sleep hours, a
    routine one in quiet hours; and apart, what its one override sent (an at-risk
    customer told their line is out)."""

    def __init__(self) -> None:
        self.asleep = 0
        self.quiet = 0
        self.safety = 0

    def judge(
        self, m: dict[str, Any], told_before: bool, zone: str, night: Night, at_risk: bool
    ) -> None:
        if m["event"] == "answer":
            return
        at = parse_iso(m["at"])
        if at_risk and m["event"] in SAFETY:
            self.safety += night.holds(at, zone, routine=True)
            return
        if night.holds(at, zone, routine=False):
            self.asleep += 1
        elif is_routine(m["event"], told_before) and night.holds(at, zone, routine=True):
            self.quiet += 1


def iso(moment: datetime) -> str:
    """A moment as the drill writes it (UTC, with Z)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    """A moment the drill wrote, read back."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
