"""Incidents: lifecycle, ETR history, and the delivery ledger."""

from forewarn.incidents.ledger import queue_deliveries
from forewarn.incidents.lifecycle import Changes, Policy, reconcile

__all__ = ["Changes", "Policy", "queue_deliveries", "reconcile"]
