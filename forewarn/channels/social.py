"""The social channel, on Mastodon: one public thread per incident (each update answers
the last post) in area-level words only, and direct messages for customers who chose
social. Every post carries the ledger key as its Idempotency-Key, so a resend after a
crash is the same post.
The same client reads the account's mentions and posts the answers that
forewarn.incidents.mentions composes."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from forewarn.channels.base import (
    Channel,
    Limiter,
    Message,
    Outcome,
    Result,
    Sending,
    Session,
    status_outcome,
)
from forewarn.channels.rate import RateLimiter
from forewarn.cleantext import clean
from forewarn.feeds.safejson import Unreadable, loads

if TYPE_CHECKING:
    from forewarn.config import Settings

# Mastodon's default limit for a status.
MAX_CHARS = 500
# Mastodon allows 300 posts in 3 hours.
DEFAULT_RATE = 300 / 10800
BURST = 30.0
_TAGS = re.compile(r"<[^>]+>")


@dataclass(frozen=True, slots=True)
class Mention:
    """One mention: who, which post, and its text without markup."""

    notification_id: str
    status_id: str
    acct: str
    text: str


class SocialSender(Sending):
    """One Mastodon account on one reused connection: the social channel's sender (posts
    through `POST /api/v1/statuses` in ledger order) and the reader and answerer of its
    mentions (`forewarn.incidents.mentions.Account`)."""

    channel = "social"

    def __init__(
        self,
        base_url: str,
        token: str,
        limiter: RateLimiter | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}"},
            transport=transport,
            timeout=timeout,
        )
        # Mastodon counts 300 posts per 3 hours: allow a burst, then the average.
        self.limiter = limiter or RateLimiter(DEFAULT_RATE, burst=BURST)

    def __repr__(self) -> str:
        return f"SocialSender({self.base_url!r})"

    def close(self) -> None:
        """Close the connection."""
        self._http.close()

    def session(self) -> Session:
        """Posts go in order, one at a time, so a thread's posts answer each other."""
        return Thread(self)

    def post(self, message: Message, reply_to: str | None) -> Result:
        """Post one status (a reply in the incident's thread when `reply_to`)."""
        text = _status(message)
        form: dict[str, str] = {
            "status": text,
            "visibility": "public" if message.customer_id is None else "direct",
        }
        if reply_to and message.customer_id is None:
            form["in_reply_to_id"] = reply_to
        try:
            response = self._http.post(
                "/api/v1/statuses", data=form, headers={"Idempotency-Key": message.key}
            )
        except httpx.TimeoutException:
            return Result(message.delivery_id, Outcome.RETRYABLE, "mastodon timed out")
        except httpx.TransportError as err:
            return Result(
                message.delivery_id,
                Outcome.RETRYABLE,
                f"mastodon unreachable: {type(err).__name__}",
            )
        outcome = status_outcome(response.status_code)
        if outcome is not Outcome.DELIVERED:
            return Result(
                message.delivery_id, outcome, f"mastodon {response.status_code}: {_error(response)}"
            )
        status_id = _field(response, "id")
        if not status_id:
            return Result(
                message.delivery_id, Outcome.RETRYABLE, "mastodon answered without a status id"
            )
        return Result(message.delivery_id, Outcome.DELIVERED, "posted", status_id)

    def read_mentions(self, since_id: str | None) -> list[Mention]:
        """Mentions newer than `since_id`, oldest first."""
        params: list[tuple[str, str | int | float | bool | None]] = [
            ("types[]", "mention"),
            ("limit", 40),
        ]
        if since_id:
            params.append(("since_id", since_id))
        response = self._http.get("/api/v1/notifications", params=params)
        response.raise_for_status()
        try:
            items = loads(response.content)
        except Unreadable as err:
            raise ValueError(f"mastodon notifications: {err}") from None
        # Whatever the server sends, a malformed notification costs only itself.
        found = [m for item in (items if isinstance(items, list) else []) if (m := _mention(item))]
        # Ids are numbers written as text, of any length: by length, then digits.
        return sorted(found, key=lambda m: (len(m.notification_id), m.notification_id))

    def reply(self, text: str, reply_to: str, visibility: str, key: str) -> str:
        """Answer a post; the idempotency key makes a repeat after a crash harmless."""
        response = self._http.post(
            "/api/v1/statuses",
            data={
                "status": clean(text)[:MAX_CHARS],
                "in_reply_to_id": reply_to,
                "visibility": visibility,
            },
            headers={"Idempotency-Key": key},
        )
        response.raise_for_status()
        return _field(response, "id")


