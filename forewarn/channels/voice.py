"""The voice channel: calls through Twilio's Calls API (Twilio's own library, one pooled
httpx connection per process), each carrying its TwiML: the message said twice in the
customer's language, inside a `<Gather>` for one key press when the receiver is public
(a press is how an at-risk customer confirms they heard us).

Twilio accepts a call (201 and a CA SID) before the phone rings; how it ended (completed,
busy, no-answer, failed) arrives on the status callback, and a key press on the gather's
action (see receiver.py). An unanswered call is not called again by the ledger: a call
wakes people, so only an at-risk customer's safety check calls twice (safety.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx
from twilio.base.exceptions import TwilioException
from twilio.twiml.voice_response import VoiceResponse

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
)
from forewarn.channels.rate import RateLimiter
from forewarn.channels.sms import cannot_reconcile, twilio_client, twilio_create
from forewarn.texts import say

if TYPE_CHECKING:
    from forewarn.config import Settings

# Twilio's documented default for a calling number: one call a second.
DEFAULT_RATE = 1.0
# Twilio refuses a call whose `Twiml` is longer than this (its API description).
MAX_TWIML = 4000
# How long the phone rings before Twilio calls it no answer (its default is 60 s).
RING_S = 30
# How long Twilio waits for the key press once the message has been said.
PRESS_S = 8
# The voices' languages Twilio's <Say> knows for forewarn's locales, by phone region; the
# first is the locale's own when the region has none.
LANGUAGES = {
    "en": {"GB": "en-GB", "US": "en-US", "AU": "en-AU", "CA": "en-CA", "IN": "en-IN"},
    "es": {"ES": "es-ES", "MX": "es-MX", "US": "es-US"},
}
DEFAULT_LANGUAGE = {"en": "en-US", "es": "es-ES"}
# How a call ended, in the words ops read (CallStatus on Twilio's status callback).
ENDINGS = {
    "completed": "answered",
    "busy": "busy",
    "no-answer": "no answer",
    "failed": "could not be placed",
    "canceled": "cancelled",
}
FINAL = frozenset(ENDINGS)


def language(locale: str, region: str) -> str:
    """The `<Say>` language for a customer's locale in the operator's phone region."""
    known = LANGUAGES.get(locale, LANGUAGES["en"])
    return known.get(region.upper()) or DEFAULT_LANGUAGE.get(locale, "en-US")


def twiml(body: str, locale: str, region: str, gather_url: str | None) -> str:
    """The call's TwiML: the message twice, within a one-key `<Gather>` when there is an
    action URL to hear the press on, then a goodbye."""
    voice = VoiceResponse()
    spoken = language(locale, region)
    target: Any = voice
    if gather_url:
        target = voice.gather(num_digits=1, action=gather_url, method="POST", timeout=PRESS_S)
    target.say(body, language=spoken)
    target.pause(length=1)
    target.say(body, language=spoken)
    voice.say(say("voice_goodbye", locale), language=spoken)
    return str(voice)


def thanks(locale: str, region: str) -> str:
    """The TwiML that answers a key press: thanks, and goodbye."""
    voice = VoiceResponse()
    voice.say(say("voice_thanks", locale), language=language(locale, region))
    voice.hangup()
    return str(voice)


class VoiceSender(Sending):
    """Places calls through `twilio.rest.Client`, at the `limiter`'s rate in calls per
    second (one by default), `concurrency` requests at a time."""

    channel = "voice"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        caller: str,
        api_url: str = "https://api.twilio.com",
        limiter: RateLimiter | None = None,
        public_url: str | None = None,
        region: str = "US",
        concurrency: int = 4,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._http, self._client = twilio_client(
            account_sid, auth_token, api_url, concurrency, transport, timeout
        )
        self.caller = caller
        base = public_url.rstrip("/") if public_url else None
        self.status_callback = f"{base}/hooks/twilio/voice/status" if base else None
        self.gather_url = f"{base}/hooks/twilio/voice/gather" if base else None
        self.region = region
        self.concurrency = concurrency
        self.limiter = limiter or RateLimiter(DEFAULT_RATE)

    def __repr__(self) -> str:
        return f"VoiceSender(caller={self.caller!r}, api={self._client.api.base_url!r})"

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()

    def session(self) -> Session:
        """The threads share one pooled client."""
        return Stateless(self._request)

    def _request(self, message: Message) -> Result:
        instructions = twiml(message.body, message.locale, self.region, self.gather_url)
        if len(instructions) > MAX_TWIML:
            detail = f"the call's TwiML is {len(instructions)} characters, over {MAX_TWIML}"
            return Result(message.delivery_id, Outcome.PERMANENT, detail)
        params: dict[str, Any] = {
            "to": message.to,
            "from_": self.caller,
            "twiml": instructions,
            "timeout": RING_S,
        }
        if self.status_callback:
            # Without StatusCallbackEvent Twilio calls back once, when the call is over.
            params["status_callback"] = self.status_callback
        create = self._client.calls.create
        return twilio_create(
            message.delivery_id, lambda: create(**params), "call placed with twilio"
        )

    def reconcile(self, messages: Sequence[Message]) -> list[Result | None]:
        """Look for each in-flight call in Twilio's list of calls to that number, created
        since its claim (a call's record does not carry its words, so the time tells; a
        call still queued has no start time yet, so the list is not filtered by one)."""
        return [self._find(m) for m in messages]

    def _find(self, message: Message) -> Result | None:
        since = (message.claimed_at - timedelta(minutes=1)) if message.claimed_at else None
        try:
            # One page: the newest calls come first, and a page never fetches the next.
            recent = list(self._client.calls.page(to=message.to, page_size=20))
        except (TwilioException, httpx.HTTPError) as err:
            return cannot_reconcile(message.delivery_id, err)
        for call in recent:
            created = call.date_created
            if since is None or created is None or created >= since:
                return Result(message.delivery_id, Outcome.DELIVERED, "found at twilio", call.sid)
        return None


def caller_of(settings: Settings) -> str | None:
    """The number calls come from: FOREWARN_VOICE_FROM, else the SMS sender when it is a
    phone number (a short code or a Messaging Service cannot call)."""
    if settings.voice_from:
        return settings.voice_from
    sender = settings.sms_from or ""
    digits = sender.lstrip("+")
    return sender if sender.startswith("+") and digits.isdigit() and len(digits) > 6 else None


def build(settings: Settings, signing_key: bytes, limiter: Limiter) -> VoiceSender | None:
    """The voice sender the settings describe, or None without Twilio or a calling number."""
    s = settings
    token = s.twilio_auth_token.get_secret_value() if s.twilio_auth_token else None
    caller = caller_of(s)
    if not (s.twilio_account_sid and token and caller):
        return None
    return VoiceSender(
        s.twilio_account_sid,
        token,
        caller,
        api_url=s.twilio_api_url,
        limiter=limiter(s.voice_rate, 1.0),
        public_url=s.public_url,
        region=s.phone_region,
        concurrency=min(s.send_concurrency, 4),
    )


def _fits(body: str) -> bool:
    """Whether the message, said twice with its gather, stays within Twilio's TwiML limit."""
    return len(twiml(body, "en", "US", "https://" + "x" * 200)) <= MAX_TWIML


CHANNEL = Channel(
    name="voice",
    noun="call",
    contact="phone",
    # A call to a mobile reaches off the broken line; no customer gets one unasked.
    first=True,
    fits=_fits,
    finish=lambda text: " ".join(text.split()),
    # A call names the site's front, where the incident is on top, for a long note.
    pointers=lambda url, site: [bare(site)],
    confirm_by="press",
    build=build,
)
