"""Render each due delivery into the message its channel sends, from the Jinja2 templates
in `templates/<channel>/<locale>/<event>.txt` (English when a locale has none)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import jinja2

from forewarn.channels import CHANNELS
from forewarn.channels.base import Channel, bare
from forewarn.channels.unsubscribe import Links, no_links
from forewarn.incidents.ledger import DueDelivery
from forewarn.incidents.safety import CONFIRMING
from forewarn.texts import duration, environment, said_in, say, when

# Which template each kind of update is told with.
EVENT_TEMPLATES = {
    "opened": "opened",
    "expanded": "opened",
    "followup": "update",
    "etr_changed": "update",
    "etr_set": "update",
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


# What a follower is told with, whatever the event: the page's words for their place.
FOLLOWER_TEMPLATE = "follow"


@dataclass(frozen=True, slots=True)
class Brand:
    """Who is speaking, and where the public page lives."""

    operator: str
    site_url: str
    # The operator's own time zone, for public posts (and customers without one).
    time_zone: str = "UTC"
    # What the operator offers once an outage is this old (hotspot, credit), by age.
    offers: tuple[tuple[timedelta, str], ...] = ()
    # Whether customers' emails back are read (FOREWARN_INBOUND_SMTP): only then does an
    # email ask for a reply.
    replies_read: bool = False
    # A follower's signed link to stop following (the email's one-click unsubscribe).
    stop_link: Links = no_links
    # An at-risk customer's signed link to confirm they have our message of an incident.
    safe_link: Callable[[str, int], str | None] = lambda customer_id, incident_id: None

    def offer(self, age: timedelta) -> str | None:
        """The offer for an outage this old: the one with the largest age it has reached."""
        found = [text for at, text in self.offers if age >= at]
        return found[-1] if found else None


def _note(row: DueDelivery, channel: Channel, locale: str, zone: str) -> str | None:
    """What ops wrote for readers, as they wrote it (an update's or a summary's --note, a
    heads-up's text); a long-form channel (email) also repeats a heads-up's standard
    words, in the reader's locale (a text or a post already says them in its own words)."""
    params = json.loads(row.update_params) if row.update_params else {}
    if row.update_kind in ("ops", "summary"):
        note = params.get("note")
        return str(note) if note else None
    if row.event not in ("note", "at_risk"):
        return None
    if row.update_kind is None:
        return row.update_body  # typed by ops
    if not channel.long_form:
        return None
    return said_in(row.update_body, row.update_kind, params, locale, "update", zone)


@lru_cache(maxsize=1024)
def template_for(channel: str, locale: str, event: str, part: str = "body") -> jinja2.Template:
    """The template for a channel, locale and event, falling back to English."""
    name = EVENT_TEMPLATES.get(event, event)
    suffix = "" if part == "body" else f".{part}"
    candidates = [f"{channel}/{lang}/{name}{suffix}.txt" for lang in dict.fromkeys([locale, "en"])]
    return environment().select_template(candidates)


def local_time(moment: datetime | None, zone: str, now: datetime, locale: str = "en") -> str | None:
    """A short local time with its zone: "14:05 GMT", or "Tue 14:05 GMT" when it is not
    today (the reader's weekday names: templates/words/<locale>/day_time.txt)."""
    return None if moment is None else when(moment, zone, locale, now)


# A "restored" sent this long after it happened says when it happened.
HELD = timedelta(minutes=15)

# Updates that may carry the operator's offer to customers of a long outage: those sent
# while it lasts (an offer to someone waiting reads wrong in the summary after the fix).
OFFERED = frozenset({"followup", "etr_set", "etr_changed", "etr_missed", "note", "still_down"})


def render(row: DueDelivery, brand: Brand, now: datetime) -> tuple[str, str | None]:
    """Render (body, subject) for one due delivery, from its update, incident and
    customer (a public post or a webhook has no customer: area-level words only).

    Every time is told in one zone per reader, with its name: the customer's own (the
    operator's when they have none) in their texts and emails, the operator's in posts."""
    url = f"{brand.site_url.rstrip('/')}/incidents/{row.incident_id}.html"
    channel = CHANNELS[row.channel]
    if channel.document is not None:
        return _document(row, brand, url, channel.document), None
    zone = _known_zone(row.time_zone) or _known_zone(brand.time_zone) or "UTC"
    locale = row.locale or "en"
    # A follower hears the page's words for their place, never a premise's.
    template = FOLLOWER_TEMPLATE if row.follows is not None else row.event
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
        "site": bare(brand.site_url.rstrip("/")),
        "incident_id": row.incident_id,
        "event": row.event,
        "status": row.update_status,
        "missed": local_time(row.etr_warned, zone, now, locale),
        "restored_at": _restored_at(row, zone, now, locale),
        # What ops wrote for readers; other updates' texts are for the page.
        "note": _note(row, channel, locale, zone),
        # Where a note too long for the channel is read in full (see _fitted).
        "more": None,
        "duration": duration((row.resolved_at or now) - row.started_at, locale),
        "offer": brand.offer(now - row.started_at) if row.event in OFFERED else None,
        "replies_read": brand.replies_read,
        "starts": local_time(row.scheduled_for, zone, now, locale),
        "ends": local_time(row.scheduled_until, zone, now, locale),
        "place": row.follows,
        "stop": brand.stop_link(row.customer_id) if row.follows is not None else None,
        "confirm": _confirm(row, channel, brand),
    }
    body = _fitted(row, channel, context, locale, url, template)
    subject = None
    if channel.long_form:
        subject = template_for(channel.name, locale, template, "subject").render(context).strip()
    return body, subject


