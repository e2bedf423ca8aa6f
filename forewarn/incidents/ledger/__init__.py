"""The delivery ledger: the queue (one row per incident, update, customer and channel,
written before anything is sent) and its state machine (claim, reclaim, record), which
hands the channels typed `DueDelivery` values."""

from forewarn.incidents.ledger.claims import (
    MAX_ATTEMPTS,
    Check,
    Claimed,
    Compose,
    Holder,
    Reclaimed,
    Recorded,
    Rules,
    backoff,
    claim,
    reclaim_stale,
    record,
    renew,
)
from forewarn.incidents.ledger.due import Attempt, DueDelivery, Verdict
from forewarn.incidents.ledger.queue import (
    PUBLIC,
    Progress,
    Queued,
    channel_order,
    counts_by_status,
    failure_reasons,
    oldest_due,
    progress,
    queue_deliveries,
)
from forewarn.incidents.ledger.told import AFTERWORDS, NEWS, Told, is_routine

__all__ = [
    "AFTERWORDS",
    "MAX_ATTEMPTS",
    "NEWS",
    "PUBLIC",
    "Attempt",
    "Check",
    "Claimed",
    "Compose",
    "DueDelivery",
    "Holder",
    "Progress",
    "Queued",
    "Reclaimed",
    "Recorded",
    "Rules",
    "Told",
    "Verdict",
    "backoff",
    "channel_order",
    "claim",
    "counts_by_status",
    "failure_reasons",
    "is_routine",
    "oldest_due",
    "progress",
    "queue_deliveries",
    "reclaim_stale",
    "record",
    "renew",
]
