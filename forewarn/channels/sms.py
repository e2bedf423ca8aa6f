"""The SMS channel: texts through Twilio's own library, over one pooled httpx connection
per process, and all forewarn knows of Twilio (error codes, signatures, TwiML answers).

Twilio accepts a text (201 and a SID) before the carrier delivers it; delivery and its
failures arrive later on the status callback (see receiver.py). A send is retried only
where FACTS.md says a retry can help.
"""

from __future__ import annotations

import logging
import math
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx
from twilio.base.exceptions import TwilioRestException
from twilio.http import HttpClient
from twilio.http.response import Response
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.messaging_response import MessagingResponse

from forewarn.channels.base import (
    Channel,
    Limiter,
    Message,
    Outcome,
    Result,
    Sending,
    Session,
    Stateless,
    bare,
    status_outcome,
)
from forewarn.channels.rate import RateLimiter

if TYPE_CHECKING:
    from forewarn.config import Settings

# Twilio error codes that no retry will fix: invalid number, replied STOP, not a mobile,
# a landline, carrier filtering (fix the content), no route to the region.
PERMANENT_CODES = frozenset({21211, 21408, 21610, 21612, 21614, 30004, 30005, 30006, 30007})
# Queue overflow, unreachable handset, unknown: worth another try after a pause.
RETRYABLE_CODES = frozenset({20429, 30001, 30003, 30008})
# Delivery error codes on a status callback worth a resend; the rest are final (FACTS.md).
RETRYABLE_DELIVERY_CODES = frozenset({"30001", "30003", "30008"})
# "unknown error" is worth one more try, not more (FACTS.md).
ONCE_CODES = frozenset({"30008"})
# What Twilio's delivery error codes mean, in the words ops read in `forewarn status`.
MEANINGS = {
    "30001": "queue overflow",
    "30003": "unreachable handset",
    "30005": "unknown handset",
    "30006": "landline or unreachable carrier",
    "30007": "carrier filtering",
    "30008": "unknown error",
    "21610": "recipient replied STOP",
}

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


def twilio_client(
    account_sid: str,
    auth_token: str,
    api_url: str,
    concurrency: int,
    transport: httpx.BaseTransport | None,
    timeout: float,
) -> tuple[httpx.Client, Client]:
    """Twilio's own client over one pooled httpx client that `concurrency` threads share
    (texts and calls alike); the httpx client is the caller's to close."""
    http = httpx.Client(
        transport=transport,
        timeout=timeout,
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
    )
    client = Client(account_sid, auth_token, http_client=HttpxTwilioClient(http))
    client.api.base_url = api_url.rstrip("/")
    return http, client


class SmsSender(Sending):
    """Sends texts through `twilio.rest.Client`, `concurrency` at a time, at the
    `limiter`'s rate in segments per second (by default the sender's documented rate)."""

    channel = "sms"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        sender: str,
        api_url: str = "https://api.twilio.com",
        limiter: RateLimiter | None = None,
        validity_s: int = 1800,
        status_callback: str | None = None,
        concurrency: int = 8,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._http, self._client = twilio_client(
            account_sid, auth_token, api_url, concurrency, transport, timeout
        )
        self.sender = sender
        self.validity_s = validity_s
        self.status_callback = status_callback
        self.concurrency = concurrency
        self.limiter = limiter or RateLimiter(default_rate(sender))

    def __repr__(self) -> str:
        return f"SmsSender(sender={self.sender!r}, api={self._client.api.base_url!r})"

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()

    def session(self) -> Session:
        """The threads share one pooled client."""
        return Stateless(self._request)

    def cost(self, message: Message) -> float:
        """Twilio's rate counts segments."""
        return float(segments(message.body))

    def _request(self, message: Message) -> Result:
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
        create = self._client.messages.create
        return twilio_create(message.delivery_id, lambda: create(**params), "accepted by twilio")

    def reconcile(self, messages: Sequence[Message]) -> list[Result | None]:
        """Look for each in-flight text in Twilio's list of messages to that number."""
        return [self._find(m) for m in messages]

    def _find(self, message: Message) -> Result | None:
        try:
            recent = self._client.messages.list(to=message.to, limit=20)
        except (TwilioRestException, httpx.HTTPError) as err:
            return cannot_reconcile(message.delivery_id, err)
        since = (message.claimed_at - timedelta(minutes=1)) if message.claimed_at else None
        for sent in recent:
            created = sent.date_created
            if sent.body == message.body and (since is None or created is None or created >= since):
                return Result(message.delivery_id, Outcome.DELIVERED, "found at twilio", sent.sid)
        return None


