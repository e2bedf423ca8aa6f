"""Channels: one module per channel, one contract for all, dispatch through the ledger."""

from forewarn.notifiers.base import Message, Notifier, Outcome, Result

__all__ = ["Message", "Notifier", "Outcome", "Result"]
