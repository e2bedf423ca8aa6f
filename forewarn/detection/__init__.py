"""Signals become faults: flap damping, reported faults, root cause without a monitor."""

from forewarn.detection.damping import ElementState, Thresholds
from forewarn.detection.rootcause import Fault, detect

__all__ = ["ElementState", "Fault", "Thresholds", "detect"]
