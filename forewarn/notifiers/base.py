"""The one contract every channel keeps: take a batch of messages, say for each one
whether it was delivered, failed in a way worth retrying, or failed for good."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol


class Outcome(Enum):
    """What happened to one message."""

    DELIVERED = "delivered"
    RETRYABLE = "retryable"
    PERMANENT = "permanent"


@dataclass(frozen=True, slots=True)
class Message:
    """One rendered message for one recipient on one channel, tied to its ledger row."""

    delivery_id: int
    channel: str
    to: str
    customer_id: str | None
    incident_id: int
    update_seq: int
    body: str
    subject: str | None = None


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome of sending one message; `detail` never contains secrets."""

    delivery_id: int
    outcome: Outcome
    detail: str = ""


class Notifier(Protocol):
    """A channel: sends a batch, reusing its connection, and reports every message."""

    channel: str

    def send(self, messages: Sequence[Message]) -> list[Result]:
        """Send the messages; never raise for one message's failure."""
        ...
