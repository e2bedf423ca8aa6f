"""Where customer- and public-facing words come from: the Jinja templates in the root
folder `templates/` (shipped inside the package as `forewarn/templates`), with single
files overridden from FOREWARN_TEMPLATES_DIR. One environment factory for every text."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from forewarn.config import process_settings
from forewarn.quiet import zone_info

_PACKAGE = Path(__file__).parent


def shipped_templates() -> Path:
    """The templates forewarn ships: inside the installed package, or in a checkout's root."""
    inside = _PACKAGE / "templates"
    return inside if inside.is_dir() else _PACKAGE.parent / "templates"


@lru_cache(maxsize=4)
def environment(*, lstrip_blocks: bool = False, override: str | None = None) -> jinja2.Environment:
    """A template environment (autoescaping only for HTML; a missing value is an error).

    `override` (FOREWARN_TEMPLATES_DIR when not given) is a folder whose files replace
    the shipped ones of the same path, file by file."""
    if override is None:
        configured = process_settings().templates_dir
        override = str(configured) if configured else None
    folder = override
    loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(shipped_templates())]
    if folder:
        loaders.insert(0, jinja2.FileSystemLoader(folder))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=lstrip_blocks,
        keep_trailing_newline=False,
    )
    env.filters["at"] = _at
    return env


# Where short customer- and public-facing sentences live: templates/words/<locale>/<name>.txt.
WORDS = "words"
FALLBACK_LOCALE = "en"


def say(name: str, locale: str | None, zone: str | None = None, **values: Any) -> str:
    """The sentence `name` in `locale` (English when that locale lacks it), with `values`
    filled in, times (the `at` filter) told in `zone` (UTC when None); whitespace trimmed."""
    locale = locale or FALLBACK_LOCALE
    context = {**values, "_locale": locale, "_zone": zone or "UTC"}
    return _sentence(name, locale).render(context).strip()


@lru_cache(maxsize=1024)
def _sentence(name: str, locale: str) -> jinja2.Template:
    # Found once per process: a fan-out renders several sentences per message, and
    # Jinja's own lookup stats the template files every time.
    langs = dict.fromkeys([locale, FALLBACK_LOCALE])
    return environment().select_template([f"{WORDS}/{lang}/{name}.txt" for lang in langs])


def word_names(locale: str = FALLBACK_LOCALE) -> list[str]:
    """Every sentence name shipped for `locale` (the tests check each exists everywhere)."""
    folder = shipped_templates() / WORDS / locale
    return sorted(path.stem for path in folder.glob("*.txt"))


def duration(length: timedelta, locale: str | None = FALLBACK_LOCALE) -> str:
    """A rough, readable length in the locale's words: "45 min", "7 h", "3 days"."""
    minutes = max(int(length.total_seconds() // 60), 1)
    hours = round(minutes / 60)
    return say("duration", locale, minutes=minutes, hours=hours, days=round(hours / 24))


class Said(str):
    """An incident update's (or title's) words in English, what the body (title) column
    and the JSON API keep, remembering what it says (`kind` and its JSON-safe `params`) so
    the page can render it in any locale from templates/words/<locale>/update_<kind>.txt
    (title_<kind>.txt)."""

    kind: str
    params: dict[str, Any]


def update_words(kind: str, **params: Any) -> Said:
    """The words of an update of this kind (see Said)."""
    said = Said(say(f"update_{kind}", FALLBACK_LOCALE, **params))
    said.kind, said.params = kind, params
    return said


def title_words(kind: str, **params: Any) -> Said:
    """An incident's title of this kind (see Said)."""
    said = Said(say(f"title_{kind}", FALLBACK_LOCALE, **params))
    said.kind, said.params = kind, params
    return said


def update_columns(body: str, prefix: str = "") -> dict[str, Any]:
    """The columns saying what an update's body (prefix "": kind, params) or an incident's
    title (prefix "title_") is; free text has none and is shown as written."""
    if isinstance(body, Said):
        return {f"{prefix}kind": body.kind, f"{prefix}params": json.dumps(body.params)}
    return {f"{prefix}kind": None, f"{prefix}params": None}


def title_columns(title: str) -> dict[str, Any]:
    """The incidents columns for a title: the English words and what they say."""
    return {"title": title, **update_columns(title, "title_")}


def said_in(
    text: str,
    kind: str | None,
    params: dict[str, Any] | None,
    locale: str,
    family: str,
    zone: str | None = None,
) -> str:
    """Stored words in `locale` (their times in `zone`): rendered from
    templates/words/<locale>/<family>_<kind>.txt with their values, or `text` as written
    (free text, or written before kinds)."""
    if not kind:
        return text
    return say(f"{family}_{kind}", locale, zone, **(params or {}))


def stamp(moment: datetime | None) -> str | None:
    """A moment as stored words keep it (ISO-8601, UTC): each reader's words then tell it
    in their own language and zone (the `at` filter)."""
    return None if moment is None else moment.astimezone(UTC).isoformat()


def zone_name(local: datetime) -> str:
    """The short name of a local time's zone: "GMT", "CET"; "UTC-03" where the zone
    database has only an offset."""
    name = local.tzname() or "UTC"
    return f"UTC{name}" if name[:1] in "+-" else name


# Beyond this, a weekday alone is ambiguous: the date is shown too.
WEEK = timedelta(days=6)


def when(
    moment: datetime, zone: str, locale: str | None = FALLBACK_LOCALE, now: datetime | None = None
) -> str:
    """A time as its reader reads it, always with its zone: "14:05 GMT" today, "Tue 14:05
    GMT" within the week, "Tue 1 Dec 14:05 GMT" beyond it (or when there is no `now`:
    words kept on the page are read later)."""
    tz = zone_info(zone)
    local = moment.astimezone(tz)
    label = zone_name(local)
    if now is not None:
        today = now.astimezone(tz).date()
        if local.date() == today:
            return f"{local:%H:%M} {label}"
        if abs(local - now) < WEEK:
            return day_time(local, locale, zone=label)
    return day_time(local, locale, dated=True, zone=label)


@jinja2.pass_context
def _at(context: Any, value: str | None) -> str:
    """`{{ etr|at }}` in words: a stored moment in the reader's language and zone."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return f"{value} UTC"  # kept before moments were stored whole ("14:00")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return when(moment, context.get("_zone") or "UTC", context.get("_locale"))


def day_time(
    local: datetime,
    locale: str | None = FALLBACK_LOCALE,
    dated: bool = False,
    zone: str = "",
    year: bool = False,
) -> str:
    """A local time with its short weekday (and the date when `dated`, the year too
    with `year`, the zone's name when given), in the locale's words: "Tue 14:05", "Tue
    1 Dec 14:05 GMT", "mar 1 dic 2026 14:05 CET". The month is a word, never a number:
    1/12 is the first of December in London and the twelfth of January in Chicago."""
    return _day_time(
        local.weekday(), f"{local:%H:%M}", locale or FALLBACK_LOCALE,
        local.day if dated else 0, local.month, local.year if year else 0, zone,
    )  # fmt: skip


@lru_cache(maxsize=4096)
def _day_time(
    weekday: int, clock: str, locale: str, day: int, month: int, year: int, zone: str
) -> str:
    # A fan-out says the same few times to thousands: rendered once each.
    return say(
        "day_time", locale, weekday=weekday, clock=clock, day=day, month=month, year=year,
        label=zone,
    )  # fmt: skip
