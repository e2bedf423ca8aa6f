"""The Prefect entrypoint prefect.yaml names:
the very `follow_up_cycle` flow that `forewarn serve` runs."""

from forewarn.flows import follow_up_cycle

__all__ = ["follow_up_cycle"]
