"""Render each ledger row into the message its channel sends, from the Jinja2 templates
in `templates/<channel>/<locale>/<event>.txt` (English when a locale has none)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import jinja2

EVENT_TEMPLATES = {"opened": "opened", "expanded": "opened", "restored": "restored"}


@dataclass(frozen=True, slots=True)
class Brand:
    """Who is speaking, and where the public page lives."""

    operator: str
    site_url: str


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The template environment (autoescaping only for HTML)."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("forewarn", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        keep_trailing_newline=False,
    )


def template_for(channel: str, locale: str, event: str, part: str = "body") -> jinja2.Template:
    """The template for a channel, locale and event, falling back to English."""
    name = EVENT_TEMPLATES.get(event, event)
    suffix = "" if part == "body" else f".{part}"
    candidates = [f"{channel}/{lang}/{name}{suffix}.txt" for lang in dict.fromkeys([locale, "en"])]
    return environment().select_template(candidates)


def local_time(moment: datetime | None, zone: str, now: datetime) -> str | None:
    """A short local time: "14:05", or "Tue 14:05" when it is not today."""
    if moment is None:
        return None
    tz = ZoneInfo(zone)
    local, today = moment.astimezone(tz), now.astimezone(tz)
    return local.strftime("%H:%M" if local.date() == today.date() else "%a %H:%M")


def render(row: Any, brand: Brand, now: datetime) -> tuple[str, str | None]:
    """Render (body, subject) for one ledger row joined with its update, incident and customer."""
    zone = row.timezone or "UTC"
    context = {
        "operator": brand.operator,
        "address": row.address,
        "area": row.area_name,
        "since": local_time(row.started_at, zone, now),
        "etr": local_time(row.etr, zone, now),
        "next_update": local_time(row.next_update_at, zone, now),
        "cause": row.cause,
        "url": f"{brand.site_url.rstrip('/')}/incidents/{row.incident_id}.html",
        "incident_id": row.incident_id,
    }
    body = template_for(row.channel, row.locale, row.event).render(context).strip()
    subject = None
    if row.channel == "email":
        subject = template_for("email", row.locale, row.event, "subject").render(context).strip()
    return body, subject
