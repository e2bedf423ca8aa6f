"""Read the CSV formats of ARCHITECTURE.md one record per line, so a broken row costs
only itself: each problem carries the file, line number and reason."""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from forewarn.cleantext import clean

TOPOLOGY_COLUMNS = ("element_id", "parent_id", "kind", "name", "lat", "lon")
CUSTOMER_COLUMNS = (
    "customer_id", "premise_id", "element_id", "address", "postcode", "lat", "lon",
    "phone", "email", "social", "channels", "locale", "timezone", "priority",
)  # fmt: skip
# Read when the file has them, empty when it has not (files written before they existed).
CUSTOMER_OPTIONAL = ("needs",)
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


# What a CSV that is not UTF-8 most likely is: a spreadsheet's or CRM's export on Windows.
LIKELY_EXPORT = "cp1252"


def read_rows(
    path: Path,
    columns: Sequence[str],
    encoding: str | None = None,
    optional: Sequence[str] = (),
) -> Iterator[tuple[int, dict[str, str]] | Problem]:
    """Yield (line number, row) for each good record and a Problem for each bad one; the
    `optional` columns the header lacks are not in any row (a file without a column says
    nothing of it: what the store holds stays).

    Each line is decoded on its own, so a byte that is not text costs only its line.
    With no `encoding`, the file is UTF-8 until a line says otherwise: if the first line
    with any non-ASCII byte is not UTF-8, the file is read as Windows-1252 (said once, as
    a Problem on that line); later lines that still fail are refused alone."""
    name = path.name
    decoder = _Decoder(name, encoding)
    with path.open("rb") as handle:
        lines = _lines(handle)
        header_line, notice = decoder.header(next(lines, b""))
        if notice is not None:
            yield notice
        try:
            header = [h.strip() for h in _split(header_line)]
        except (csv.Error, StopIteration):
            raise CsvFormatError(f"{name}: the first line is not a CSV header") from None
        missing = [c for c in columns if c not in header]
        if missing:
            raise CsvFormatError(f"{name}: missing columns {', '.join(missing)}")
        columns = [*columns, *(c for c in optional if c in header)]
        positions = [header.index(c) for c in columns]
        in_order = positions == list(range(len(columns)))  # the usual case: no picking
        width = len(header)
        split = _Splitter()
        for line_no, raw in enumerate(lines, start=2):
            if len(raw) > MAX_LINE_CHARS * 4:  # no decoding a line that is refused anyway
                yield Problem(name, line_no, f"line longer than {MAX_LINE_CHARS} characters")
                continue
            decoded, problem = decoder.line(raw, line_no)
            if problem is not None:
                yield problem
            if decoded is None:
                continue
            line = decoded
            if not line.isprintable():  # a control or bidi character: names reach the public
                line = clean(line)
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
            row = dict(zip(columns, map(str.strip, picked), strict=False))
            yield line_no, row


class _Decoder:
    """Decodes a CSV line by line, settling which encoding the file is in (see read_rows)."""

    def __init__(self, name: str, encoding: str | None) -> None:
        self.name = name
        self.encoding = encoding or "utf-8"
        self.settled = encoding is not None
        if encoding is not None:
            try:
                codecs.lookup(encoding)
            except LookupError:
                raise CsvFormatError(f"unknown encoding {encoding!r}") from None

    def header(self, raw: bytes) -> tuple[str, Problem | None]:
        """The header line as text (a UTF-8 byte order mark dropped), and the notice that
        the file is read as Windows-1252, if its header already says so."""
        if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise CsvFormatError(
                f"{self.name}: not UTF-8 but UTF-16 text; save it as CSV (UTF-8) and import again"
            )
        if b"\x00" in raw:
            raise CsvFormatError(f"{self.name}: not UTF-8 text (it holds NUL bytes)")
        if raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
            self.encoding, self.settled = "utf-8", True
        text, notice = self.line(raw, 1)
        if text is None:
            raise CsvFormatError(f"{self.name}: the header is not {self.encoding} text")
        return text, notice

    def line(self, raw: bytes, line_no: int) -> tuple[str | None, Problem | None]:
        """The line as text (None: refused), and the Problem to report, if any."""
        if raw.isascii():
            return raw.decode("ascii"), None
        notice = None
        try:
            text = raw.decode(self.encoding)
        except UnicodeDecodeError as err:
            if self.settled:
                return None, self._refused(raw, err, line_no)
            self.encoding = LIKELY_EXPORT
            notice = Problem(
                self.name, line_no,
                f"not UTF-8 (byte 0x{raw[err.start]:02x}): the file is read as "
                f"Windows-1252 from here; use --encoding to say otherwise",
            )  # fmt: skip
            try:
                text = raw.decode(self.encoding)
            except UnicodeDecodeError as again:  # five bytes mean nothing in Windows-1252
                self.settled = True
                return None, self._refused(raw, again, line_no)
        self.settled = True
        return text, notice

    def _refused(self, raw: bytes, err: UnicodeDecodeError, line_no: int) -> Problem:
        reason = f"not {self.encoding} text (byte 0x{raw[err.start]:02x}); row skipped"
        return Problem(self.name, line_no, reason)


def _lines(handle: BinaryIO) -> Iterator[bytes]:
    """The file's lines without their ends: \n, \r\n, or a lone \r (Excel's "CSV
    (Macintosh)" and other old exports end lines that way)."""
    for raw in handle:
        line = raw.rstrip(b"\r\n")
        if b"\r" in line:
            yield from line.split(b"\r")
        else:
            yield line


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
