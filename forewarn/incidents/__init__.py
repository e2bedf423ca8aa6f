"""Incidents: lifecycle, ETR history, and the delivery ledger."""

from forewarn.incidents.ledger import queue_deliveries
from forewarn.incidents.matching import Changes, reconcile
from forewarn.incidents.updates import Policy

__all__ = ["Changes", "Policy", "queue_deliveries", "reconcile"]
