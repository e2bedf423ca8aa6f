"""Drills: replay a scenario (feed events and ops actions on a timeline) against a
simulated clock, with the same detection, incident, follow-up and dispatch code as
production, and write every message each customer would get, the public page over time,
and a summary. Nothing is sent: every channel is captured.

`scenario` reads the file, `run` replays it, `summary` computes the figures."""

from forewarn.drill.run import Capture, DrillResult, Moment, claim, rehearse, run_drill
from forewarn.drill.scenario import DrillError, Scenario, load_scenario
from forewarn.drill.summary import summarise

__all__ = [
    "Capture",
    "DrillError",
    "DrillResult",
    "Moment",
    "Scenario",
    "claim",
    "load_scenario",
    "rehearse",
    "run_drill",
    "summarise",
]
