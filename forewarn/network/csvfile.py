"""Read the CSV formats of ARCHITECTURE.md one record per line, so a broken row costs
only itself: each problem carries the file, line number and reason."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

TOPOLOGY_COLUMNS = ("element_id", "parent_id", "kind", "name", "lat", "lon")
CUSTOMER_COLUMNS = (
    "customer_id", "premise_id", "element_id", "address", "postcode", "lat", "lon",
    "phone", "email", "social", "channels", "locale", "timezone", "priority",
)  # fmt: skip
MAX_LINE_CHARS = 8192


@dataclass(frozen=True, slots=True)
class Problem:
    """A row that was skipped (or kept with a warning), and why."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


class CsvFormatError(ValueError):
    """The file as a whole cannot be read (missing columns, not UTF-8 text)."""


def read_rows(path: Path, columns: Sequence[str]) -> Iterator[tuple[int, dict[str, str]] | Problem]:
    """Yield (line number, row) for each good record and a Problem for each bad one."""
    name = path.name
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        try:
            header_line = handle.readline()
        except UnicodeDecodeError:
            raise CsvFormatError(f"{name}: not UTF-8 text") from None
        header = [h.strip() for h in _split(header_line.rstrip("\r\n"))]
        missing = [c for c in columns if c not in header]
        if missing:
            raise CsvFormatError(f"{name}: missing columns {', '.join(missing)}")
        positions = [header.index(c) for c in columns]
        in_order = positions == list(range(len(columns)))  # the usual case: no picking
        width = len(header)
        split = _Splitter()
        line_no = 1
        while True:
            line_no += 1
            try:
                line = handle.readline()
            except UnicodeDecodeError:
                # the rest of the file cannot be decoded reliably
                yield Problem(name, line_no, "not UTF-8 text; stopped reading this file here")
                return
            if not line:
                return
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            if len(line) > MAX_LINE_CHARS:
                yield Problem(name, line_no, f"line longer than {MAX_LINE_CHARS} characters")
                continue
            try:
                fields = split(line)
            except csv.Error as err:
                yield Problem(name, line_no, f"broken CSV quoting: {err}")
                continue
            if len(fields) != width:
                yield Problem(name, line_no, f"expected {width} fields, found {len(fields)}")
                continue
            picked = fields if in_order else [fields[p] for p in positions]
            yield line_no, dict(zip(columns, map(str.strip, picked), strict=False))


def _split(line: str) -> list[str]:
    return next(csv.reader([line], strict=True))


class _Splitter:
    """Splits one line at a time through one csv reader: a reader per line costs more
    than the parsing. The reader asks its feed for a second line only when a quoted field
    runs past the end of the first, and then finds none: "unexpected end of data", so a
    broken line costs only itself, as with a reader of its own."""

    def __init__(self) -> None:
        self._line: str | None = None
        self._reader = csv.reader(self, strict=True)

    def __iter__(self) -> _Splitter:
        return self

    def __next__(self) -> str:
        line, self._line = self._line, None
        if line is None:
            raise StopIteration
        return line

    def __call__(self, line: str) -> list[str]:
        if '"' not in line:
            return line.split(",")  # the common case, and much faster than the csv module
        self._line = line
        return next(self._reader)


def write_rows(path: Path, columns: Sequence[str], rows: Iterator[Sequence[object]]) -> None:
    """Write a CSV file with a header (used by the demo and the benchmark generator)."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