class Thread:
    """One batch's posts: a later update of a thread in the same batch answers the
    earlier, and a post too long for Mastodon is refused before it spends the rate."""

    def __init__(self, sender: SocialSender) -> None:
        self.sender = sender
        self.last_post: dict[int, str] = {}

    def refuse(self, message: Message) -> Result | None:
        """A post longer than Mastodon takes."""
        if len(_status(message)) > MAX_CHARS:
            return Result(message.delivery_id, Outcome.PERMANENT, f"post longer than {MAX_CHARS}")
        return None

    def send(self, message: Message) -> Result:
        """Post it, answering the thread's last post."""
        reply_to = self.last_post.get(message.incident_id, message.reply_to)
        result = self.sender.post(message, reply_to)
        if result.outcome is Outcome.DELIVERED and message.customer_id is None and result.ref:
            self.last_post[message.incident_id] = result.ref
        return result

    def close(self) -> None:
        """The connection stays open for the next batch."""


def _status(message: Message) -> str:
    """The status as posted: a direct message reaches only the mentioned account."""
    text = clean(message.body)  # a post is public: no control or bidi characters
    if message.customer_id is not None:
        text = f"@{message.to.lstrip('@')} {text}"
    return text


def _mention(item: object) -> Mention | None:
    """One notification as a mention, or None if it is not a well-formed one."""
    if not isinstance(item, dict) or item.get("type") != "mention":
        return None
    status, account = item.get("status"), item.get("account")
    if not isinstance(status, dict) or not isinstance(account, dict):
        return None
    ids = (item.get("id"), status.get("id"), account.get("acct"))
    if not all(isinstance(v, str | int) and not isinstance(v, bool) and str(v) for v in ids):
        return None
    notification_id, status_id, acct = (str(v)[:256] for v in ids)
    content = status.get("content")
    text = html.unescape(_TAGS.sub(" ", content if isinstance(content, str) else ""))
    return Mention(notification_id, status_id, acct, " ".join(clean(text).split()))


def _field(response: httpx.Response, name: str) -> str:
    """One field of Mastodon's JSON answer as text ("" when the answer has none: not JSON,
    not an object, nested too deep)."""
    try:
        answer = loads(response.content)
    except Unreadable:
        return ""
    value = answer.get(name) if isinstance(answer, dict) else None
    return "" if value is None or isinstance(value, dict | list) else str(value)[:256]


def _error(response: httpx.Response) -> str:
    return _field(response, "error")[:200] or response.reason_phrase


def build(settings: Settings, signing_key: bytes, limiter: Limiter) -> SocialSender | None:
    """The Mastodon account the settings describe, or None without one."""
    s = settings
    if not (s.mastodon_url and s.mastodon_token):
        return None
    limits = limiter(s.social_rate, BURST)
    return SocialSender(s.mastodon_url, s.mastodon_token.get_secret_value(), limiter=limits)


CHANNEL = Channel(
    name="social",
    noun="public post",
    contact="social",
    tier=1,
    public=True,
    fits=lambda body: len(body) <= MAX_CHARS,
    pointers=lambda url, site: [url],
    build=build,
    settings=(
        ("FOREWARN_MASTODON_URL", "mastodon_url"),
        ("FOREWARN_MASTODON_TOKEN", "mastodon_token"),
    ),
)
