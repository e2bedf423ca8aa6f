"""The delivery ledger: the queue (one row per incident, update, customer and channel,
written before anything is sent) and its state machine (claim, reclaim, record), which
hands the channels typed `DueDelivery` values."""

from forewarn.incidents.ledger.claims import (
    MAX_ATTEMPTS,
    UNCAPPED,
    Check,
    Claimed,
    Compose,
    Reclaimed,
    Recorded,
    Rules,
    Told,
    backoff,
    claim,
    reclaim_stale,
    record,
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

__all__ = [
    "MAX_ATTEMPTS",
    "PUBLIC",
    "UNCAPPED",
    "Attempt",
    "Check",
    "Claimed",
    "Compose",
    "DueDelivery",
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
    "oldest_due",
    "progress",
    "queue_deliveries",
    "reclaim_stale",
    "record",
]
