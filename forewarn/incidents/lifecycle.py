"""Kept for `forewarn.status_page`, which imports `rounded` from here: the lifecycle is
split into matching.py (faults to incidents), restoration.py (resolve, cases) and
updates.py (numbered updates). New code imports from those."""

from forewarn.incidents.updates import rounded

__all__ = ["rounded"]
