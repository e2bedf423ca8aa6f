"""The local outbox: a channel with no credentials writes each message, as it would have
been sent, as one JSON line in `<outbox>/<channel>.jsonl`."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from forewarn.notifiers.base import Message, Outcome, Result


class Notifier:
    """Appends messages to `<directory>/<channel>.jsonl`, fsynced once per batch."""

    def __init__(self, directory: Path, channel: str) -> None:
        self.channel = channel
        self.path = directory / f"{channel}.jsonl"

    def send(self, messages: Sequence[Message]) -> list[Result]:
        """Write the batch; a disk error fails the whole batch as retryable."""
        lines = []
        for message in messages:
            record = {k: v for k, v in asdict(message).items() if v is not None}
            lines.append(json.dumps(record, ensure_ascii=False) + "\n")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.writelines(lines)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as err:
            detail = f"outbox write failed: {err.strerror}"
            return [Result(m.delivery_id, Outcome.RETRYABLE, detail) for m in messages]
        return [Result(m.delivery_id, Outcome.DELIVERED, f"outbox {self.path}") for m in messages]
