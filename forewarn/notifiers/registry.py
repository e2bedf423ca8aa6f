"""Which notifier serves each channel. A channel without credentials uses the outbox."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import SecretStr
from sqlalchemy.engine import Engine

from forewarn.config import Settings
from forewarn.notifiers import outbox
from forewarn.notifiers.base import Notifier
from forewarn.notifiers.budget import rate_grant
from forewarn.notifiers.email import EmailNotifier, SmtpServer
from forewarn.notifiers.journal import Journal
from forewarn.notifiers.rate import RateLimiter, SharedRateLimiter
from forewarn.notifiers.sms import SmsNotifier
from forewarn.notifiers.social import MastodonClient
from forewarn.notifiers.unsubscribe import unsubscribe_link
from forewarn.notifiers.webhook import WebhookNotifier, partner_key

CHANNELS = ("sms", "email", "social")


@dataclass(slots=True)
class Registry:
    """The notifier for every channel, and the channels that fell back to the outbox."""

    notifiers: dict[str, Notifier]
    journal: Journal
    to_outbox: list[str] = field(default_factory=list)
    partners: list[str] = field(default_factory=list)


def half_configured(settings: Settings) -> list[str]:
    """One line for each channel given some of its settings but not all: it would fall
    back to the outbox, and its customers would quietly not hear."""
    s = settings
    channels = {
        "sms": {"TWILIO_ACCOUNT_SID": s.twilio_account_sid,
                "TWILIO_AUTH_TOKEN": s.twilio_auth_token, "FOREWARN_SMS_FROM": s.sms_from},
        "email": {"FOREWARN_SMTP_URL": s.smtp_url, "FOREWARN_EMAIL_FROM": s.email_from},
        "social": {"FOREWARN_MASTODON_URL": s.mastodon_url,
                   "FOREWARN_MASTODON_TOKEN": s.mastodon_token},
    }  # fmt: skip
    lines = []
    for channel, values in channels.items():
        have = [name for name, value in values.items() if _present(value)]
        lack = [name for name in values if name not in have]
        if have and lack:
            every, none = ("both", "neither") if len(values) == 2 else ("all three", "none")
            lines.append(
                f"{channel}: {_names(have)} set but {_names(lack)} not; set {every} to send "
                f"{channel}, or {none} to write it to the outbox"
            )
    return lines


def _present(value: str | SecretStr | None) -> bool:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return bool(value and value.strip())


def _names(names: list[str]) -> str:
    """'A is' or 'A and B are'."""
    return f"{' and '.join(names)} {'is' if len(names) == 1 else 'are'}"


def build(settings: Settings, signing_key: bytes = b"", engine: Engine | None = None) -> Registry:
    """Build the notifiers from settings; missing credentials send a channel to the outbox.
    With the store's `engine`, each channel's rate is one budget in the store that every
    worker draws on, so N workers together still send at the provider's limit."""
    s = settings
    registry = Registry(notifiers={}, journal=Journal(s.journal_dir))
    token = s.twilio_auth_token.get_secret_value() if s.twilio_auth_token else None
    if s.twilio_account_sid and token and s.sms_from:
        callback = f"{s.public_url.rstrip('/')}/hooks/twilio/status" if s.public_url else None
        registry.notifiers["sms"] = SmsNotifier(
            s.twilio_account_sid,
            token,
            s.sms_from,
            api_url=s.twilio_api_url,
            rate=s.sms_rate,
            validity_s=s.sms_validity_s,
            status_callback=callback,
            concurrency=s.send_concurrency,
        )
    if s.smtp_url and s.email_from:
        registry.notifiers["email"] = EmailNotifier(
            SmtpServer.from_url(s.smtp_url.get_secret_value()),
            s.email_from,
            unsubscribe_url=unsubscribe_link(s.public_url, signing_key),
            rate=s.email_rate,
            concurrency=min(s.send_concurrency, 8),
        )
    if s.mastodon_url and s.mastodon_token:
        registry.notifiers["social"] = MastodonClient(
            s.mastodon_url, s.mastodon_token.get_secret_value(), rate=s.social_rate
        )
    if s.webhook_url_list:
        registry.notifiers["webhook"] = WebhookNotifier(s.webhook_url_list, rate=s.webhook_rate)
        registry.partners = [partner_key(url) for url in s.webhook_url_list]
    if engine is not None:
        share_rates(registry, engine)
    for channel in CHANNELS:
        if channel not in registry.notifiers:
            registry.notifiers[channel] = outbox.Notifier(s.outbox, channel)
            registry.to_outbox.append(channel)
    return registry


def share_rates(registry: Registry, engine: Engine) -> None:
    """Give every rate-limited notifier the channel's budget in the store instead of a
    bucket of its own (which every worker process would have, each at the full limit)."""
    for channel, notifier in registry.notifiers.items():
        limiter = getattr(notifier, "limiter", None)
        if isinstance(limiter, RateLimiter) and not isinstance(limiter, SharedRateLimiter):
            grant = rate_grant(engine, channel)
            shared = SharedRateLimiter(limiter.rate, grant, limiter.burst)
            setattr(notifier, "limiter", shared)  # noqa: B010
