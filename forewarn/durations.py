"""Durations as ops and settings write them ("90m", "6h", "1h30m", "2d") and the
age-stepped lists built from them ("0h=6h,24h=24h", "24h=text|72h=text")."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(min|s|m|h|d|w)", re.IGNORECASE)
_DURATION = re.compile(r"^\s*(?:\d+(?:\.\d+)?\s*(?:min|s|m|h|d|w)\s*)+$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """'90m' or '1h30m' -> 1 h 30 min; units s, m, h, d, w. Anything else is a ValueError."""
    if len(text) > 40 or not _DURATION.match(text):
        raise ValueError(f"not a duration: {text!r} (write e.g. 90m, 6h, 1h30m or 2d)")
    seconds = sum(float(n) * _UNITS[unit.lower()] for n, unit in _PART.findall(text))
    return timedelta(seconds=seconds)


def parse_steps(text: str, separator: str = ",") -> tuple[tuple[timedelta, str], ...]:
    """'0h=6h,24h=24h' or 'AGE=text|AGE=text' lists, sorted by their age."""
    steps = []
    for part in filter(None, (p.strip() for p in text.split(separator))):
        age, sep, value = part.partition("=")
        if not sep or not value.strip():
            raise ValueError(f"expected AGE=VALUE, got {part!r}")
        steps.append((parse_duration(age), value.strip()))
    return tuple(sorted(steps, key=lambda step: step[0]))


def cadence_steps(text: str) -> tuple[tuple[timedelta, timedelta], ...]:
    """'0h=6h,24h=24h' -> ((0, 6 h), (24 h, 24 h)): from each age on, how often."""
    steps = tuple((age, parse_duration(every)) for age, every in parse_steps(text))
    if not steps or steps[0][0] != timedelta(0):
        raise ValueError("the cadence must start at 0h, e.g. 0h=6h,24h=24h")
    if any(every < timedelta(minutes=5) for _, every in steps):
        raise ValueError("updates more often than every 5 minutes would be spam")
    return steps


def parse_time(text: str, now: datetime, zone: str) -> datetime:
    """'+3h' (from now), or an ISO-8601 time; without an offset it is the operator's local
    time (FOREWARN_TIME_ZONE)."""
    text = text.strip()
    if text.startswith("+"):
        return now + parse_duration(text[1:])
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a time: {text!r} (write +3h or 2026-11-24T14:00)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment
