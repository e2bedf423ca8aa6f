"""The customer columns that only say *how* to reach someone: a bad one is dropped with a
warning and the customer kept, because a customer skipped is a customer never told."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from forewarn.channels import CHANNELS, customer_channels

# What CRMs export for priority, as the number the delivery queue sorts by (higher first).
PRIORITY_WORDS = {
    "critical": 3, "vip": 2, "high": 1, "medium": 0, "normal": 0, "standard": 0, "low": -1,
}  # fmt: skip
# What a line may keep alive, as a CRM records it (Ofcom GC A3.2(b)): a customer with any
# of these is at risk when it fails, told first and asked to confirm.
NEEDS = ("telecare", "medical", "landline-only", "vulnerable")
MAX_PRIORITY = 1_000_000  # beyond this a number is a mistake (and SQLite's integers end)
_EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")
_LOCALE = re.compile(r"^[a-z]{2}(?:[-_][A-Za-z]{2})?$")
# A fediverse handle: @user or @user@server (Mastodon's user names, other servers' dots).
_HANDLE = re.compile(r"^@?\w[\w.\-]{0,63}(?:@[A-Za-z0-9](?:[A-Za-z0-9\-]*\.)+[A-Za-z]{2,63})?$")


@dataclass(frozen=True, slots=True)
class Reach:
    """The channels a customer may choose and the contact field each reads: asked of the
    registry once per import, not once for each of a million rows."""

    names: tuple[str, ...]
    contacts: tuple[str, ...]

    @classmethod
    def of_registry(cls) -> Reach:
        """The customer channels `CHANNELS` lists now."""
        names = tuple(customer_channels())
        return cls(names, tuple(CHANNELS[name].contact or "" for name in names))


@dataclass(slots=True)
class ContactFields:
    """Checks one row's contact columns, dropping bad values and saying why in `warnings`."""

    customer_id: str
    warnings: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    def drop(self, column: str, reason: str) -> None:
        """Note that `column` was left out of the customer, and why."""
        self.dropped.append(reason)
        self.warnings.append(f"customer {self.customer_id!r} kept without its {column}: {reason}")

    def phone(self, text: str, normalised: dict[str, str]) -> str | None:
        """The E.164 number, or None (`normalised` maps the file's text to E.164 or a reason)."""
        if not text:
            return None
        value = normalised[text]
        if value.startswith("+"):
            return value
        self.drop("phone", value)
        return None

    def email(self, text: str) -> str | None:
        """The address, or None if it does not look like one."""
        if not text:
            return None
        if len(text) <= 320 and _EMAIL.match(text):
            return text
        self.drop("email", f"email {text[:64]!r} is not an address")
        return None

    def social(self, text: str) -> str | None:
        """The handle (`@user@server`), or None if it is not one."""
        if not text:
            return None
        if _HANDLE.match(text):
            return text
        self.drop("social handle", f"social {text[:64]!r} is not a handle like @name@server")
        return None

    def locale(self, text: str) -> str:
        """A language code like en or en-GB; English when missing or malformed."""
        if not text:
            return "en"
        if _LOCALE.match(text):
            return text.replace("_", "-")
        self.drop("locale", f"locale {text[:16]!r} is not a language code like en or en-GB")
        return "en"

    def timezone(self, text: str) -> str:
        """An IANA zone name; UTC when missing or unknown."""
        if not text:
            return "UTC"
        if _known_zone(text):
            return text
        self.drop("time zone", f"unknown timezone {text[:64]!r}, using UTC")
        return "UTC"

    def priority(self, text: str) -> int:
        """A whole number or one of PRIORITY_WORDS; 0 (normal) when missing or unknown."""
        value = _priority(text)
        if value is not None:
            return value
        words = "/".join(PRIORITY_WORDS)
        self.drop("priority", f"priority {text[:16]!r} is not a whole number or {words}")
        return 0

    def needs(self, text: str) -> str | None:
        """What the line keeps alive ("telecare;medical"), or None when none is given. A
        word not in NEEDS is left out with a warning and the known ones kept: one
        misspelt word must not leave a telecare customer unknown at risk."""
        if not text:
            return None
        named = list(dict.fromkeys(n.strip().lower() for n in text.split(";") if n.strip()))
        known = [n for n in named if n in NEEDS]
        unknown = [n for n in named if n not in NEEDS]
        if unknown or not named:
            words = ", ".join(NEEDS)
            reason = f"needs {text[:64]!r} is not a list of {words} separated by ;"
            if known:
                self.warnings.append(
                    f"customer {self.customer_id!r} kept with needs {';'.join(known)}: {reason}"
                )
            else:
                self.drop("needs", reason)
        return ";".join(known) or None

    def channels(
        self,
        text: str,
        reach: Reach,
        reachable: Mapping[str, str | None],
        given: Mapping[str, str],
    ) -> list[str]:
        """The preferred channels that can reach the customer, in order; when none of
        them can, every channel of the first tier that can (out of band first), so nobody
        is left untold. `reachable` and `given` hold the kept and the written value of
        each contact field ("phone": ...)."""
        names = reach.names
        usable = tuple([bool(reachable.get(contact)) for contact in reach.contacts])
        stated = tuple([bool(given.get(contact)) for contact in reach.contacts])
        chosen, notes = _channels(text, names, usable, stated)
        self.warnings.extend(f"customer {self.customer_id!r}: {note}" for note in notes)
        return list(chosen)


@lru_cache(maxsize=4096)
def _priority(text: str) -> int | None:
    if not text:
        return 0
    word = PRIORITY_WORDS.get(text.lower())
    if word is not None:
        return word
    try:
        number = float(text)
    except ValueError:
        return None
    return int(number) if number.is_integer() and abs(number) <= MAX_PRIORITY else None


# A million rows hold a handful of distinct channel lists: each is worked out once.
@lru_cache(maxsize=4096)
def _channels(
    text: str, names: tuple[str, ...], usable: tuple[bool, ...], stated: tuple[bool, ...]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The channels chosen from a preference list, and notes on what was left out."""
    reachable = dict(zip(names, usable, strict=True))
    given = dict(zip(names, stated, strict=True))
    wanted: list[str] = []
    notes: list[str] = []
    for name in dict.fromkeys(c.strip().lower() for c in text.split(";") if c.strip()):
        if name not in names:
            notes.append(f"unknown channel {name[:16]!r} ignored (use {', '.join(names)})")
        elif reachable[name]:
            wanted.append(name)
        elif not given[name]:  # a bad value was already reported when it was dropped
            notes.append(f"channel {name} dropped, no address for it")
    if wanted:
        return tuple(wanted), tuple(notes)
    fallback: list[str] = []
    for tier in sorted({tier for n in names if (tier := CHANNELS[n].tier) is not None}):
        fallback = [n for n in names if CHANNELS[n].tier == tier and reachable[n]]
        if fallback:
            break
    if text.strip():
        notes.append(f"no preferred channel can reach them, using {';'.join(fallback)}")
    return tuple(fallback), tuple(notes)


@lru_cache(maxsize=1024)
def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True
