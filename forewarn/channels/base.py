"""The one contract every channel keeps: take a batch of messages, say for each one
whether it was delivered, failed in a way worth retrying, or failed for good."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Protocol

from forewarn.channels.rate import RateLimiter

if TYPE_CHECKING:
    from forewarn.config import Settings


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


# Makes a sender's limiter for (rate, burst): one budget in the store when there is one.
Limiter = Callable[[float, float | None], RateLimiter]
# Builds a channel's sender from the settings, the store's signing key and a Limiter.
Build = Callable[["Settings", bytes, Limiter], "Sending | None"]


def _no_pointers(url: str, site: str) -> list[str]:
    return []


@dataclass(frozen=True, slots=True)
class Channel:
    """What the rest of forewarn knows of a channel, declared by the channel's module: the
    ledger, the composer, the importer, the drill and the demo ask this, never a name."""

    name: str
    # What one message is called, in a customer's words ("a text").
    noun: str
    # The customer's field it reaches them at ("phone"); None: nobody's own channel.
    contact: str | None = None
    # Goes first while a line is down: it reaches the customer off that line.
    first: bool = False
    # A customer who named no channel gets every reachable one of the lowest tier.
    tier: int | None = None
    # Also carries each public update once for everyone, one thread per incident.
    public: bool = False
    # One message per configured partner (the ledger's recipient is the partner's key).
    partners: bool = False
    # Room for everything: a subject, ops' notes whole, a heads-up's standard words.
    long_form: bool = False
    # Whether a body is within the channel's limit (None: any length goes).
    fits: Callable[[str], bool] | None = None
    # The rendered text as it is sent.
    finish: Callable[[str], str] = str.strip
    # Where a note too long for the channel is read in full, given the incident's page
    # and the site's front, best first.
    pointers: Callable[[str, str], list[str]] = _no_pointers
    # A note cut to the room a text (`frame`, with the note as one mark) leaves it.
    cut: Callable[[str, str], str | None] | None = None
    # How an at-risk customer confirms a message on it: "reply" (YES), or "press" (a key,
    # heard by the receiver); a long-form message confirms by its signed link.
    confirm_by: str = "reply"
    # A structured body (the page and the incident, Statuspage's shape) instead of words.
    document: Callable[[Mapping[str, object], Mapping[str, object]], str] | None = None
    # The settings that configure it (variable, Settings field), and how its sender is
    # built from them (None when they are not all given: its messages go to the outbox).
    settings: tuple[tuple[str, str], ...] = ()
    build: Build | None = None


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


class Sender(Protocol):
    """What dispatch needs of a channel's sender: its channel, its rate, the batch sent
    (paced, checked against the claim, reported), and an answer about lost claims."""

    channel: str
    limiter: RateLimiter | None

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

    def close(self) -> None:
        """Let go of the provider's connections (a process's last act with the sender)."""
        ...


class Session(Protocol):
    """One connection to a provider, used for one message after another."""

    def refuse(self, message: Message) -> Result | None:
        """The result for a message that cannot go (a bad address, no connection), known
        without spending the rate; None when it can go."""
        ...

    def send(self, message: Message) -> Result:
        """Make the one request that hands `message` to the provider; never raise."""
        ...

    def close(self) -> None:
        """Let go of the connection."""
        ...


class Sending:
    """The one send sequence every channel shares: `concurrency` sessions, each with its
    share of the batch, refusing what cannot go, waiting for the rate, checking the claim
    is still held, making the request, reporting the outcome. A channel's sender says how
    one message goes (`session`) and what a message costs at the rate (`cost`)."""

    channel: str
    limiter: RateLimiter | None = None
    concurrency: int = 1

    def session(self) -> Session:
        """A fresh connection (one per sending thread)."""
        raise NotImplementedError

    def cost(self, message: Message) -> float:
        """What `message` spends of the rate (one; a text its segments)."""
        return 1.0

    def send(
        self, messages: Sequence[Message], done: Done = ignore, held: Held = always
    ) -> list[Result]:
        """Send every message while the claim is `held`; one failure never stops the
        others. Each session has its own share of the batch (a session that cannot
        connect costs only its share). Results come back in the messages' order."""
        if not messages:
            return []
        results: dict[int, Result] = {}

        def work(share: Sequence[Message]) -> None:
            session = self.session()
            try:
                for message in share:
                    result = session.refuse(message) or self._paced(session, message, held)
                    results[message.delivery_id] = result
                    done(result)
            finally:
                session.close()

        workers = max(1, min(self.concurrency, len(messages)))
        if workers == 1:
            work(messages)
        else:
            shares = [messages[i::workers] for i in range(workers)]
            with ThreadPoolExecutor(workers, thread_name_prefix=self.channel) as pool:
                for running in [pool.submit(work, share) for share in shares]:
                    running.result()
        return [results[m.delivery_id] for m in messages]

    def _paced(self, session: Session, message: Message, held: Held) -> Result:
        if self.limiter is not None:
            self.limiter.acquire(self.cost(message))
        return session.send(message) if held() else unsent(message)

    def reconcile(self, messages: Sequence[Message]) -> list[Result | None]:
        """By default a provider cannot be asked: resending is safe (a key carries over)."""
        return [None for _ in messages]

    def close(self) -> None:
        """Nothing to let go of (a sender with a pooled client closes it)."""


class Stateless:
    """A session for a sender whose requests share nothing but its pooled client."""

    def __init__(self, send: Callable[[Message], Result]) -> None:
        self._send = send

    def send(self, message: Message) -> Result:
        """The sender's one request."""
        return self._send(message)

    def refuse(self, message: Message) -> Result | None:
        """Nothing is refused before the request."""
        return None

    def close(self) -> None:
        """The pooled client stays open for the next batch."""


def bare(url: str) -> str:
    """A link without its scheme, which phones link anyway: shorter texts."""
    return url.removeprefix("https://").removeprefix("http://")


def status_outcome(status: int) -> Outcome:
    """Classify an HTTP status: 2xx delivered; 429, 5xx and timeouts retryable; other 4xx
    permanent, except refused credentials (401, 403), which an operator can fix."""
    if 200 <= status < 300:
        return Outcome.DELIVERED
    if status in (401, 403, 408, 425, 429) or status >= 500:
        return Outcome.RETRYABLE
    return Outcome.PERMANENT
