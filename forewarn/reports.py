"""What the pipeline's steps report: a delivery run, what the feeds said, a cycle, a
follow-up pass; for the CLI, the demo, the drills and the logs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from forewarn.detection.run import Detection
from forewarn.incidents import Changes
from forewarn.incidents.conversation import FollowUps
from forewarn.incidents.ledger.waiting import Waiting
from forewarn.notifiers.delivery import BatchReport


@dataclass(slots=True)
class DeliveryReport(BatchReport):
    """What the batches of one delivery run did, added up, and (for a command that prints
    it, `note_waiting`) what the ledger still holds back once the run has settled."""

    batches: int = 0
    waiting: list[Waiting] = field(default_factory=list)

    @property
    def waiting_count(self) -> int:
        """Deliveries still queued after the run, whatever the reason."""
        return sum(w.count for w in self.waiting)

    def merge(self, other: DeliveryReport) -> None:
        """Add another run's batches and counts to this one."""
        self.batches += other.batches
        self.add(other)


@dataclass(slots=True)
class Sensed:
    """What the feeds (or a drill's script) said, and the faults it makes."""

    detection: Detection
    signals: int = 0
    rejects: int = 0
    feed_errors: list[str] = field(default_factory=list)


@dataclass(slots=True)
class CycleReport:
    """What one cycle saw and did, for the CLI, the demo and the logs."""

    now: datetime
    sensed: Sensed = field(default_factory=lambda: Sensed(Detection()))
    changes: Changes = field(default_factory=Changes)
    queued: int = 0
    dispatch: DeliveryReport = field(default_factory=DeliveryReport)
    site: str = ""

    @property
    def detection(self) -> Detection:
        """The faults, and what is still within damping."""
        return self.sensed.detection

    @property
    def signals(self) -> int:
        """Signals read."""
        return self.sensed.signals

    @property
    def rejects(self) -> int:
        """Input rejected (and quarantined)."""
        return self.sensed.rejects

    @property
    def feed_errors(self) -> list[str]:
        """Feeds that could not be read."""
        return self.sensed.feed_errors


@dataclass(slots=True)
class FollowedUp(FollowUps):
    """What one follow-up pass changed, and what sending its messages did (None: it
    changed nothing, so nothing was sent)."""

    dispatch: DeliveryReport | None = None
