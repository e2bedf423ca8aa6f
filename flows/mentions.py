"""The Prefect entrypoint prefect.yaml names:
the very `mentions` flow that `forewarn serve` runs."""

from forewarn.flows import mentions

__all__ = ["mentions"]