def _fitted(
    row: DueDelivery, channel: Channel, context: dict[str, Any], locale: str, url: str, name: str
) -> str:
    """The body, with ops' note where the channel carries it whole (a text in its one
    GSM-7 segment, a post within its limit). Otherwise the note's place points to where it
    is read in full (the channel's pointers to the incident's page, best first) or, for a
    private incident, which has no page, the note cut to fit where the channel can cut it
    (an email has it whole)."""
    template = template_for(channel.name, locale, name)
    body = channel.finish(template.render(context))
    note = context["note"]
    if not note or channel.fits is None or channel.fits(body):
        return body
    for pointer in channel.pointers(url, context["site"]) if row.incident_public else []:
        body = channel.finish(template.render({**context, "note": None, "more": pointer}))
        if channel.fits(body):
            return body
    if channel.cut is None:
        return channel.finish(template.render({**context, "note": None}))
    frame = channel.finish(template.render({**context, "note": NOTE_MARK}))
    cut = channel.cut(str(note), frame)
    return channel.finish(template.render({**context, "note": cut}))


# Where a note goes, to measure the room the rest of a text leaves it (one septet).
NOTE_MARK = "§"


def _confirm(row: DueDelivery, channel: Channel, brand: Brand) -> str | None:
    """How an at-risk customer told their line is out confirms they have the message: a
    long-form message (email) its signed link, a text a YES ("yes"), a call a key press
    ("press"); None for anyone else (or an email or a call with no public receiver to
    hear it)."""
    if not row.needs or row.event not in CONFIRMING or row.follows is not None:
        return None
    if channel.long_form:
        return brand.safe_link(row.customer_id, row.incident_id)
    if channel.confirm_by == "press":
        # A key press is heard only by a public receiver (where the link would point).
        return "press" if brand.safe_link(row.customer_id, row.incident_id) else None
    return "yes"


def _known_zone(name: str | None) -> str | None:
    """`name` when the zone database knows it (a bad zone must not stop a message)."""
    if not name:
        return None
    try:
        ZoneInfo(name)
    except (ValueError, KeyError):
        return None
    return name


def _restored_at(row: DueDelivery, zone: str, now: datetime, locale: str) -> str | None:
    """When a "restored" held by the night actually happened, with the zone shown
    ("restored at 02:04 GMT"); None when it goes out as it happens."""
    if row.event != "restored" or now - row.update_at < HELD:
        return None
    return say("restored_at", locale, time=local_time(row.update_at, zone, now, locale))


def _document(row: DueDelivery, brand: Brand, url: str, document: Document) -> str:
    """The update as a structured body: the page and the incident, in Statuspage's shape."""

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
    return document({"name": brand.operator, "url": brand.site_url}, incident)


Document = Callable[[Mapping[str, object], Mapping[str, object]], str]
