"""The Prefect entrypoint prefect.yaml names:
the very `publication` flow that `forewarn serve` runs."""

from forewarn.flows import publication

__all__ = ["publication"]
