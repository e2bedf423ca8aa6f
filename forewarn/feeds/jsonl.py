"""JSON lines feed: `{"element": "...", "state": "down|up|degraded", "at": "ISO-8601"}`
from a file (read on from a saved byte offset) or an http(s) URL (read whole)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx
from httpx import USE_CLIENT_DEFAULT

from forewarn.cleantext import credentials_apart
from forewarn.feeds.safejson import Unreadable, loads
from forewarn.feeds.signal import STATES, FeedBatch, Reject, Signal, parse_timestamp

SOURCE = "jsonl"
MAX_LINE_BYTES = 64 * 1024
# One cycle reads at most this much of a file; the rest waits for the next cycle.
MAX_READ_BYTES = 64 * 1024 * 1024


@dataclass(slots=True)
class FileRead:
    """Signals read from a file and the byte offset to continue from next time."""

    batch: FeedBatch
    position: int


def parse_line(line: bytes, line_no: int) -> Signal | Reject:
    """Parse one line into a signal, or a reject that says what is wrong with it."""
    where = f"line {line_no}"
    if len(line) > MAX_LINE_BYTES:
        return Reject.of(SOURCE, f"{where}: longer than {MAX_LINE_BYTES} bytes", line)
    try:
        item = loads(line)
    except Unreadable as err:
        return Reject.of(SOURCE, f"{where}: {err}", line)
    if not isinstance(item, dict):
        return Reject.of(SOURCE, f"{where}: a JSON {type(item).__name__}, not an object", line)
    element, state = item.get("element"), item.get("state")
    if not isinstance(element, str) or not element.strip() or len(element) > 128:
        return Reject.of(SOURCE, f"{where}: 'element' must be a non-empty string", line)
    if state not in STATES:
        return Reject.of(SOURCE, f"{where}: 'state' must be one of down, up, degraded", line)
    try:
        observed = parse_timestamp(item.get("at"))
    except ValueError as err:
        return Reject.of(SOURCE, f"{where}: 'at': {err}", line)
    return Signal(element.strip(), state, observed, SOURCE, item, where)


def parse_lines(data: bytes, first_line_no: int = 1) -> FeedBatch:
    """Parse complete lines; blank lines are skipped, bad ones rejected, the rest kept."""
    batch = FeedBatch()
    for offset, line in enumerate(data.split(b"\n")):
        if not line.strip():
            continue
        outcome = parse_line(line.rstrip(b"\r"), first_line_no + offset)
        if isinstance(outcome, Signal):
            batch.signals.append(outcome)
        else:
            batch.rejects.append(outcome)
    return batch


def read_file(path: Path, position: int) -> FileRead:
    """Read complete lines after byte `position`; a file that shrank is read from the start."""
    size = path.stat().st_size
    if size < position:
        position = 0
    with path.open("rb") as handle:
        handle.seek(position)
        data = handle.read(MAX_READ_BYTES)
    end = data.rfind(b"\n")
    if end < 0:
        if len(data) > MAX_LINE_BYTES:  # one endless line: skip it rather than stall forever
            reject = Reject.of(SOURCE, f"line longer than {MAX_LINE_BYTES} bytes", data)
            return FileRead(FeedBatch(rejects=[reject]), position + len(data))
        return FileRead(FeedBatch(), position)  # a line still being written
    return FileRead(parse_lines(data[: end + 1]), position + end + 1)


def read_url(client: httpx.Client, url: str) -> FeedBatch:
    """Fetch the whole feed; repeats of lines already applied are ignored downstream."""
    chunks: list[bytes] = []
    size = 0
    bare, auth = credentials_apart(url)
    with client.stream("GET", bare, timeout=30, auth=auth or USE_CLIENT_DEFAULT) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > MAX_READ_BYTES:
                raise ValueError(f"feed at {bare} is larger than {MAX_READ_BYTES} bytes")
            chunks.append(chunk)
    return parse_lines(b"".join(chunks))
