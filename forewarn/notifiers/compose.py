"""Render each due delivery into the message its channel sends, from the Jinja2 templates
in `templates/<channel>/<locale>/<event>.txt` (English when a locale has none)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import jinja2

from forewarn.incidents.ledger import DueDelivery
from forewarn.notifiers.webhook import payload
from forewarn.texts import day_time, duration, environment, said_in, say

# Which template each kind of update is told with.
EVENT_TEMPLATES = {
    "opened": "opened",
    "expanded": "opened",
    "followup": "update",
    "etr_changed": "update",
    "etr_missed": "update",
    "note": "update",
    "restored": "restored",
    "still_down": "still_down",
    "summary": "summary",
    "at_risk": "at_risk",
    "cleared": "at_risk",
    "maintenance_notice": "maintenance",
    "maintenance_start": "maintenance",
    "maintenance_end": "maintenance",
}


@dataclass(frozen=True, slots=True)
class Brand:
    """Who is speaking, and where the public page lives."""

    operator: str
    site_url: str
    # The operator's own time zone, for public posts.
    time_zone: str = "UTC"
    # What the operator offers once an outage is this old (hotspot, credit), by age.
    offers: tuple[tuple[timedelta, str], ...] = ()

    def offer(self, age: timedelta) -> str | None:
        """The offer for an outage this old: the one with the largest age it has reached."""
        found = [text for at, text in self.offers if age >= at]
        return found[-1] if found else None


def _note(row: DueDelivery, locale: str) -> str:
    """The update's own words in the reader's locale (ops' free text as they wrote it)."""
    params = json.loads(row.update_params) if row.update_params else None
    return said_in(row.update_body, row.update_kind, params, locale, "update")


@lru_cache(maxsize=1024)
def template_for(channel: str, locale: str, event: str, part: str = "body") -> jinja2.Template:
    """The template for a channel, locale and event, falling back to English."""
    name = EVENT_TEMPLATES.get(event, event)
    suffix = "" if part == "body" else f".{part}"
    candidates = [f"{channel}/{lang}/{name}{suffix}.txt" for lang in dict.fromkeys([locale, "en"])]
    return environment().select_template(candidates)


def local_time(moment: datetime | None, zone: str, now: datetime, locale: str = "en") -> str | None:
    """A short local time: "14:05", or "Tue 14:05" when it is not today."""
    if moment is None:
        return None
    tz = ZoneInfo(zone)
    local, today = moment.astimezone(tz), now.astimezone(tz)
    clock = local.strftime("%H:%M")
    if local.date() == today.date():
        return clock
    # Short weekday names (templates/words/<locale>/day_time.txt) in GSM-7 letters only:
    # an accent outside it would make a text UCS-2 and halve its length.
    return day_time(local, locale)


# A "restored" sent this long after it happened says when it happened.
HELD = timedelta(minutes=15)

# Updates that may carry the operator's offer to customers of a long outage.
OFFERED = frozenset({"followup", "etr_changed", "etr_missed", "note", "still_down", "summary"})


def render(row: DueDelivery, brand: Brand, now: datetime) -> tuple[str, str | None]:
    """Render (body, subject) for one due delivery, from its update, incident and
    customer (a public post or a webhook has no customer: area-level words only)."""
    url = f"{brand.site_url.rstrip('/')}/incidents/{row.incident_id}.html"
    if row.channel == "webhook":
        return _webhook_body(row, brand, url), None
    zone = row.time_zone or brand.time_zone
    locale = row.locale or "en"
    context = {
        "operator": brand.operator,
        "address": row.address,
        "area": row.area_name,
        "since": local_time(row.started_at, zone, now, locale),
        "etr": local_time(row.etr, zone, now, locale),
        "next_update": local_time(row.next_update_at, zone, now, locale),
        "cause": row.cause,
        "url": url,
        # A text names the page's front (the incident is on top) without its scheme, which
        # phones link anyway: it keeps the text to one segment.
        "site": brand.site_url.rstrip("/").removeprefix("https://").removeprefix("http://"),
        "incident_id": row.incident_id,
        "event": row.event,
        "status": row.update_status,
        "missed": local_time(row.etr_warned, zone, now, locale),
        "restored_at": _restored_at(row, zone, now, locale),
        # An ops note is the update's own text; other updates' texts are for the page.
        "note": _note(row, locale) if row.event in ("note", "at_risk") else None,
        "duration": duration((row.resolved_at or now) - row.started_at, locale),
        "offer": brand.offer(now - row.started_at) if row.event in OFFERED else None,
        "starts": local_time(row.scheduled_for, zone, now, locale),
        "ends": local_time(row.scheduled_until, zone, now, locale),
    }
    body = template_for(row.channel, locale, row.event).render(context).strip()
    subject = None
    if row.channel == "email":
        subject = template_for("email", locale, row.event, "subject").render(context).strip()
    return body, subject


def _restored_at(row: DueDelivery, zone: str, now: datetime, locale: str) -> str | None:
    """When a "restored" held by the night actually happened, with the zone shown
    ("restored at 02:04 GMT"); None when it goes out as it happens."""
    if row.event != "restored" or now - row.update_at < HELD:
        return None
    when = local_time(row.update_at, zone, now, locale)
    return say("restored_at", locale, time=f"{when} {row.update_at.astimezone(ZoneInfo(zone)):%Z}")


def _webhook_body(row: DueDelivery, brand: Brand, url: str) -> str:
    def iso(moment: datetime | None) -> str | None:
        return None if moment is None else moment.isoformat().replace("+00:00", "Z")

    update = {
        "id": f"{row.incident_id}-{row.update_seq}",
        "status": row.update_status,
        "body": row.update_body,
        "incident_id": str(row.incident_id),
        "created_at": iso(row.update_at),
        "updated_at": iso(row.update_at),
        "display_at": iso(row.update_at),
        "x_event": row.event,
        "x_etr": iso(row.etr),
        "x_next_update_at": iso(row.next_update_at),
    }
    incident = {
        "id": str(row.incident_id),
        "name": row.title,
        "status": row.incident_status,
        "created_at": iso(row.started_at),
        "updated_at": iso(row.update_at),
        "resolved_at": iso(row.resolved_at),
        "shortlink": url,
        "incident_updates": [update],
        "x_area": row.area_name,
    }
    return payload({"name": brand.operator, "url": brand.site_url}, incident)
