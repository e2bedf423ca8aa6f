"""Every channel forewarn speaks on, one module each; `CHANNELS` is the only list of them.

A channel's module declares what the rest of forewarn knows of it (`base.Channel`: the
customer's field it reads, whether it goes first, carries public posts or partners' hooks,
how a message is fitted and finished, how its sender is built from the settings) and its
sender, which makes one request per message (`base.Sending` paces, checks the claim and
reports for all). Adding a channel: its module, its entry below, its templates.
"""

from __future__ import annotations

from forewarn.channels import email, sms, social, voice, webhook
from forewarn.channels.base import Channel

# In the order customers' defaults and the status lists name them.
CHANNELS: dict[str, Channel] = {
    module.CHANNEL.name: module.CHANNEL for module in (sms, email, social, voice, webhook)
}


def customer_channels() -> list[str]:
    """The channels a customer may choose: those that reach a customer's own field."""
    return [c.name for c in CHANNELS.values() if c.contact is not None]


def contact_of(name: str) -> str | None:
    """The customer's field a channel reaches them at ("phone"), if it is one of theirs."""
    found = CHANNELS.get(name)
    return found.contact if found else None


__all__ = ["CHANNELS", "Channel", "contact_of", "customer_channels"]
