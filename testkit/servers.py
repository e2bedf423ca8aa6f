"""Local stand-ins that keep state, for the tests and the benchmarks: a Twilio-compatible
Messages and Calls API and an SMTP mailbox (aiosmtpd). Loopback only."""

from __future__ import annotations

import email
import email.policy
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller

# Twilio's documented magic numbers for test credentials: this one is invalid (21211),
# and this one has replied STOP (21610).
INVALID_NUMBER = "+15005550001"
OPTED_OUT_NUMBER = "+15005550004"
# What the fake Twilio answers under /2010-04-01/Accounts/{sid}/.
RESOURCES = ("Messages.json", "Calls.json")


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class TwilioState:
    """What the fake Twilio has accepted, in order, and what it should do next."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    # Calls placed, in order (their TwiML under "twiml").
    calls: list[dict[str, Any]] = field(default_factory=list)
    # When each message arrived (time.time()), for the end-to-end benchmark.
    arrivals: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Status codes to answer the next creates with (e.g. [429, 503]), then 201 again.
    fail_next: list[int] = field(default_factory=list)

    def bodies(self) -> Counter[tuple[str, str]]:
        """How many times each (to, body) arrived."""
        with self.lock:
            return Counter((m["to"], m["body"]) for m in self.messages)


def _twilio_handler(state: TwilioState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Without this every keep-alive response waits about 40 ms for a delayed ACK.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, payload: object) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _account(self) -> str | None:
            parts = urlsplit(self.path).path.split("/")
            # /2010-04-01/Accounts/{sid}/Messages.json (or Calls.json)
            if len(parts) == 5 and parts[2] == "Accounts" and parts[4] in RESOURCES:
                return parts[3]
            return None

        def _calls(self) -> bool:
            return urlsplit(self.path).path.endswith("/Calls.json")

        def _place(self, account: str, form: dict[str, str]) -> None:
            now = format_datetime(datetime.now(UTC))
            with state.lock:
                sid = f"CA{len(state.calls):032x}"
                record = {
                    "sid": sid,
                    "account_sid": account,
                    "to": form.get("To", ""),
                    "from": form.get("From"),
                    "twiml": form.get("Twiml", ""),
                    "status": "queued",
                    "date_created": now,
                    "date_updated": now,
                    "start_time": None,
                    "direction": "outbound-api",
                    "uri": f"/2010-04-01/Accounts/{account}/Calls/{sid}.json",
                    "status_callback": form.get("StatusCallback"),
                }
                state.calls.append(record)
                state.arrivals.append(time.time())
            self._answer(201, record)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            account = self._account()
            if account is None or not self.headers.get("Authorization"):
                self._answer(401 if account else 404, {"code": 20003, "status": 401})
                return
            to = form.get("To", "")
            with state.lock:
                status = state.fail_next.pop(0) if state.fail_next else 201
            if status != 201:
                self._answer(status, {"code": 20429 if status == 429 else 20500, "status": status})
                return
            if to == INVALID_NUMBER:
                message = f"The 'To' number {to} is not a valid phone number."
                self._answer(400, {"code": 21211, "message": message, "status": 400})
                return
            if to == OPTED_OUT_NUMBER:
                message = "Attempt to send to unsubscribed recipient"
                self._answer(400, {"code": 21610, "message": message, "status": 400})
                return
            if self._calls():
                self._place(account, form)
                return
            now = format_datetime(datetime.now(UTC))
            with state.lock:
                sid = f"SM{len(state.messages):032x}"
                record = {
                    "sid": sid,
                    "account_sid": account,
                    "to": to,
                    "from": form.get("From") or form.get("MessagingServiceSid"),
                    "body": form.get("Body", ""),
                    "status": "queued",
                    "date_created": now,
                    "date_updated": now,
                    "date_sent": None,
                    "num_segments": "1",
                    "direction": "outbound-api",
                    "uri": f"/2010-04-01/Accounts/{account}/Messages/{sid}.json",
                    "validity_period": form.get("ValidityPeriod"),
                    "status_callback": form.get("StatusCallback"),
                }
                state.messages.append(record)
                state.arrivals.append(time.time())
            self._answer(201, record)

        def do_GET(self) -> None:
            account = self._account()
            if account is None:
                self._answer(404, {"code": 20404, "status": 404})
                return
            query = parse_qs(urlsplit(self.path).query)
            to = query.get("To", [None])[0]
            size = int(query.get("PageSize", ["50"])[0])
            kind = "calls" if self._calls() else "messages"
            with state.lock:
                kept = state.calls if kind == "calls" else state.messages
                found = [m for m in reversed(kept) if to is None or m["to"] == to]
            page = {
                kind: found[:size],
                "page": 0,
                "page_size": size,
                "next_page_uri": None,
                "uri": self.path,
                "first_page_uri": self.path,
                "previous_page_uri": None,
                "start": 0,
                "end": min(size, len(found)),
            }
            self._answer(200, page)

    return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client killed mid-request (the crash trials) resets its connection: expected.
        pass


@contextmanager
def fake_twilio() -> Iterator[tuple[str, TwilioState]]:
    """A stateful Twilio Messages API on loopback; yields its base URL and its state."""
    state = TwilioState()
    server = _QuietServer(("127.0.0.1", free_port()), _twilio_handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Mailbox:
    """Every message the SMTP server accepted, and replies it is told to give."""

    received: list[EmailMessage] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Recipient address -> SMTP reply to give instead of accepting (e.g. "550 5.1.1 no").
    refuse: dict[str, str] = field(default_factory=dict)

    def by_message_id(self) -> Counter[str]:
        """How many copies of each Message-ID arrived (a mail system keeps one)."""
        with self.lock:
            return Counter(str(m["Message-ID"]) for m in self.received)


class _Handler:
    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        refusal = self.mailbox.refuse.get(address)
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.mailbox.lock:
            self.mailbox.received.append(parsed)
            self.mailbox.arrivals.append(time.time())
        return "250 Message accepted for delivery"


@contextmanager
def smtp_server() -> Iterator[tuple[str, Mailbox]]:
    """A real SMTP server (aiosmtpd) on loopback; yields its smtp:// URL and its mailbox."""
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(_Handler(mailbox), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}", mailbox
    finally:
        controller.stop()


