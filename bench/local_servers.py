"""Run one of testkit's local servers in its own process, so that it does not share a
core's interpreter lock with the client being measured: `python bench/local_servers.py
twilio|smtp`. Prints its URL; answers "count" on stdin with how many messages it holds."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class ServerProcess:
    """A local server in a child process."""

    def __init__(self, kind: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), kind],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()

    def count(self) -> int:
        """How many messages the server holds."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("count\n")
        self.process.stdin.flush()
        return int(self.process.stdout.readline())

    def arrivals(self) -> tuple[int, float, float]:
        """How many messages arrived, and when the first and the last did (time.time())."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("times\n")
        self.process.stdin.flush()
        count, first, last = self.process.stdout.readline().split()
        return int(count), float(first), float(last)

    def stop(self) -> None:
        """End the server."""
        self.process.kill()
        self.process.wait()


@contextmanager
def server_process(kind: str) -> Iterator[ServerProcess]:
    """A local `twilio` or `smtp` server in a child process, for the duration."""
    server = ServerProcess(kind)
    try:
        yield server
    finally:
        server.stop()


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from testkit.servers import fake_twilio, smtp_server

    kind = sys.argv[1]
    with fake_twilio() if kind == "twilio" else smtp_server() as (url, state):
        print(url, flush=True)
        for line in sys.stdin:
            held = state.messages if kind == "twilio" else state.received
            if line.strip() == "count":
                print(len(held), flush=True)
            elif line.strip() == "times":
                times = state.arrivals or [0.0]
                print(len(held), min(times), max(times), flush=True)


if __name__ == "__main__":
    main()