def twilio_create(delivery_id: int, create: Callable[[], Any], accepted: str) -> Result:
    """Make one request that creates a text or a call at Twilio: `accepted` with its SID,
    or Twilio's refusal classified, or a timeout or lost connection (retryable)."""
    try:
        created = create()
    except TwilioRestException as err:
        return Result(delivery_id, classify(err), describe(err))
    except httpx.TimeoutException:
        return Result(delivery_id, Outcome.RETRYABLE, "twilio timed out")
    except httpx.TransportError as err:
        return Result(delivery_id, Outcome.RETRYABLE, f"twilio unreachable: {type(err).__name__}")
    return Result(delivery_id, Outcome.DELIVERED, accepted, created.sid)


def cannot_reconcile(delivery_id: int, err: Exception) -> Result:
    """Twilio could not be asked about an in-flight message: try again later."""
    detail = describe(err) if isinstance(err, TwilioRestException) else "twilio unreachable"
    return Result(delivery_id, Outcome.RETRYABLE, f"cannot reconcile: {detail}")


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


def signed_by_twilio(auth_token: str, url: str, form: Mapping[str, str], signature: str) -> bool:
    """Whether `X-Twilio-Signature` is Twilio's signature of this URL and form."""
    return bool(signature) and RequestValidator(auth_token).validate(url, dict(form), signature)


def answer(text: str | None) -> str:
    """The TwiML that answers an inbound text: `text` as the reply, or no reply."""
    response = MessagingResponse()
    if text:
        response.message(text)
    return str(response)


SETTINGS = (
    ("TWILIO_ACCOUNT_SID", "twilio_account_sid"),
    ("TWILIO_AUTH_TOKEN", "twilio_auth_token"),
    ("FOREWARN_SMS_FROM", "sms_from"),
)


def build(settings: Settings, signing_key: bytes, limiter: Limiter) -> SmsSender | None:
    """The SMS sender the settings describe, or None without credentials."""
    s = settings
    token = s.twilio_auth_token.get_secret_value() if s.twilio_auth_token else None
    if not (s.twilio_account_sid and token and s.sms_from):
        return None
    callback = f"{s.public_url.rstrip('/')}/hooks/twilio/status" if s.public_url else None
    return SmsSender(
        s.twilio_account_sid,
        token,
        s.sms_from,
        api_url=s.twilio_api_url,
        limiter=limiter(s.sms_rate or default_rate(s.sms_from), None),
        validity_s=s.sms_validity_s,
        status_callback=callback,
        concurrency=s.send_concurrency,
    )


def _cut_note(note: str, frame: str) -> str | None:
    """The first words of `note` that fit the room one GSM-7 segment leaves beside
    `frame` (the text with one septet where the note goes), with "..." after them."""
    if not fits_one(frame):
        return None
    note = fold_gsm7(note)
    if not is_gsm7(note):
        return None
    room = SEGMENT - septets(frame) + 1
    kept = ""
    for word in note.split():
        longer = f"{kept} {word}" if kept else word
        if septets(longer) + 3 > room:
            break
        kept = longer
    return f"{kept}..." if kept else None


SEGMENT = 160  # septets in one GSM-7 segment

CHANNEL = Channel(
    name="sms",
    noun="text",
    contact="phone",
    first=True,
    tier=0,
    fits=fits_one,
    finish=lambda text: fold_gsm7(text.strip()),
    # A text names the page without its scheme (phones link it anyway), or the site's
    # front, where the incident is on top, when even that does not fit.
    pointers=lambda url, site: [bare(url), site],
    cut=_cut_note,
    build=build,
    settings=SETTINGS,
)
