"""A per-process journal of outcomes, written the moment a provider answers.

The ledger records a batch's outcomes in one transaction at the end, so a worker killed
mid-batch leaves rows in `sending` that were in fact sent. Each outcome is also appended
here, one line per message, as it happens (a write the kernel keeps even if the process
is killed; no fsync, so an OS crash can lose it, and then the provider is asked instead).
On restart, in-flight rows are first looked up here, then with the provider.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from forewarn.channels.base import Outcome, Result

# Journals of processes that ended long ago hold nothing still in flight.
KEEP_SECONDS = 2 * 24 * 3600


class Journal:
    """Appends outcomes to `<directory>/journal-<pid>-<start>.jsonl`; reads every journal."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / f"journal-{os.getpid()}-{time.time_ns()}.jsonl"
        self._lock = threading.Lock()
        self._handle: int | None = None

    def record(self, result: Result) -> None:
        """Write one outcome now (called from the sending threads)."""
        line = json.dumps(
            {"id": result.delivery_id, "outcome": result.outcome.value, "ref": result.ref,
             "detail": result.detail[:300]}
        ) + "\n"  # fmt: skip
        with self._lock:
            if self._handle is None:
                self.directory.mkdir(parents=True, exist_ok=True)
                self._prune()
                self._handle = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.write(self._handle, line.encode())

    def find(self, delivery_ids: Iterable[int]) -> dict[int, Result]:
        """The last recorded outcome of each of these deliveries, from every journal here."""
        wanted = set(delivery_ids)
        found: dict[int, Result] = {}
        if not wanted or not self.directory.exists():
            return found
        for path in sorted(self.directory.glob("journal-*.jsonl")):
            with path.open(encoding="utf-8") as handle:
                for line in handle:
                    try:
                        entry = json.loads(line)
                        delivery_id = int(entry["id"])
                        outcome = Outcome(entry["outcome"])
                    except (ValueError, KeyError, TypeError):
                        continue  # a line cut short when the process was killed
                    if delivery_id in wanted:
                        found[delivery_id] = Result(
                            delivery_id, outcome, str(entry.get("detail", "")), entry.get("ref")
                        )
        return found

    def _prune(self) -> None:
        cutoff = time.time() - KEEP_SECONDS
        for path in self.directory.glob("journal-*.jsonl"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
            except FileNotFoundError:
                continue
