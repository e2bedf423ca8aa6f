"""No input stops the pipeline (issue 19): each reproduction of the hostile tester's, and
after each one a real fault is still detected and its customers told in the next cycle."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from typer.testing import CliRunner

from forewarn import cli
from forewarn.channels.unsubscribe import sign
from forewarn.config import Settings
from forewarn.context import Context
from forewarn.feeds import inbox as feed_inbox
from forewarn.feeds.inbox import quarantine_rejects, store_payload
from forewarn.feeds.signal import Reject
from forewarn.network import import_network
from forewarn.network.csvfile import CUSTOMER_COLUMNS
from forewarn.receiver import create_app
from forewarn.receiver_io import WritePool
from forewarn.store import customers, inbox, quarantine, replies, secret_key
from tests import twilio_hooks
from tests.conftest import NOW, run_cycle, serving
from tests.town import CABINETS, Town, customer_rows, report_cabinet
from tests.twilio_hooks import signed

TOKEN = "s3cret-token"
PHONE_39 = "+447911123039"


def outbox(settings: Settings) -> list[dict[str, Any]]:
    """Every message written to the outbox so far."""
    return [
        json.loads(line)
        for path in sorted(settings.outbox.glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]


def told_of_a_new_fault(ctx: Context, settings: Settings, at: datetime) -> set[str]:
    """Cabinet A goes down at `at`; the customers the cycle after damping tells."""
    before = {m["customer_id"] for m in outbox(settings) if "customer_id" in m}
    report_cabinet(settings.jsonl_feed, "cabA", "down", at)
    report = run_cycle(ctx, at + timedelta(minutes=3))
    assert "cabA" in [f.root for f in report.detection.faults]
    return {m["customer_id"] for m in outbox(settings) if "customer_id" in m} - before


def webhook(*alerts: object) -> bytes:
    return json.dumps({"version": "4", "status": "firing", "alerts": list(alerts)}).encode()


def alert(element: str, status: str = "firing", **extra: object) -> dict[str, object]:
    return {
        "status": status, "labels": {"alertname": "Down", "element": element},
        "startsAt": "2026-11-23T13:50:00Z",
        "endsAt": "2026-11-23T13:58:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "fingerprint": f"fp-{element}", **extra,
    }  # fmt: skip


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


POISON_WEBHOOKS = {
    "resolved-startsAt-object": webhook(alert("cpe47", "resolved", startsAt={"a": [1]})),
    "fingerprint-list": webhook(alert("cpe47", fingerprint=["x"])),
    "fingerprint-object-resolved": webhook(alert("cpe47", "resolved", fingerprint={"a": 1})),
    "alerts-nested-deep": b'{"alerts": ' + nested(20_000).encode() + b"}",
    "huge-integer": b'{"alerts": [{"labels": {"element": "cpe47"}, "x": ' + b"9" * 5000 + b"}]}",
}


@pytest.mark.parametrize("body", POISON_WEBHOOKS.values(), ids=POISON_WEBHOOKS.keys())
def test_a_stored_poison_webhook_is_quarantined_once_and_detection_goes_on(
    town: Town, settings: Settings, body: bytes
) -> None:
    # Stored as it was by the receiver before it checked any of this.
    with town.engine.begin() as conn:
        store_payload(conn, "alertmanager", body, NOW)
    ctx = Context.build(settings)
    first = run_cycle(ctx, NOW)
    assert first.rejects >= 1
    again = run_cycle(ctx, NOW + timedelta(seconds=30))
    assert again.rejects == 0  # read once, not retried for ever
    with town.engine.connect() as conn:
        assert conn.execute(select(inbox.c.processed_at)).scalar_one() is not None
        assert conn.execute(select(func.count()).select_from(quarantine)).scalar_one() >= 1
    told = told_of_a_new_fault(ctx, settings, NOW + timedelta(minutes=1))
    assert told == {f"c{n}" for n in CABINETS["cabA"]}
    ctx.close()


FEED_POISON = {
    "nested-20000": nested(20_000),
    "nested-object": '{"a":' * 5000 + "1" + "}" * 5000,
    "huge-integer": '{"element": "cpe47", "state": "down", "at": ' + "9" * 5000 + "}",
    "not-utf8": '{"element": "caf\udce9"}',
    "nul": '{"element": "cpe47\\u0000", "state": "down", "at": "2026-11-23T14:00:00Z"}',
}


@pytest.mark.parametrize("line", FEED_POISON.values(), ids=FEED_POISON.keys())
def test_a_poison_feed_line_is_quarantined_and_detection_goes_on(
    town: Town, settings: Settings, line: str
) -> None:
    assert settings.jsonl_feed is not None
    with Path(settings.jsonl_feed).open("wb") as handle:
        handle.write(line.encode("utf-8", "surrogateescape") + b"\n")
    ctx = Context.build(settings)
    assert run_cycle(ctx, NOW).rejects == 1
    assert run_cycle(ctx, NOW + timedelta(seconds=30)).rejects == 0
    told = told_of_a_new_fault(ctx, settings, NOW + timedelta(minutes=1))
    assert told == {f"c{n}" for n in CABINETS["cabA"]}
    ctx.close()


def test_a_signal_dated_in_the_future_is_refused_and_cannot_jam_its_element(
    town: Town, settings: Settings
) -> None:
    assert settings.jsonl_feed is not None
    with Path(settings.jsonl_feed).open("a") as handle:
        handle.write('{"element": "cpe41", "state": "up", "at": "2030-01-01T00:00:00Z"}\n')
    ctx = Context.build(settings)
    report = run_cycle(ctx, NOW)
    assert report.rejects == 1
    with town.engine.connect() as conn:
        reason = conn.execute(select(quarantine.c.reason)).scalar_one()
    assert "2030-01-01 00:00:00 UTC, more than 5 minutes ahead of our clock" in reason
    # cpe41 is behind cabinet A: it goes down with the rest, and is told with the rest.
    told = told_of_a_new_fault(ctx, settings, NOW + timedelta(minutes=1))
    assert "c41" in told
    ctx.close()


def test_a_future_observation_stored_before_the_fix_no_longer_holds_damping(
    town: Town, settings: Settings
) -> None:
    from forewarn.detection import states

    ctx = Context.build(settings)
    # As an older forewarn stored it: cpe41 "up", observed in 2030.
    with town.engine.begin() as conn:
        from forewarn.detection.damping import ElementState

        jammed = datetime(2030, 1, 1, tzinfo=NOW.tzinfo)
        stored = {"cpe41": ElementState("cpe41", "degraded", jammed, jammed, "jsonl")}
        states.save(conn, stored, {"cpe41"}, set())
    report_cabinet(settings.jsonl_feed, "cabA", "down", NOW)
    run_cycle(ctx, NOW + timedelta(minutes=3))
    with town.engine.connect() as conn:
        now_known = states.load(conn)["cpe41"]
    assert now_known.state == "down" and now_known.confirmed
    ctx.close()


# --- the receiver --------------------------------------------------------------------


@pytest.fixture
def receiver(town: Town) -> Iterator[httpx.Client]:
    with town.engine.begin() as conn:
        key = secret_key(conn, "unsubscribe")
    twilio = twilio_hooks.hooks()
    app = create_app(
        town.engine, TOKEN, 1_000_000, clock=lambda: NOW, twilio=twilio, unsubscribe_key=key
    )
    with serving(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http


DEEP_BODIES = {
    "alerts": b'{"alerts": ' + nested(5000).encode() + b"}",
    "top-level-list": nested(5000).encode(),
    "object": ('{"a":' * 5000 + "1" + "}" * 5000).encode(),
    "inside-an-alert": webhook(alert("cpe47", labels={"element": json.loads(nested(40))})),
}


@pytest.mark.parametrize("body", DEEP_BODIES.values(), ids=DEEP_BODIES.keys())
def test_deeply_nested_webhook_bodies_get_a_400_with_the_reason(
    receiver: httpx.Client, town: Town, body: bytes
) -> None:
    answer = receiver.post(
        "/hooks/alertmanager", content=body, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "body is nested deeper than 32 levels"
    with town.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(inbox)).scalar_one() == 0


def opted_out(town: Town, customer: str) -> bool:
    with town.engine.connect() as conn:
        return bool(
            conn.execute(
                select(customers.c.opted_out).where(customers.c.customer_id == customer)
            ).scalar_one()
        )


def test_only_a_post_unsubscribes_head_and_get_change_nothing(
    receiver: httpx.Client, town: Town
) -> None:
    with town.engine.begin() as conn:
        link = f"/unsubscribe/c39/{sign(secret_key(conn, 'unsubscribe'), 'c39')}"
    assert receiver.head(link).status_code == 200  # a link previewer
    assert not opted_out(town, "c39")
    page = receiver.get(link)  # a mail scanner
    assert page.status_code == 200 and '<form method="post"' in page.text
    assert not opted_out(town, "c39")
    for method in ("PUT", "DELETE", "PATCH"):
        assert receiver.request(method, link).status_code == 405
    assert not opted_out(town, "c39")
    assert receiver.post(link).status_code == 200 and opted_out(town, "c39")


def text_in(http: httpx.Client, form: dict[str, str], token: str) -> httpx.Response:
    headers = signed("/hooks/twilio/inbound", form) | {"I-Twilio-Idempotency-Token": token}
    return http.post("/hooks/twilio/inbound", data=form, headers=headers)


def test_a_captured_inbound_text_replayed_with_a_new_token_is_not_handled_again(
    receiver: httpx.Client, town: Town
) -> None:
    form = {"From": PHONE_39, "To": "+441632960000", "Body": "STOP", "MessageSid": "SMabc123"}
    assert "no more outage messages" in text_in(receiver, form, "token-1").text
    replayed = text_in(receiver, form, "token-2")  # signature still valid: no nonce
    assert replayed.status_code == 200 and "<Message>" not in replayed.text
    other = {**form, "Body": "HELP", "MessageSid": "SMdef456"}
    assert "Outage alerts." in text_in(receiver, other, "token-3").text
    with town.engine.connect() as conn:
        assert [r.body for r in conn.execute(select(replies.c.body))] == ["STOP", "HELP"]


@pytest.mark.parametrize("small", [False, True], ids=["default-pool", "full-pool"])
def test_a_burst_of_callbacks_waiting_on_the_store_never_stalls_the_site(
    town: Town, db_url: str, tmp_path: Path, small: bool
) -> None:
    """60 signed callbacks wait on the store's write lock (the tester's burst); the site
    answers at once. The default pool holds them all; a full one says 503, retry later."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<p>all well</p>")
    twilio = twilio_hooks.hooks()
    pool = WritePool(threads=2, waiting=8) if small else None
    refused = 50 if small else 0
    app = create_app(
        town.engine, TOKEN, 1_000_000, site_dir=site, clock=lambda: NOW, twilio=twilio,
        writers=pool,
    )  # fmt: skip
    holder = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
    answers: list[httpx.Response] = []
    lock = threading.Lock()
    with serving(app) as url, httpx.Client(base_url=url, timeout=60) as http:

        def callback(n: int) -> None:
            form = {"MessageSid": f"SM{n:04d}", "MessageStatus": "delivered"}
            headers = signed("/hooks/twilio/status", form)
            with httpx.Client(base_url=url, timeout=60) as own:
                response = own.post("/hooks/twilio/status", data=form, headers=headers)
            with lock:
                answers.append(response)

        assert http.get("/index.html").status_code == 200
        holder.execute("BEGIN IMMEDIATE")  # a cycle holding the write lock
        burst = [threading.Thread(target=callback, args=(n,)) for n in range(60)]
        stop = {"From": PHONE_39, "To": "+441632960000", "Body": "STOP", "MessageSid": "SMs"}
        texted: list[httpx.Response] = []
        customer = threading.Thread(target=lambda: texted.append(text_in(http, stop, "t")))
        for thread in burst:
            thread.start()
        try:
            time.sleep(1.0)  # all 60 are in
            deadline = time.monotonic() + 20
            while len(answers) < refused and time.monotonic() < deadline:  # those over the pool
                time.sleep(0.05)
            took = []
            for _ in range(5):
                started = time.monotonic()
                assert http.get("/index.html", timeout=5).status_code == 200
                took.append(time.monotonic() - started)
            assert min(took) < 0.2, took
            assert http.get("/healthz").json() == {"status": "ok"}
            # A customer's STOP in the middle of it waits its turn: never a 503.
            customer.start()
            time.sleep(0.5)
            assert texted == []  # waiting, not refused
        finally:
            holder.execute("COMMIT")
            for thread in burst:
                thread.join(timeout=60)
            if customer.is_alive() or texted:
                customer.join(timeout=60)
    busy = [a for a in answers if a.status_code == 503]
    assert len(busy) == refused and all(a.headers["Retry-After"] == "5" for a in busy)
    assert [a.status_code for a in answers if a.status_code != 503] == [204] * (60 - refused)
    assert texted[0].status_code == 200 and "no more outage messages" in texted[0].text


