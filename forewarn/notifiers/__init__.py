"""Channels: one module per channel, one contract for all, dispatch through the ledger."""

from forewarn.channels.base import Message, Outcome, Result, Sender

__all__ = ["Message", "Outcome", "Result", "Sender"]
