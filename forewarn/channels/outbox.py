"""The local outbox: a channel with no credentials writes each message, as it would have
been sent, as one JSON line in `<outbox>/<channel>.jsonl`."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import IO

from forewarn.channels.base import Message, Outcome, Result, Sending, Session

logger = logging.getLogger("forewarn.outbox")


class OutboxSender(Sending):
    """Appends a channel's messages to `<directory>/<channel>.jsonl`, as fast as the disk
    takes them (no rate: nothing leaves the machine)."""

    def __init__(self, directory: Path, channel: str) -> None:
        self.channel = channel
        self.path = directory / f"{channel}.jsonl"

    def __repr__(self) -> str:
        return f"OutboxSender({str(self.path)!r})"

    def session(self) -> Session:
        """The file, opened for this batch."""
        return Lines(self.path)

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


class Lines:
    """One batch's lines: each flushed to the system as it is written (a killed worker
    loses none), the file fsynced once when the batch is done."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: IO[str] | None = None
        self.failed: str | None = None

    def refuse(self, message: Message) -> Result | None:
        """Nothing goes while the file cannot be opened."""
        if self.handle is None and self.failed is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.handle = self.path.open("a+", encoding="utf-8")
                if _ends_mid_line(self.path):
                    self.handle.write("\n")  # close a line a crash cut short
            except OSError as err:
                self.failed = f"outbox write failed: {err.strerror}"
        if self.failed is not None:
            return Result(message.delivery_id, Outcome.RETRYABLE, self.failed)
        return None

    def send(self, message: Message) -> Result:
        """Write the message as it would have been sent."""
        assert self.handle is not None  # refuse() opened it
        record = {
            k: v
            for k, v in asdict(message).items()
            if v is not None and k not in ("claimed_at", "reply_to")
        }
        try:
            self.handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            self.handle.flush()
        except OSError as err:
            detail = f"outbox write failed: {err.strerror}"
            return Result(message.delivery_id, Outcome.RETRYABLE, detail)
        return Result(message.delivery_id, Outcome.DELIVERED, f"outbox {self.path}")

    def close(self) -> None:
        """Make the batch's lines durable and close the file."""
        handle, self.handle = self.handle, None
        if handle is None:
            return
        try:
            os.fsync(handle.fileno())
        except OSError as err:
            # The lines reached the system (flushed): only a power cut could lose them.
            logger.warning("outbox %s not synced: %s", self.path, err.strerror)
        finally:
            handle.close()


def _ends_mid_line(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell() == 0:
            return False
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) != b"\n"
