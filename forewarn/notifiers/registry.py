"""Which notifier serves each channel. A channel without credentials uses the outbox."""

from __future__ import annotations

from dataclasses import dataclass, field

from forewarn.config import Settings
from forewarn.notifiers import outbox
from forewarn.notifiers.base import Notifier

CHANNELS = ("sms", "email", "social")


@dataclass(slots=True)
class Registry:
    """The notifier for every channel, and the channels that fell back to the outbox."""

    notifiers: dict[str, Notifier]
    to_outbox: list[str] = field(default_factory=list)


def build(settings: Settings) -> Registry:
    """Build the notifiers from settings (real channels arrive with their own issue)."""
    registry = Registry(notifiers={})
    for channel in CHANNELS:
        registry.notifiers[channel] = outbox.Notifier(settings.outbox, channel)
        registry.to_outbox.append(channel)
    return registry
