"""Sending what the ledger hands out: composing each message, dispatching batches to the
channels' senders (forewarn.channels), the senders built from settings, shared budgets."""