# --- a geocoder ----------------------------------------------------------------


class FakeNominatim(BaseHTTPRequestHandler):
    """Answers /search like Nominatim's JSON format; counts the requests."""

    requests: list[str] = []  # noqa: RUF012
    # Where every address is (a test may move it); "Nowhere" is not found.
    answer: tuple[float, float] = (52.2051, 0.1218)

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query).get("q", [""])[0]
        FakeNominatim.requests.append(query)
        if not urlsplit(self.path).path.endswith("/search"):
            self.send_error(404)
            return
        found = [] if "Nowhere" in query else [
            {"lat": str(FakeNominatim.answer[0]), "lon": str(FakeNominatim.answer[1]),
             "display_name": query, "place_id": 1,
             "boundingbox": ["52.2", "52.3", "0.1", "0.2"], "class": "place", "type": "house"}
        ]  # fmt: skip
        body = json.dumps(found).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def nominatim_server() -> Iterator[str]:
    """A Nominatim-compatible geocoder on loopback; yields its base URL."""
    FakeNominatim.requests = []
    FakeNominatim.answer = (52.2051, 0.1218)
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeNominatim)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


# --- PostgreSQL -------------------------------------------------------------------

POSTGRES_BINARIES = Path("/usr/lib/postgresql/15/bin")


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """A PostgreSQL cluster of Debian's binaries on a loopback port, gone afterwards;
    yields its URL without a database name (durability off: it is thrown away)."""
    # Not under pytest's tmp dir: that is private to root, and the server runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="forewarn-pg-"))
    data, port = root / "data", free_port()
    as_postgres = [] if os.getuid() != 0 else ["runuser", "-u", "postgres", "--"]
    if as_postgres:
        shutil.chown(root, "postgres")
    subprocess.run(
        [*as_postgres, str(POSTGRES_BINARIES / "initdb"), "-D", str(data), "-U", "postgres",
         "--auth=trust"], check=True, capture_output=True,
    )  # fmt: skip
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off"
    pg_ctl = [*as_postgres, str(POSTGRES_BINARIES / "pg_ctl"), "-D", str(data)]
    # The server must not hold our pipes open: its log goes to a file.
    subprocess.run(
        [*pg_ctl, "-o", options, "-l", str(root / "server.log"), "-w", "start"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
