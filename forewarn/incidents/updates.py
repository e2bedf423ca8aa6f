"""Numbered incident updates: every change to an incident is an ordered update, and the
updates that customers should hear about are marked `notify`.

An update says explicitly what it does to the incident's estimate and to its promised
next update: keep it, clear it, or set it (`Change`), instead of flag values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Generic, TypeAlias, TypeVar

from sqlalchemy import select
from sqlalchemy.engine import Connection

from forewarn.incidents.cadence import Cadence
from forewarn.store import (
    customers,
    incident_premises,
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Policy:
    """How incidents are presented and followed up; from Settings."""

    cadence: Cadence = field(default_factory=Cadence)
    privacy_floor: int = 10
    notify_single_premise: bool = False
    # Estimate changes smaller than this are kept, not announced (no flip-flopping).
    etr_threshold: timedelta = timedelta(minutes=30)
    # Customers hear this long before an estimate passes that it will be missed.
    etr_warning: timedelta = timedelta(minutes=30)
    # An element degraded this long opens an at-risk incident.
    degraded_after: timedelta = timedelta(minutes=15)
    # Planned work is announced this long before it starts (and again at start and end).
    notices: tuple[timedelta, ...] = (timedelta(hours=72), timedelta(hours=24))
    # Customers' OUT reports from this many lines behind one element, within this long,
    # open an incident there as monitoring's signals would.
    reports_min: int = 3
    reports_window: timedelta = timedelta(minutes=30)
    # An at-risk customer unconfirmed this long after they were told is escalated.
    confirm_within: timedelta = timedelta(minutes=15)
    # Whether calls can be placed (a voice sender, not the outbox), and how long a call
    # is given to be answered and confirmed before the retry, and after it the visit.
    calling: bool = False
    call_wait: timedelta = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Keep:
    """Leave the value as it is."""


@dataclass(frozen=True, slots=True)
class Clear:
    """Remove the value (no estimate, no promised update)."""


@dataclass(frozen=True, slots=True)
class Set(Generic[T]):
    """Replace the value with `value`."""

    value: T


KEEP: Final = Keep()
CLEAR: Final = Clear()

# What an update does to one of the incident's values.
Change: TypeAlias = Keep | Clear | Set[T]


def applied(change: Change[T], current: T | None) -> T | None:
    """The value after `change`: the current one kept, none, or the new one."""
    if isinstance(change, Set):
        return change.value
    return current if isinstance(change, Keep) else None


@dataclass(frozen=True, slots=True)
class OnCadence:
    """Promise the next update on the policy's cadence, counted from `since` (default: the
    incident's start). Only an update customers hear promises anything."""

    since: datetime | None = None


ON_CADENCE: Final = OnCadence()

# What an update does to the incident's promised next update.
Promise: TypeAlias = Change[datetime] | OnCadence


@dataclass(frozen=True, slots=True)
class NewUpdate:
    """One numbered update to add to an incident.

    `etr` is what the update does to the estimate: the update carries the resulting one,
    and a set or clear is written to the incident. `next_update` is the promise: the update
    carries the resulting one, and an update customers hear (`notify`) writes it to the
    incident unless it keeps the standing promise.
    """

    event: str
    status: str
    body: str
    notify: bool
    etr: Change[datetime] = KEEP
    next_update: Promise = ON_CADENCE


def incident_zones(conn: Connection, incident_id: int) -> list[str]:
    """The time zones of an incident's customers (one query): a promise is kept in each."""
    return [
        str(zone)
        for zone in conn.execute(
            select(customers.c.timezone)
            .join(incident_premises, incident_premises.c.premise_id == customers.c.premise_id)
            .where(incident_premises.c.incident_id == incident_id)
            .distinct()
        ).scalars()
    ]


def rounded(count: int, floor: int) -> str | None:
    """A count as the public may see it: none below the privacy floor (the words then say
    "fewer than" the floor), to the nearest ten below 100, two significant figures above."""
    if count < floor:
        return None
    keep = 1 if count < 100 else 2
    magnitude = 10 ** max(len(str(count)) - keep, 0)
    return f"{max(round(count / magnitude) * magnitude, magnitude):,}"
