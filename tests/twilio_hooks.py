"""What the receiver tests share about Twilio's side: the account's token, the public
URL Twilio calls, the hooks as forewarn is given them, and Twilio's signature."""

from __future__ import annotations

from twilio.request_validator import RequestValidator

from forewarn.incidents.replies import Voice
from forewarn.receiver import TwilioHooks

AUTH_TOKEN = "twilio-auth-token-for-tests"
PUBLIC = "https://alerts.millroad.example"


def hooks() -> TwilioHooks:
    """The Twilio hooks as the receiver is given them, speaking for Mill Road Fibre."""
    return TwilioHooks(AUTH_TOKEN, PUBLIC, Voice("Mill Road Fibre", "Outage alerts."))


def signed(path: str, form: dict[str, str], token: str = AUTH_TOKEN) -> dict[str, str]:
    """The headers Twilio would send: its signature over our public URL and the form."""
    signature = RequestValidator(token).compute_signature(PUBLIC + path, form)
    return {"X-Twilio-Signature": signature}
