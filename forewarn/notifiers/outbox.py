"""The local outbox: a channel with no credentials writes each message, as it would have
been sent, as one JSON line in `<outbox>/<channel>.jsonl`."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from forewarn.notifiers.base import Done, Held, Message, Outcome, Result, always, ignore, unsent


class Notifier:
    """Appends messages to `<directory>/<channel>.jsonl`, fsynced once per batch."""

    def __init__(self, directory: Path, channel: str) -> None:
        self.channel = channel
        self.path = directory / f"{channel}.jsonl"

    def send(
        self, messages: Sequence[Message], done: Done = ignore, held: Held = always
    ) -> list[Result]:
        """Write the batch in one go (if `held`); a disk error fails the whole batch as
        retryable."""
        if not held():
            return [unsent(m) for m in messages]
        lines = []
        for message in messages:
            record = {
                k: v
                for k, v in asdict(message).items()
                if v is not None and k not in ("claimed_at", "reply_to")
            }
            lines.append(json.dumps(record, ensure_ascii=False) + "\n")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a+", encoding="utf-8") as handle:
                if _ends_mid_line(self.path):
                    handle.write("\n")  # close a line a crash cut short
                handle.writelines(lines)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as err:
            detail = f"outbox write failed: {err.strerror}"
            return [Result(m.delivery_id, Outcome.RETRYABLE, detail) for m in messages]
        results = [
            Result(m.delivery_id, Outcome.DELIVERED, f"outbox {self.path}") for m in messages
        ]
        for result in results:
            done(result)
        return results

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
