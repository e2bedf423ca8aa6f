"""The Prefect entrypoint prefect.yaml names:
the very `dispatch` flow that `forewarn serve` runs."""

from forewarn.flows import dispatch

__all__ = ["dispatch"]
