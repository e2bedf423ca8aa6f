"""The one contract every channel keeps: take a batch of messages, say for each one
whether it was delivered, failed in a way worth retrying, or failed for good."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Protocol


class Outcome(Enum):
    """What happened to one message."""

    DELIVERED = "delivered"
    RETRYABLE = "retryable"
    PERMANENT = "permanent"
    # Never handed to the provider: the claim behind the batch lapsed first (a stalled
    # worker), so another may be sending it; the ledger's reconciliation settles it.
    UNSENT = "unsent"


@dataclass(frozen=True, slots=True)
class Message:
    """One rendered message for one recipient on one channel, tied to its ledger row.

    `customer_id` is None for a public post; `reply_to` is the post a public social update
    answers; `claimed_at` is when this attempt began (what a restart reconciles against).
    """

    delivery_id: int
    channel: str
    to: str
    customer_id: str | None
    incident_id: int
    update_seq: int
    body: str
    subject: str | None = None
    reply_to: str | None = None
    claimed_at: datetime | None = None
    locale: str = "en"

    @property
    def key(self) -> str:
        """The ledger key as one string: the idempotency key and Message-ID seed."""
        who = self.customer_id or "public"
        return f"{self.incident_id}-{self.update_seq}-{who}-{self.channel}"


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome of sending one message; `detail` never contains secrets.

    `ref` is the provider's id for what was sent (a Twilio SID, a Message-ID, a status id).
    """

    delivery_id: int
    outcome: Outcome
    detail: str = ""
    ref: str | None = None


# Called with each outcome the moment the provider gives it (the journal listens).
Done = Callable[[Result], None]


def ignore(result: Result) -> None:
    """A `Done` that keeps nothing."""


# Asked just before each message goes to the provider: False once the claim behind the
# batch has lapsed, so a worker that stalled past its lease sends no more of it.
Held = Callable[[], bool]


def always() -> bool:
    """A `Held` for sends no claim stands behind."""
    return True


def unsent(message: Message) -> Result:
    """The result of a message left unsent because its claim lapsed."""
    return Result(message.delivery_id, Outcome.UNSENT, "not sent: the claim lapsed")


class Notifier(Protocol):
    """A channel: sends a batch, reusing its connection, and reports every message."""

    channel: str

    def send(
        self, messages: Sequence[Message], done: Done = ignore, held: Held = always
    ) -> list[Result]:
        """Send the messages, telling `done` of each outcome as it comes; never raise for
        one message's failure. A message is sent only while `held()` (asked after its
        turn at the rate limit), else it comes back UNSENT."""
        ...

    def reconcile(self, messages: Sequence[Message]) -> list[Result | None]:
        """For messages whose send may or may not have happened (a crash), ask the provider.

        DELIVERED (with its ref) when the provider has it; None when it does not, or cannot
        say, and resending is safe (an idempotency key or Message-ID carries over).
        """
        ...


def status_outcome(status: int) -> Outcome:
    """Classify an HTTP status: 2xx delivered; 429, 5xx and timeouts retryable; other 4xx
    permanent, except refused credentials (401, 403), which an operator can fix."""
    if 200 <= status < 300:
        return Outcome.DELIVERED
    if status in (401, 403, 408, 425, 429) or status >= 500:
        return Outcome.RETRYABLE
    return Outcome.PERMANENT
