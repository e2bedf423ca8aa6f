"""SMS through Twilio's own library, over one pooled httpx connection per process.

Twilio accepts a text (201 and a SID) before the carrier delivers it; delivery and its
failures arrive later on the status callback (see receiver.py). A send is retried only
where FACTS.md says a retry can help.
"""

from __future__ import annotations

import logging
import math
import unicodedata
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
from twilio.base.exceptions import TwilioRestException
from twilio.http import HttpClient
from twilio.http.response import Response
from twilio.rest import Client

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

# Twilio error codes that no retry will fix: invalid number, replied STOP, not a mobile,
# a landline, carrier filtering (fix the content), no route to the region.
PERMANENT_CODES = frozenset({21211, 21408, 21610, 21612, 21614, 30004, 30005, 30006, 30007})
# Queue overflow, unreachable handset, unknown: worth another try after a pause.
RETRYABLE_CODES = frozenset({20429, 30001, 30003, 30008})

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# These take two septets each (an escape, then the character).
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")


def septets(text: str) -> int:
    """How long a GSM-7 text is in septets (an extended character takes two)."""
    return len(text) + sum(c in GSM7_EXTENDED for c in text)


def segments(text: str) -> int:
    """How many SMS segments Twilio bills for `text` (GSM-7 where possible, else UCS-2)."""
    if is_gsm7(text):
        length = septets(text)
        return 1 if length <= 160 else math.ceil(length / 153)
    units = len(text.encode("utf-16-le")) // 2
    return 1 if units <= 70 else math.ceil(units / 67)


def is_gsm7(text: str) -> bool:
    """True when every character of `text` is in the GSM-7 alphabet."""
    return all(c in GSM7_BASIC or c in GSM7_EXTENDED for c in text)


# Typography a phone keyboard or a word processor adds, in the GSM-7 letters it stands for.
_PLAIN = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                        "\u2013": "-", "\u2014": "-", "\u2026": "...", "\u00a0": " "})  # fmt: skip


def fold_gsm7(text: str) -> str:
    """`text` in GSM-7 where a letter has a plain twin ("días" -> "dias", curly quotes ->
    straight): one accent outside GSM-7 would make the whole text UCS-2 and halve its
    length. Letters without a twin are kept (the text then goes as UCS-2)."""
    if is_gsm7(text):
        return text
    folded = []
    for char in text.translate(_PLAIN):
        if char not in GSM7_BASIC and char not in GSM7_EXTENDED:
            bare = "".join(
                c for c in unicodedata.normalize("NFD", char) if not unicodedata.combining(c)
            )
            char = bare if bare and is_gsm7(bare) else char
        folded.append(char)
    return "".join(folded)


def fits_one(text: str) -> bool:
    """True when `text` goes as one GSM-7 segment."""
    return is_gsm7(text) and segments(text) == 1


def default_rate(sender: str) -> float:
    """Segments per second Twilio documents for a sender: 100 for a short code (and a
    Messaging Service, which usually fronts one), 1 for a plain long code."""
    digits = sender.lstrip("+")
    if sender.startswith("MG") or (digits.isdigit() and len(digits) <= 6):
        return 100.0
    return 1.0


class HttpxTwilioClient(HttpClient):
    """Twilio's HTTP client interface over httpx: pooled keep-alive connections that
    several threads share, and timeouts that surface as httpx exceptions."""

    def __init__(self, client: httpx.Client) -> None:
        super().__init__(logger=logging.getLogger("forewarn.sms.http"), is_async=False)
        self.client = client

    def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        """Make one request and hand Twilio's library its own response type."""
        response = self.client.request(
            method,
            uri,
            params=params,  # type: ignore[arg-type]
            data=data,
            headers=headers,
            auth=auth,
            follow_redirects=allow_redirects,
        )
        return Response(response.status_code, response.text, response.headers)


class SmsNotifier:
    """Sends texts through `twilio.rest.Client`, `concurrency` at a time, at `rate`
    segments per second."""

    channel = "sms"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        sender: str,
        api_url: str = "https://api.twilio.com",
        rate: float | None = None,
        validity_s: int = 1800,
        status_callback: str | None = None,
        concurrency: int = 8,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._http = httpx.Client(
            transport=transport,
            timeout=timeout,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )
        self._client = Client(account_sid, auth_token, http_client=HttpxTwilioClient(self._http))
        self._client.api.base_url = api_url.rstrip("/")
        self.sender = sender
        self.validity_s = validity_s
        self.status_callback = status_callback
        self.concurrency = concurrency
        self.limiter = RateLimiter(rate or default_rate(sender))

    def __repr__(self) -> str:
        return f"SmsNotifier(sender={self.sender!r}, api={self._client.api.base_url!r})"

    def send(
        self, messages: Sequence[Message], done: Done = ignore, held: Held = always
    ) -> list[Result]:
        """Send every message while the claim is `held`; one failure never stops the others."""

        def send_one(message: Message) -> Result:
            result = self._send_one(message, held)
            done(result)
            return result

        if len(messages) <= 1 or self.concurrency == 1:
            return [send_one(m) for m in messages]
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="sms") as pool:
            return list(pool.map(send_one, messages))

    def _send_one(self, message: Message, held: Held) -> Result:
        self.limiter.acquire(segments(message.body))
        if not held():
            return unsent(message)
        params: dict[str, Any] = {
            "to": message.to,
            "body": message.body,
            "validity_period": self.validity_s,
        }
        if self.sender.startswith("MG"):
            params["messaging_service_sid"] = self.sender
        else:
            params["from_"] = self.sender
        if self.status_callback:
            params["status_callback"] = self.status_callback
        try:
            created = self._client.messages.create(**params)
        except TwilioRestException as err:
            return Result(message.delivery_id, classify(err), describe(err))
        except httpx.TimeoutException:
            return Result(message.delivery_id, Outcome.RETRYABLE, "twilio timed out")
        except httpx.TransportError as err:
            return Result(
                message.delivery_id, Outcome.RETRYABLE, f"twilio unreachable: {type(err).__name__}"
            )
        return Result(message.delivery_id, Outcome.DELIVERED, "accepted by twilio", created.sid)

    def reconcile(self, messages: Sequence[Message]) -> list[Result | None]:
        """Look for each in-flight text in Twilio's list of messages to that number."""
        return [self._find(m) for m in messages]

    def _find(self, message: Message) -> Result | None:
        try:
            recent = self._client.messages.list(to=message.to, limit=20)
        except (TwilioRestException, httpx.HTTPError) as err:
            detail = describe(err) if isinstance(err, TwilioRestException) else "twilio unreachable"
            return Result(message.delivery_id, Outcome.RETRYABLE, f"cannot reconcile: {detail}")
        since = (message.claimed_at - timedelta(minutes=1)) if message.claimed_at else None
        for sent in recent:
            created = sent.date_created
            if sent.body == message.body and (since is None or created is None or created >= since):
                return Result(message.delivery_id, Outcome.DELIVERED, "found at twilio", sent.sid)
        return None


def classify(err: TwilioRestException) -> Outcome:
    """Permanent or retryable, by Twilio's error code first, then the HTTP status."""
    if err.code in PERMANENT_CODES:
        return Outcome.PERMANENT
    if err.code in RETRYABLE_CODES:
        return Outcome.RETRYABLE
    return status_outcome(err.status)


def describe(err: TwilioRestException) -> str:
    """Twilio's status, code and message, without the request URL (it names the account)."""
    return f"twilio {err.status} error {err.code}: {err.msg}"[:300]
