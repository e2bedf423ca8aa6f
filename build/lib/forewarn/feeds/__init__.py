"""Monitoring feeds read into normalised signals: one module per source."""

from forewarn.feeds.signal import FeedBatch, Reject, Signal

__all__ = ["FeedBatch", "Reject", "Signal"]
