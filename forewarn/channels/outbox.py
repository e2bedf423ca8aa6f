"""The local outbox: a channel with no credentials writes each message, as it would have
been sent, as one JSON line in `<outbox>/<channel>.jsonl`."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from forewarn.channels.base import (
    Done,
    Held,
    Message,
    Outcome,
    Result,
    Sending,
    always,
    ignore,
    unsent,
)


class OutboxSender(Sending):
    """Appends a channel's messages to `<directory>/<channel>.jsonl`, fsynced once per
    batch (no rate: nothing leaves the machine)."""

    def __init__(self, directory: Path, channel: str) -> None:
        self.channel = channel
        self.path = directory / f"{channel}.jsonl"

    def __repr__(self) -> str:
        return f"OutboxSender({str(self.path)!r})"

    def send(
        self, messages: Sequence[Message], done: Done = ignore, held: Held = always
    ) -> list[Result]:
        """Write what the claim still holds in one go, then say so: its outcomes are
        told once the lines are on disk (fsynced), and a disk error fails the batch as
        retryable. The one sequence that pays a provider's rate per request has nothing
        to do here, where the batch is a single write."""
        going = [m for m in messages if held()]
        try:
            self._write(going)
        except OSError as err:
            detail = f"outbox write failed: {err.strerror}"
            return [Result(m.delivery_id, Outcome.RETRYABLE, detail) for m in messages]
        written = {m.delivery_id for m in going}
        results = [
            Result(m.delivery_id, Outcome.DELIVERED, f"outbox {self.path}")
            if m.delivery_id in written
            else unsent(m)
            for m in messages
        ]
        for result in results:
            done(result)
        return results

    def _write(self, messages: Sequence[Message]) -> None:
        lines = []
        for message in messages:
            record = {
                k: v
                for k, v in asdict(message).items()
                if v is not None and k not in ("claimed_at", "reply_to")
            }
            lines.append(json.dumps(record, ensure_ascii=False) + "\n")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a+", encoding="utf-8") as handle:
            if _ends_mid_line(self.path):
                handle.write("\n")  # close a line a crash cut short
            handle.writelines(lines)
            handle.flush()
            os.fsync(handle.fileno())

    def reconcile(self, messages: Sequence[Message]) -> list[Result | None]:
        """A message is in the outbox if a complete line carries its ledger id."""
        wanted = {m.delivery_id for m in messages}
        found: set[int] = set()
        try:
            with self.path.open(encoding="utf-8") as handle:
                for line in handle:
                    # A line cut short by a crash was never written.
                    try:
                        record = json.loads(line) if line.endswith("\n") else {}
                    except json.JSONDecodeError:
                        continue
                    if record.get("delivery_id") in wanted:
                        found.add(record["delivery_id"])
        except FileNotFoundError:
            pass
        return [
            Result(m.delivery_id, Outcome.DELIVERED, "found in outbox")
            if m.delivery_id in found
            else None
            for m in messages
        ]


def _ends_mid_line(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell() == 0:
            return False
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) != b"\n"
