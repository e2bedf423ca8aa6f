"""The Prefect entrypoint prefect.yaml names:
the very `detection_cycle` flow that `forewarn serve` runs."""

from forewarn.flows import detection_cycle

__all__ = ["detection_cycle"]
