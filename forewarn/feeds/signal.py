"""The normalised signal every feed emits, and the reject every feed quarantines."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from forewarn.cleantext import for_terminal

State = Literal["down", "up", "degraded"]
STATES: frozenset[str] = frozenset({"down", "up", "degraded"})

# How much of a rejected item is kept for the operator to look at.
RAW_KEEP = 2000

_FRACTION = re.compile(r"(\.\d{6})\d+")


@dataclass(frozen=True, slots=True)
class Signal:
    """One observation: `element` was `state` at `observed_at`, according to `source`."""

    element: str
    state: State
    observed_at: datetime
    source: str
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    # Where in its feed it was read ("line 12"), for a reject found later to name.
    where: str = field(default="", compare=False, repr=False)

    def rejected(self, reason: str) -> Reject:
        """A reject of this signal: its place in the feed and the reason, and the item as
        the feed gave it (JSON, not Python's spelling of it)."""
        said = f"{self.where}: {reason}" if self.where else reason
        raw = json.dumps(self.raw, ensure_ascii=False, default=str) if self.raw else repr(self)
        return Reject.of(self.source, said, raw)


@dataclass(frozen=True, slots=True)
class Reject:
    """A feed item that could not be used, with the reason, kept for quarantine."""

    source: str
    reason: str
    raw: str

    @classmethod
    def of(cls, source: str, reason: str, raw: object) -> Reject:
        """Build a reject, keeping at most RAW_KEEP characters of the raw item, its control
        characters written as escapes (PostgreSQL's text refuses a NUL; ops still see it)."""
        if isinstance(raw, bytes):
            text = raw[:RAW_KEEP].decode("utf-8", errors="replace")
        else:
            text = str(raw)[:RAW_KEEP]
        return cls(source=source, reason=for_terminal(reason), raw=for_terminal(text))


@dataclass(slots=True)
class FeedBatch:
    """What one read of a feed produced: usable signals and quarantined rejects."""

    signals: list[Signal] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)

    def extend(self, other: FeedBatch) -> None:
        """Append another batch's signals and rejects to this one."""
        self.signals.extend(other.signals)
        self.rejects.extend(other.rejects)


def parse_timestamp(value: object) -> datetime:
    """Parse an ISO-8601 timestamp with an offset (nanoseconds allowed) into aware UTC."""
    if not isinstance(value, str):
        raise ValueError(f"timestamp must be a string, got {type(value).__name__}")
    if len(value) > 64:
        raise ValueError("timestamp too long")
    text = _FRACTION.sub(r"\1", value.strip())
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an ISO-8601 timestamp: {value[:64]!r}") from None
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp has no UTC offset: {value[:64]!r}")
    return parsed.astimezone(UTC)