# --- what reaches a terminal, XML, a public page ------------------------------------


def incident_1_for_ops(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cabinet A's outage is incident 1, and the ops commands work on its store."""
    ctx = Context.build(settings)
    report_cabinet(settings.jsonl_feed, "cabA", "down", NOW)
    run_cycle(ctx, NOW + timedelta(minutes=3))
    ctx.close()
    for name, value in {
        "DB_URL": settings.db_url.get_secret_value(), "SITE_DIR": str(settings.site_dir),
        "OUTBOX": str(settings.outbox), "JOURNAL_DIR": str(settings.journal_dir),
        "QUIET_HOURS": "", "SLEEP_HOURS": "",  # the real clock may be at night
    }.items():  # fmt: skip
        monkeypatch.setenv(f"FOREWARN_{name}", value)


HOSTILE = "gone \x1b[2J\x1b]0;pwned\x07 caf\u00e9 \u202eevil\u202c \x00\x0b\x7f\x9b end"


def test_customer_text_reaches_the_terminal_with_its_controls_shown_not_obeyed(
    receiver: httpx.Client, town: Town, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A NUL alone is refused at the door (400); the rest of the hostile text gets in.
    body = HOSTILE.replace("\x00", "")
    form = {"From": PHONE_39, "To": "+441632960000", "Body": body, "MessageSid": "SMhostile"}
    assert text_in(receiver, form, "t1").status_code == 200
    monkeypatch.setenv("FOREWARN_DB_URL", settings.db_url.get_secret_value())
    monkeypatch.setenv("COLUMNS", "400")
    out = CliRunner().invoke(cli.app, ["customer", "c39"]).output
    assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out and "\u202e" not in out
    assert "\\x1b[2J" in out and "\\u202e" in out and "café" in out


def test_control_and_bidi_characters_never_reach_public_files_or_posts(
    town: Town, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    incident_1_for_ops(settings, monkeypatch)
    result = CliRunner().invoke(cli.app, ["incident", "update", "1", "--note", HOSTILE])
    assert result.exit_code == 0, result.output
    files = [p for p in settings.site_dir.resolve().rglob("*") if p.is_file()]
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8")
        for bad in ("\x00", "\x1b", "\x07", "\x0b", "\x7f", "\x9b", "\u202e", "\u202c"):
            assert bad not in text, (path, bad)
        assert "\\u0000" not in text and "\\u001b" not in text, path
    atom = settings.site_dir.resolve() / "history.atom"
    ET.fromstring(atom.read_bytes())  # parses as XML
    page = (settings.site_dir.resolve() / "incidents" / "1.html").read_text()
    assert "[2J]0;pwned café evil end" in page  # the words stay, the controls go
    posts = [m for m in outbox(settings) if "customer_id" not in m]
    assert posts and all("\u202e" not in str(m) and "\x1b" not in str(m) for m in posts)


def test_an_argument_that_is_not_utf8_is_read_not_a_traceback(
    town: Town,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    incident_1_for_ops(settings, monkeypatch)
    # What Python makes of `--note $'caf\xe9'` typed in a Latin-1 terminal.
    monkeypatch.setattr("sys.argv", ["forewarn", "incident", "update", "1", "--note", "caf\udce9"])
    with pytest.raises(SystemExit) as done:
        cli.main()
    assert done.value.code == 0
    monkeypatch.setattr("sys.argv", ["forewarn", "incident", "show", "1"])
    with pytest.raises(SystemExit):
        cli.main()
    assert "café" in capsys.readouterr().out


# --- secrets in URLs -------------------------------------------------------------------


def test_a_password_in_the_alertmanager_url_is_never_printed_or_logged(
    town: Town, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    heard: list[str | None] = []

    def refuse(request: Any) -> PlainTextResponse:
        heard.append(request.headers.get("authorization"))
        return PlainTextResponse("no", 500)

    failing = Starlette(routes=[Route("/api/v2/alerts", refuse)])
    with serving(failing) as url:
        with_password = url.replace("http://", "http://ops:hunter2@")
        ctx = Context.build(settings.model_copy(update={"alertmanager_url": with_password}))
        with caplog.at_level("DEBUG"):
            report = run_cycle(ctx, NOW)
        ctx.close()
    assert heard == ["Basic b3BzOmh1bnRlcjI="]  # still sent, as basic auth: ops:hunter2
    assert report.feed_errors and "500" in report.feed_errors[0]
    seen = " ".join(report.feed_errors) + caplog.text
    assert "hunter2" not in seen and "alertmanager poll of" in seen and "failed" in seen
    public = settings.model_copy(update={"alertmanager_url": with_password}).public()
    assert "hunter2" not in json.dumps(public)
    assert public["alertmanager_url"] == url.replace("http://", "http://***@")


# --- encodings -----------------------------------------------------------------------


def crm_export(path: Path, rows: list[list[object]], encoding: str) -> Path:
    lines = [",".join(CUSTOMER_COLUMNS)] + [",".join(str(v) for v in row) for row in rows]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def many_customers(count: int) -> list[list[object]]:
    base = customer_rows()
    rows = []
    for n in range(count):
        row = list(base[n % len(base)])
        row[0], row[1] = f"k{n}", f"q{n}"
        row[7] = f"07911 {n:06d}"
        rows.append(row)
    return rows


def imported(town: Town, path: Path, encoding: str | None = None) -> tuple[int, list[str]]:
    report = import_network(town.engine, None, path, None, NOW, "GB", encoding=encoding)
    return report.customers, [str(p) for p in report.problems]


def test_a_windows_1252_export_is_read_whole_and_said_so(town: Town, tmp_path: Path) -> None:
    rows = many_customers(515)
    rows[257][3] = "Straße Müller"  # line 259 of 516, as the tester had it
    path = crm_export(tmp_path / "crm.csv", rows, "cp1252")
    count, problems = imported(town, path)
    assert count == 515
    assert problems == [
        "crm.csv:259: not UTF-8 (byte 0xdf): the file is read as Windows-1252 from here; "
        "use --encoding to say otherwise"
    ]
    with town.engine.connect() as conn:
        from forewarn.store import premises

        address = conn.execute(
            select(premises.c.address).where(premises.c.premise_id == "q257")
        ).scalar_one()
    assert address == "Straße Müller"


def test_one_bad_byte_in_a_utf8_file_costs_only_its_row(town: Town, tmp_path: Path) -> None:
    rows = many_customers(515)
    rows[10][3] = "Café Row"  # UTF-8 settles the file
    path = crm_export(tmp_path / "mixed.csv", rows, "utf-8")
    data = path.read_bytes().splitlines(keepends=True)
    data[258] = data[258].replace(b"Mill Road", b"Mill Stra\xdf\xfc")  # line 259
    path.write_bytes(b"".join(data))
    count, problems = imported(town, path)
    assert count == 514
    assert problems == ["mixed.csv:259: not utf-8 text (byte 0xdf); row skipped"]


def test_an_encoding_can_be_named(town: Town, tmp_path: Path) -> None:
    rows = many_customers(20)
    rows[3][3] = "Ærøgade"
    path = crm_export(tmp_path / "latin.csv", rows, "latin-1")
    assert imported(town, path, "latin-1") == (20, [])
    with pytest.raises(Exception, match="unknown encoding 'klingon'"):
        imported(town, path, "klingon")


# --- a bounded quarantine ------------------------------------------------------------


def test_one_webhook_of_40000_unknown_alerts_adds_a_bounded_quarantine(
    town: Town, settings: Settings
) -> None:
    body = webhook(*(alert(f"ghost{n}") for n in range(40_000)))
    with town.engine.begin() as conn:
        store_payload(conn, "alertmanager", body, NOW)
    ctx = Context.build(settings)
    assert run_cycle(ctx, NOW).rejects == 40_000
    with town.engine.connect() as conn:
        reasons = list(
            conn.execute(select(quarantine.c.reason).order_by(quarantine.c.id)).scalars()
        )
    assert len(reasons) == feed_inbox.KEPT_PER_BATCH + 1
    assert (
        reasons[-1]
        == f"and {40_000 - feed_inbox.KEPT_PER_BATCH:,} more rejects in the same read (not kept)"
    )
    told = told_of_a_new_fault(ctx, settings, NOW + timedelta(minutes=1))
    assert told == {f"c{n}" for n in CABINETS["cabA"]}
    ctx.close()


def test_the_quarantine_keeps_the_newest_per_source_and_in_all(
    engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feed_inbox, "KEPT_PER_SOURCE", 5)
    monkeypatch.setattr(feed_inbox, "KEPT_IN_ALL", 8)
    with engine.begin() as conn:
        for n in range(7):
            quarantine_rejects(conn, [Reject("jsonl", f"j{n}", "")], NOW + timedelta(seconds=n))
        for n in range(4):
            quarantine_rejects(conn, [Reject("alertmanager", f"a{n}", "")], NOW)
    with engine.connect() as conn:
        kept = list(conn.execute(select(quarantine.c.reason).order_by(quarantine.c.id)).scalars())
        dropped = feed_inbox.dropped_count(conn)
    assert kept == ["j3", "j4", "j5", "j6", "a0", "a1", "a2", "a3"]  # j2 went for room in all
    assert dropped == 3


def test_status_counts_what_the_quarantine_dropped(
    engine: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feed_inbox, "KEPT_PER_SOURCE", 2)
    with engine.begin() as conn:
        quarantine_rejects(conn, [Reject("jsonl", f"r{n}", "") for n in range(5)], NOW)
    monkeypatch.setenv("FOREWARN_DB_URL", settings.db_url.get_secret_value())
    monkeypatch.setenv("FOREWARN_SITE_DIR", str(settings.site_dir))
    monkeypatch.setenv("COLUMNS", "300")
    out = CliRunner().invoke(cli.app, ["status"]).output
    assert "quarantined input: 2," in out and "3 older ones dropped" in out


def test_an_area_nested_too_deep_is_an_ops_error_not_a_crash(town: Town) -> None:
    from forewarn.incidents.ops import OpsError, find_target

    with pytest.raises(OpsError, match="the area is nested deeper than 32 levels"):
        find_target(town.index, area='{"type": "Polygon", "coordinates": ' + nested(5000) + "}")
    with pytest.raises(OpsError, match="name the place one way"):
        find_target(town.index, element="cabA", area='{"type": "Polygon"}')
    assert len(find_target(town.index, element="cabA").rows) == 4


def test_an_old_mac_export_with_lone_carriage_returns_is_read_line_by_line(
    town: Town, tmp_path: Path
) -> None:
    rows = many_customers(30)
    lines = [",".join(CUSTOMER_COLUMNS)] + [",".join(str(v) for v in row) for row in rows]
    path = tmp_path / "mac.csv"
    path.write_bytes(("\r".join(lines) + "\r").encode("cp1252"))
    assert imported(town, path) == (30, [])


def test_a_windows_1252_header_says_so_on_line_1(town: Town, tmp_path: Path) -> None:
    header = ",".join(CUSTOMER_COLUMNS) + ",Bemerkung für uns"  # an extra column, in German
    rows = [",".join(str(v) for v in row) + ",x" for row in many_customers(3)]
    path = tmp_path / "de.csv"
    path.write_bytes(("\n".join([header, *rows]) + "\n").encode("cp1252"))
    count, problems = imported(town, path)
    assert count == 3 and problems[0].startswith("de.csv:1: not UTF-8 (byte 0xfc)")
