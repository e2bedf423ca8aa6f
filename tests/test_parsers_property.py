"""Every parser of outside input, tried with inputs hypothesis builds: each either reads
its input or refuses it with its own error, and no input makes a cycle fail or stops a
later one (issue 19). bench/fuzz_parsers.py runs the byte-level ones under atheris."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forewarn.channels.social import _mention
from forewarn.cleantext import clean, for_terminal, without_credentials
from forewarn.config import Settings
from forewarn.context import Context
from forewarn.drill.scenario import DrillError, load_scenario
from forewarn.feeds import alertmanager, jsonl
from forewarn.feeds.inbox import store_payload
from forewarn.feeds.safejson import MAX_DEPTH, Unreadable, depth, loads
from forewarn.network.csvfile import CUSTOMER_COLUMNS, CsvFormatError, Problem, read_rows
from tests.conftest import NOW, run_cycle
from tests.town import CABINETS, Town, report_cabinet

LABELS = ["element", "instance"]
FAST = settings(max_examples=300, deadline=None)

# JSON values, nested, with the words the parsers look for among the keys and strings.
WORDS = st.sampled_from(
    ["element", "state", "at", "down", "up", "status", "firing", "resolved", "labels",
     "startsAt", "endsAt", "fingerprint", "alerts", "version", "4", "type", "mention",
     "account", "acct", "id", "content", "2026-11-23T14:00:00Z", "cpe41", "\x00", "\u202e"]
)  # fmt: skip
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | WORDS
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(WORDS | st.text(), inner, max_size=6)
    ),
    max_leaves=40,
)


@FAST
@given(st.binary(max_size=2000))
def test_safe_json_reads_or_refuses_any_bytes(data: bytes) -> None:
    try:
        loads(data)
    except Unreadable as err:
        assert str(err)


@FAST
@given(JSON)
def test_the_depth_scan_agrees_with_the_parser(value: Any) -> None:
    text = json.dumps(value).encode()

    def nesting(v: Any) -> int:
        if isinstance(v, dict):
            return 1 + max(map(nesting, v.values()), default=0)
        if isinstance(v, list):
            return 1 + max(map(nesting, v), default=0)
        return 0

    assert depth(text) == nesting(value)
    assert loads(text) == value if nesting(value) <= MAX_DEPTH else True


@FAST
@given(st.lists(st.binary(max_size=300) | JSON.map(lambda v: json.dumps(v).encode()), max_size=8))
def test_every_json_line_becomes_a_signal_or_a_reject(lines: list[bytes]) -> None:
    data = b"\n".join(line.replace(b"\n", b" ") for line in lines)
    batch = jsonl.parse_lines(data)
    counted = sum(1 for line in data.split(b"\n") if line.strip())
    assert len(batch.signals) + len(batch.rejects) == counted
    for reject in batch.rejects:
        assert reject.reason.startswith("line ")


ALERT = st.fixed_dictionaries(
    {},
    optional={
        "status": st.sampled_from(["firing", "resolved"]) | JSON,
        "labels": st.dictionaries(WORDS, JSON | WORDS, max_size=3) | JSON,
        "startsAt": st.just("2026-11-23T13:50:00Z") | JSON,
        "endsAt": st.just("2026-11-23T13:58:00Z") | JSON,
        "fingerprint": WORDS | JSON,
    },
)


@FAST
@given(st.lists(ALERT | JSON, max_size=6), JSON)
def test_any_webhook_payload_is_read_alert_by_alert(alerts: list[Any], extra: Any) -> None:
    body = json.dumps({"version": "4", "alerts": alerts, "x": extra}).encode()
    result = alertmanager.parse_webhook(body, LABELS)
    assert len(result.batch.signals) <= len(alerts)
    for signal in result.batch.signals:
        assert isinstance(signal.element, str) and signal.observed_at.tzinfo is not None


@FAST
@given(st.binary(max_size=500) | st.lists(ALERT | JSON, max_size=6).map(json.dumps).map(str.encode))
def test_any_answer_to_the_alerts_poll_is_signals_or_one_clear_error(body: bytes) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    with httpx.Client(transport=transport) as client:
        try:
            batch = alertmanager.fetch_active(client, "http://am.test", LABELS)
        except ValueError as err:
            assert "GET /api/v2/alerts" in str(err)
            return
    assert all(s.source == "alertmanager" for s in batch.signals)


@FAST
@given(st.binary(max_size=3000))
def test_any_webhook_bytes_are_read_or_refused(body: bytes) -> None:
    result = alertmanager.parse_webhook(body, LABELS)
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        payload = None
    if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
        # Not a payload at all: refused whole, with its reason, and nothing taken from it.
        assert result.batch.signals == [] and len(result.batch.rejects) == 1
        assert result.batch.rejects[0].reason.startswith(("payload", "unsupported"))


NOTIFICATION = st.fixed_dictionaries(
    {"type": st.just("mention") | JSON},
    optional={
        "id": st.integers() | st.text() | JSON,
        "status": st.fixed_dictionaries(
            {}, optional={"id": st.text() | JSON, "content": st.text() | JSON}
        )
        | JSON,
        "account": st.fixed_dictionaries({}, optional={"acct": st.text() | JSON}) | JSON,
    },
)


@FAST
@given(NOTIFICATION | JSON)
def test_any_mastodon_notification_is_a_mention_or_nothing(item: Any) -> None:
    mention = _mention(item)
    if mention is not None:
        assert isinstance(item, dict) and item["type"] == "mention"
        assert mention.acct and mention.status_id and mention.notification_id
        assert "\n" not in mention.text  # markup gone, one line


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.binary(max_size=200), max_size=10))
def test_any_csv_bytes_are_rows_problems_or_one_clear_error(
    tmp_path: Path, lines: list[bytes]
) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(",".join(CUSTOMER_COLUMNS).encode() + b"\n" + b"\n".join(lines))
    try:
        items = list(read_rows(path, CUSTOMER_COLUMNS))
    except CsvFormatError as err:
        assert str(err)
        return
    for item in items:
        assert isinstance(item, Problem) or set(item[1]) == set(CUSTOMER_COLUMNS)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=500) | JSON.map(json.dumps).map(str.encode))
def test_any_scenario_file_loads_or_names_its_problem(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "s.yaml"
    path.write_bytes(data)
    try:
        load_scenario(path)
    except DrillError as err:
        assert str(err)


@FAST
@given(st.text())
def test_cleaned_text_has_no_controls_and_terminal_text_obeys_nothing(text: str) -> None:
    for c in clean(text):
        assert c in "\t\n" or (ord(c) >= 0x20 and not 0x7F <= ord(c) < 0xA0)
        assert c not in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
    shown = for_terminal(text)
    assert "\x1b" not in shown and "\x07" not in shown and "\x9b" not in shown


@FAST
@given(st.text(alphabet=st.characters(blacklist_characters="/?#'\"\n"), min_size=1))
def test_no_password_survives_in_a_url(password: str) -> None:
    # Any character a password may hold unencoded, "@" included (the URL is sent split at
    # its last "@"); a "/", "?", "#", quote or newline would end the URL's authority.
    shown = without_credentials(f"failed for url 'https://ops:{password}x@host/path'")
    assert "ops:" not in shown and shown.endswith("https://***@host/path'")
    assert password not in shown or password in "failed for url 'https://***@host/path'"


def test_the_scans_stay_linear_on_their_worst_inputs() -> None:
    # An unclosed string of escaped quotes, and runs of scheme characters: before, the
    # first took 87 s for 160 kB and the second 1.4 s for 20 kB; a regression hangs here.
    assert depth(b'"' + b'\\"' * 500_000) == 0
    assert without_credentials("a." * 500_000) == "a." * 500_000


# --- the whole cycle ---------------------------------------------------------------------


FEED_LINE = st.binary(max_size=200) | JSON.map(lambda v: json.dumps(v).encode())


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    feed_lines=st.lists(FEED_LINE, max_size=5),
    webhooks=st.lists(
        st.binary(max_size=300)
        | st.lists(ALERT | JSON, max_size=4).map(
            lambda alerts: json.dumps({"alerts": alerts}).encode()
        ),
        max_size=3,
    ),
)
def test_no_input_fails_a_cycle_or_stops_the_next_fault_being_told(
    town: Town, tmp_path: Path, feed_lines: list[bytes], webhooks: list[bytes]
) -> None:
    # A feed, outbox and site of its own per example, in the town's one store: what every
    # earlier example left behind (quarantine, inbox, states) is there too, the harder case.
    example = tmp_path / f"e{len(list(tmp_path.glob('e*')))}"
    example.mkdir()
    own = Settings(
        db_url=town.engine.url.render_as_string(hide_password=False),  # type: ignore[arg-type]
        site_dir=example / "site", outbox=example / "outbox", journal_dir=example / "journal",
        jsonl_feed=str(example / "feed.jsonl"), operator_name="Mill Road Fibre",
        _env_file=None,  # type: ignore[call-arg]
    )  # fmt: skip
    with Path(str(own.jsonl_feed)).open("wb") as handle:
        for line in feed_lines:
            handle.write(line.replace(b"\n", b" ") + b"\n")
    with town.engine.begin() as conn:
        for body in webhooks:
            store_payload(conn, "alertmanager", body, NOW)
    ctx = Context.build(own)
    try:
        base = NOW + timedelta(days=len(list(tmp_path.glob("e*"))))  # a fresh day each
        run_cycle(ctx, base)
        run_cycle(ctx, base + timedelta(seconds=30))
        report_cabinet(own.jsonl_feed, "cabA", "down", base + timedelta(minutes=1))
        report = run_cycle(ctx, base + timedelta(minutes=4))
        assert "cabA" in [f.root for f in report.detection.faults]
        report_cabinet(own.jsonl_feed, "cabA", "up", base + timedelta(minutes=5))
        run_cycle(ctx, base + timedelta(minutes=6))
        run_cycle(ctx, base + timedelta(minutes=20))
    finally:
        ctx.close()
    told = {
        json.loads(line)["customer_id"]
        for path in own.outbox.glob("*.jsonl")
        for line in path.read_text().splitlines()
        if "customer_id" in json.loads(line)
    }
    assert {f"c{n}" for n in CABINETS["cabA"]} <= told
