"""Webhooks for partners and other systems: a JSON POST in Statuspage's webhook shape
(`meta`, `page`, `incident` with its updates), one per update per partner URL. The
`X-Forewarn-Delivery` header repeats on a resend, so a receiver can drop the second."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import httpx

from forewarn.notifiers.base import (
    Done,
    Held,
    Message,
    Outcome,
    Result,
    always,
    ignore,
    status_outcome,
    unsent,
)
from forewarn.notifiers.rate import RateLimiter

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


class WebhookNotifier:
    """POSTs each message's JSON body to the partner its ledger row names."""

    channel = "webhook"

    def __init__(
        self,
        urls: Sequence[str],
        rate: float = 10.0,
        concurrency: int = 4,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._urls: Mapping[str, str] = {partner_key(url): url for url in urls}
        _HIDDEN.update({str(httpx.URL(url)): key for key, url in self._urls.items()})
        if _FILTER not in logging.getLogger("httpx").filters:
            logging.getLogger("httpx").addFilter(_FILTER)
        self._http = httpx.Client(transport=transport, timeout=timeout)
        self.limiter = RateLimiter(rate)
        self.concurrency = concurrency

    def __repr__(self) -> str:
        return f"WebhookNotifier({len(self._urls)} partner URLs)"

    @property
    def partners(self) -> list[str]:
        """The ledger keys of the configured partners."""
        return list(self._urls)

    def send(
        self, messages: Sequence[Message], done: Done = ignore, held: Held = always
    ) -> list[Result]:
        """POST every message while `held`; one partner's failure never stops the others."""

        def post(message: Message) -> Result:
            result = self._post(message, held)
            done(result)
            return result

        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="webhook") as pool:
            return list(pool.map(post, messages))

    def reconcile(self, messages: Sequence[Message]) -> list[Result | None]:
        """A partner cannot be asked; resend with the same delivery header."""
        return [None for _ in messages]

    def _post(self, message: Message, held: Held) -> Result:
        url = self._urls.get(message.to)
        if url is None:
            return Result(message.delivery_id, Outcome.PERMANENT, "partner no longer configured")
        self.limiter.acquire()
        if not held():
            return unsent(message)
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


def payload(page: Mapping[str, object], incident: Mapping[str, object]) -> str:
    """The webhook body, in Statuspage's shape."""
    return json.dumps({"meta": {"generated_by": "forewarn"}, "page": page, "incident": incident})
