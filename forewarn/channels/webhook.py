"""The webhook channel, for partners and other systems: a JSON POST in Statuspage's webhook shape
(`meta`, `page`, `incident` with its updates), one per update per partner URL. The
`X-Forewarn-Delivery` header repeats on a resend, so a receiver can drop the second."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
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
    Stateless,
    status_outcome,
)
from forewarn.channels.rate import RateLimiter

if TYPE_CHECKING:
    from forewarn.config import Settings

# httpx logs every request's full URL at INFO, and a partner's URL may carry its token:
# a filter puts the partner's key in place of its URL. Nothing else about the httpx
# logger changes (its level and every other request's line stay the process's own).
_HIDDEN: dict[str, str] = {}  # a partner's URL as httpx writes it -> its key


class _HidePartnerUrls(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 2 and str(args[1]) in _HIDDEN:
            record.args = (args[0], _HIDDEN[str(args[1])], *args[2:])
        return True


_FILTER = _HidePartnerUrls()


def partner_key(url: str) -> str:
    """The ledger's name for a partner URL: a digest, so no token in a URL reaches the store."""
    return "partner:" + hashlib.sha256(url.encode()).hexdigest()[:16]


class WebhookSender(Sending):
    """POSTs each message's JSON body to the partner its ledger row names."""

    channel = "webhook"

    def __init__(
        self,
        urls: Sequence[str],
        limiter: RateLimiter | None = None,
        concurrency: int = 4,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._urls: Mapping[str, str] = {partner_key(url): url for url in urls}
        _HIDDEN.update({str(httpx.URL(url)): key for key, url in self._urls.items()})
        if _FILTER not in logging.getLogger("httpx").filters:
            logging.getLogger("httpx").addFilter(_FILTER)
        self._http = httpx.Client(transport=transport, timeout=timeout)
        self.limiter = limiter or RateLimiter(10.0)
        self.concurrency = concurrency

    def __repr__(self) -> str:
        return f"WebhookSender({len(self._urls)} partner URLs)"

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()

    @property
    def partners(self) -> list[str]:
        """The ledger keys of the configured partners."""
        return list(self._urls)

    def knows(self, partner: str) -> bool:
        """Whether `partner` (a ledger key) is still configured."""
        return partner in self._urls

    def session(self) -> Session:
        """The threads share one pooled client."""
        return Partners(self)

    def post(self, message: Message) -> Result:
        """POST one message to its partner."""
        url = self._urls[message.to]
        headers = {"Content-Type": "application/json", "X-Forewarn-Delivery": message.key}
        try:
            response = self._http.post(url, content=message.body.encode(), headers=headers)
        except httpx.TimeoutException:
            return Result(message.delivery_id, Outcome.RETRYABLE, "partner timed out")
        except httpx.TransportError as err:
            return Result(
                message.delivery_id, Outcome.RETRYABLE, f"partner unreachable: {type(err).__name__}"
            )
        outcome = status_outcome(response.status_code)
        ref = message.key if outcome is Outcome.DELIVERED else None
        return Result(message.delivery_id, outcome, f"partner answered {response.status_code}", ref)


class Partners(Stateless):
    """The shared client's requests, but a partner no longer configured is refused
    before it spends the rate."""

    def __init__(self, sender: WebhookSender) -> None:
        super().__init__(sender.post)
        self.sender = sender

    def refuse(self, message: Message) -> Result | None:
        """A partner removed from the settings since the message was queued."""
        if not self.sender.knows(message.to):
            return Result(message.delivery_id, Outcome.PERMANENT, "partner no longer configured")
        return None


def payload(page: Mapping[str, object], incident: Mapping[str, object]) -> str:
    """The webhook body, in Statuspage's shape."""
    return json.dumps({"meta": {"generated_by": "forewarn"}, "page": page, "incident": incident})


def build(settings: Settings, signing_key: bytes, limiter: Limiter) -> WebhookSender | None:
    """The partners' webhooks the settings list, or None when there are none."""
    urls = settings.webhook_url_list
    return WebhookSender(urls, limiter=limiter(settings.webhook_rate, None)) if urls else None


CHANNEL = Channel(
    name="webhook",
    noun="webhook",
    partners=True,
    document=payload,
    build=build,
    settings=(("FOREWARN_WEBHOOK_URLS", "webhook_urls"),),
)
