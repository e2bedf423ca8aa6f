"""The sender of every channel, built from the settings; a channel without credentials
writes to the outbox."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import SecretStr
from sqlalchemy.engine import Engine

from forewarn.channels import CHANNELS
from forewarn.channels.base import Limiter, Sender
from forewarn.channels.outbox import OutboxSender
from forewarn.channels.rate import RateLimiter, SharedRateLimiter
from forewarn.config import Settings
from forewarn.notifiers.budget import prefect_grant, rate_grant
from forewarn.notifiers.journal import Journal


@dataclass(slots=True)
class Registry:
    """The sender for every channel, and the channels that fell back to the outbox."""

    senders: dict[str, Sender]
    journal: Journal
    to_outbox: list[str] = field(default_factory=list)
    partners: list[str] = field(default_factory=list)

    def close(self) -> None:
        """Close every sender's connections."""
        for sender in self.senders.values():
            sender.close()


def half_configured(settings: Settings) -> list[str]:
    """One line for each channel given some of its settings but not all: it would fall
    back to the outbox, and its customers would quietly not hear."""
    lines = []
    for name, channel in CHANNELS.items():
        values = {variable: getattr(settings, field) for variable, field in channel.settings}
        have = [variable for variable, value in values.items() if _present(value)]
        lack = [variable for variable in values if variable not in have]
        if have and lack:
            every, none = ("both", "neither") if len(values) == 2 else ("all three", "none")
            lines.append(
                f"{name}: {_names(have)} set but {_names(lack)} not; set {every} to send "
                f"{name}, or {none} to write it to the outbox"
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
    """Build the senders from settings; missing credentials send a channel to the outbox.
    With the store's `engine`, each channel's rate is one budget in the store that every
    worker draws on, so N workers together still send at the provider's limit."""
    registry = Registry(senders={}, journal=Journal(settings.journal_dir))
    on_prefect = settings.rate_limits == "prefect"
    for name, channel in CHANNELS.items():
        build = channel.build
        limiter = _limiter(name, None if on_prefect else engine, on_prefect)
        sender = build(settings, signing_key, limiter) if build else None
        if sender is not None:
            registry.senders[name] = sender
            registry.partners += list(getattr(sender, "partners", [])) if channel.partners else []
        elif not channel.partners:
            registry.senders[name] = OutboxSender(settings.outbox, name)
            registry.to_outbox.append(name)
    return registry


def _limiter(channel: str, engine: Engine | None, on_prefect: bool = False) -> Limiter:
    """A channel's limiter: a bucket of its own, or with the store's `engine` the channel's
    one budget in the store (a bucket each would let every worker send at the full rate),
    or `on_prefect` its Prefect global concurrency limit."""

    def make(rate: float, burst: float | None) -> RateLimiter:
        if on_prefect:
            return SharedRateLimiter(rate, prefect_grant(channel), burst)
        if engine is None:
            return RateLimiter(rate, burst)
        return SharedRateLimiter(rate, rate_grant(engine, channel), burst)

    return make
