"""Coverage-guided fuzzing of the byte-level parsers with atheris (not part of the tests:
run it for as long as you like, e.g. nightly). A parser may read its input or refuse it
with its own error; anything else it raises is a finding, and atheris saves the input.

    pip install atheris
    python bench/fuzz_parsers.py jsonl -atheris_runs=200000
    python bench/fuzz_parsers.py webhook -max_total_time=600
    python bench/fuzz_parsers.py csv -max_total_time=600

It prints the runs per second and the inputs it kept; a crash stops it with the input
written to crash-<hash> in the working directory.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from forewarn.feeds import alertmanager, jsonl
    from forewarn.feeds.safejson import Unreadable, loads
    from forewarn.network.csvfile import CUSTOMER_COLUMNS, CsvFormatError, read_rows

_CSV = Path(tempfile.mkdtemp(prefix="forewarn-fuzz-")) / "customers.csv"
_HEADER = ",".join(CUSTOMER_COLUMNS).encode() + b"\n"


def fuzz_jsonl(data: bytes) -> None:
    """A chunk of the JSON lines feed: every line a signal or a reject."""
    batch = jsonl.parse_lines(data)
    assert len(batch.signals) + len(batch.rejects) <= data.count(b"\n") + 1


def fuzz_webhook(data: bytes) -> None:
    """An Alertmanager webhook body, as the inbox keeps it."""
    alertmanager.parse_webhook(data, ["element", "instance"])


def fuzz_json(data: bytes) -> None:
    """The depth-limited JSON reader every outside body goes through."""
    with contextlib.suppress(Unreadable):
        loads(data)


def fuzz_csv(data: bytes) -> None:
    """A customers CSV after a valid header."""
    _CSV.write_bytes(_HEADER + data)
    try:
        for _ in read_rows(_CSV, CUSTOMER_COLUMNS):
            pass
    except CsvFormatError:
        pass


TARGETS: dict[str, Callable[[bytes], None]] = {
    "jsonl": fuzz_jsonl, "webhook": fuzz_webhook, "json": fuzz_json, "csv": fuzz_csv,
}  # fmt: skip


def main() -> None:
    """Fuzz the parser named first on the command line; the rest goes to atheris."""
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(TARGETS)}}} [libFuzzer options]")
    target = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
