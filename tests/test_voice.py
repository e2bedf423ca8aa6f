"""The voice channel (issue 23, item 3): calls through Twilio's Calls API with TwiML, the
message said in the customer's language inside a one-key <Gather>, through the ledger
like every channel; the status callback and the key press on the receiver, signed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs
from xml.etree import ElementTree

import httpx
import pytest
from sqlalchemy import select, update

from forewarn.channels import voice
from forewarn.channels.base import Message, Outcome
from forewarn.channels.rate import RateLimiter
from forewarn.channels.voice import VoiceSender, caller_of
from forewarn.config import Settings
from forewarn.context import Context
from forewarn.receiver import create_app
from forewarn.store import customers, deliveries, inbox, safety_checks
from tests.conftest import NOW, run_cycle, serving
from tests.town import Town, report_cabinet
from tests.twilio_hooks import PUBLIC, hooks, signed

ACCOUNT = "AC" + "0" * 32
CALLED = "+447911123045"


def call(body: str = "Broadband fault at 45 Mill Road.", locale: str = "en") -> Message:
    return Message(1, "voice", CALLED, "c45", 1, 1, body, locale=locale)


class FakeCalls:
    """Twilio's Calls API as an httpx transport: keeps each create's form."""

    def __init__(self, answer: tuple[int, dict[str, Any]] | None = None) -> None:
        self.created: list[dict[str, list[str]]] = []
        self.answer = answer
        self.listed: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == f"/2010-04-01/Accounts/{ACCOUNT}/Calls.json"
        if request.method == "GET":
            return httpx.Response(200, json={"calls": self.listed, "next_page_uri": None})
        self.created.append(parse_qs(request.content.decode()))
        if self.answer is not None:
            return httpx.Response(self.answer[0], json=self.answer[1])
        return httpx.Response(201, json={"sid": "CA" + "1" * 32, "status": "queued"})


def sender(fake: FakeCalls, public_url: str | None = PUBLIC, region: str = "GB") -> VoiceSender:
    return VoiceSender(
        ACCOUNT, "token", "+441223000000", limiter=RateLimiter(1000), public_url=public_url,
        region=region, transport=httpx.MockTransport(fake),
    )  # fmt: skip


def test_a_call_says_the_message_twice_in_the_customers_language_inside_a_one_key_gather() -> None:
    fake = FakeCalls()
    [result] = sender(fake).send([call("Hay una avería en su línea.", locale="es")])
    assert result.outcome is Outcome.DELIVERED and result.ref == "CA" + "1" * 32
    [form] = fake.created
    assert form["To"] == [CALLED] and form["From"] == ["+441223000000"]
    assert form["StatusCallback"] == [f"{PUBLIC}/hooks/twilio/voice/status"]
    assert "StatusCallbackEvent" not in form  # Twilio's default: once, when it is over
    root = ElementTree.fromstring(form["Twiml"][0])
    gather = root.find("Gather")
    assert gather is not None and gather.get("numDigits") == "1"
    assert gather.get("action") == f"{PUBLIC}/hooks/twilio/voice/gather"
    said = [(s.text, s.get("language")) for s in gather.iter("Say")]
    assert said == [("Hay una avería en su línea.", "es-ES")] * 2
    goodbye = root.findall("Say")
    assert [s.text for s in goodbye] == ["Gracias por escuchar. Adiós."]


def test_without_a_public_receiver_a_call_has_no_gather_and_english_follows_the_region() -> None:
    fake = FakeCalls()
    sender(fake, public_url=None, region="US").send([call()])
    [form] = fake.created
    root = ElementTree.fromstring(form["Twiml"][0])
    assert root.find("Gather") is None and "StatusCallback" not in form
    assert {s.get("language") for s in root.iter("Say")} == {"en-US"}


def test_refusals_are_classified_and_an_oversized_call_never_reaches_twilio() -> None:
    invalid = FakeCalls((400, {"code": 21211, "message": "not a number", "status": 400}))
    [refused] = sender(invalid).send([call()])
    assert refused.outcome is Outcome.PERMANENT and "21211" in refused.detail
    busy = FakeCalls((429, {"code": 20429, "message": "too many", "status": 429}))
    assert sender(busy).send([call()])[0].outcome is Outcome.RETRYABLE
    huge = FakeCalls()
    [too_long] = sender(huge).send([call("word " * 600)])
    assert too_long.outcome is Outcome.PERMANENT and "over 4000" in too_long.detail
    assert huge.created == []
    assert not voice.CHANNEL.fits or not voice.CHANNEL.fits("word " * 600)


def test_reconciling_finds_only_a_call_made_since_the_claim() -> None:
    fake = FakeCalls()
    claimed = datetime(2026, 11, 24, 2, 17, tzinfo=UTC)
    message = Message(1, "voice", CALLED, "c45", 1, 1, "x", claimed_at=claimed)
    old = {"sid": "CA" + "2" * 32, "to": CALLED, "date_created": "Tue, 24 Nov 2026 02:00:00 +0000"}
    fake.listed = [old]
    assert sender(fake).reconcile([message]) == [None]  # an earlier call: call again
    new = {"sid": "CA" + "3" * 32, "to": CALLED, "date_created": "Tue, 24 Nov 2026 02:17:01 +0000"}
    fake.listed = [new, old]
    [found] = sender(fake).reconcile([message])
    assert found is not None and found.outcome is Outcome.DELIVERED and found.ref == new["sid"]


def test_calls_come_from_the_voice_number_or_a_phone_number_sender_never_a_short_code() -> None:
    def of(**values: str) -> str | None:
        return caller_of(Settings(_env_file=None, **values))  # type: ignore[call-arg, arg-type]

    assert of(voice_from="+441223000001", sms_from="+441223000000") == "+441223000001"
    assert of(sms_from="+441223000000") == "+441223000000"
    assert of(sms_from="MG" + "a" * 32) is None and of(sms_from="57801") is None


@pytest.mark.integration
def test_calls_are_valid_against_twilios_own_openapi_description(prism: str) -> None:
    placed = VoiceSender(ACCOUNT, "token", "+15005550006", api_url=prism,
                         limiter=RateLimiter(1000), public_url=PUBLIC)  # fmt: skip
    [result] = placed.send([call()])
    assert result.outcome is Outcome.DELIVERED, result.detail
    assert result.ref is not None and result.ref.startswith("CA")
    # Prism checks every request against the spec: a malformed status callback URL is
    # refused (400 or 422), and a refusal is permanent.
    bad = VoiceSender(ACCOUNT, "token", "+15005550006", api_url=prism,
                      limiter=RateLimiter(1000), public_url="not a url")  # fmt: skip
    [refused] = bad.send([call()])
    assert refused.outcome is Outcome.PERMANENT and refused.detail.startswith("twilio 4")
    [found] = placed.reconcile([call()])
    assert found is None or found.outcome is Outcome.DELIVERED  # not "cannot reconcile"


# --- customers who chose calls -----------------------------------------------------


def test_only_a_customer_who_chose_calls_is_called(town: Town, settings: Settings) -> None:
    with town.engine.begin() as conn:
        conn.execute(
            update(customers).where(customers.c.customer_id == "c41").values(channels="voice")
        )
        conn.execute(  # at risk, but calls are not their choice: texts and emails first
            update(customers).where(customers.c.customer_id == "c43").values(needs="telecare")
        )
    ctx = Context.build(settings)
    try:
        report_cabinet(settings.jsonl_feed, "cabA", "down", NOW)
        run_cycle(ctx, NOW + timedelta(minutes=3))
    finally:
        ctx.close()
    lines = (settings.outbox / "voice.jsonl").read_text().splitlines()
    calls = [json.loads(line) for line in lines]
    assert [c["customer_id"] for c in calls] == ["c41"]
    assert calls[0]["body"].startswith("This is ") and "41 Mill Road" in calls[0]["body"]
    assert "press" not in calls[0]["body"]  # no check to confirm: not at risk


# --- the receiver: how a call ended, and the key pressed ---------------------------


@pytest.fixture
def called(town: Town) -> Iterator[tuple[httpx.Client, Town]]:
    """A sent call to no. 45 about incident 1, whose check is open; the receiver."""
    with town.engine.begin() as conn:
        conn.execute(deliveries.insert().values(
            id=1, incident_id=1, update_seq=1, customer_id="c45", channel="voice",
            status="sent", attempts=1, rank=-1000, created_at=NOW, next_attempt_at=NOW,
            sent_at=NOW, provider_ref="CA" + "1" * 32,
        ))  # fmt: skip
        conn.execute(safety_checks.insert().values(
            customer_id="c45", incident_id=1, needs="telecare", state="calling", calls=1,
            call_seq=1, asked_at=NOW, called_at=NOW,
        ))  # fmt: skip
    app_ = create_app(town.engine, None, 100_000, clock=lambda: NOW, twilio=hooks())
    with serving(app_) as url, httpx.Client(base_url=url) as http:
        yield http, town


def state_of(town: Town) -> tuple[Any, Any]:
    with town.engine.connect() as conn:
        row = conn.execute(select(deliveries)).one()
        check = conn.execute(
            select(safety_checks).where(safety_checks.c.customer_id == "c45")
        ).one()
    return row, check


STATUS = "/hooks/twilio/voice/status"
GATHER = "/hooks/twilio/voice/gather"


def test_how_a_call_ended_is_recorded_and_a_failed_call_fails(
    called: tuple[httpx.Client, Town],
) -> None:
    http, town = called
    form = {"CallSid": "CA" + "1" * 32, "CallStatus": "no-answer", "AccountSid": ACCOUNT}
    assert http.post(STATUS, data=form, headers=signed(STATUS, form)).status_code == 204
    row, _ = state_of(town)
    assert (row.status, row.provider_status) == ("sent", "no-answer")  # never called again
    failed = {**form, "CallStatus": "failed"}
    assert http.post(STATUS, data=failed, headers=signed(STATUS, failed)).status_code == 204
    row, _ = state_of(town)
    assert (row.status, row.error) == ("failed", "call could not be placed")


def test_a_forged_or_malformed_call_callback_changes_nothing(
    called: tuple[httpx.Client, Town],
) -> None:
    http, town = called
    form = {"CallSid": "CA" + "1" * 32, "CallStatus": "failed"}
    forged = http.post(STATUS, data=form, headers=signed(STATUS, form, token="not-the-token"))
    assert forged.status_code == 403
    press = {"CallSid": "CA" + "1" * 32, "Digits": "1"}
    assert http.post(GATHER, data=press, headers={"X-Twilio-Signature": "x"}).status_code == 403
    elsewhere = http.post(GATHER, data=press, headers=signed(STATUS, press))  # another URL's
    assert elsewhere.status_code == 403
    missing = {"CallSid": "CA" + "1" * 32}
    assert http.post(GATHER, data=missing, headers=signed(GATHER, missing)).status_code == 400
    nul = {"CallSid": "CA\x00", "Digits": "1"}
    assert http.post(GATHER, data=nul, headers=signed(GATHER, nul)).status_code == 400
    huge = {"CallSid": "CA" + "1" * 32, "Digits": "1" * 70_000}
    assert http.post(GATHER, data=huge, headers=signed(GATHER, huge)).status_code == 413
    row, check = state_of(town)
    assert row.status == "sent" and check.state == "calling"
    with town.engine.connect() as conn:
        assert conn.execute(select(inbox)).all() == []  # nothing refused was kept


def test_a_key_pressed_confirms_that_customers_check_and_a_replay_or_a_stranger_nothing(
    called: tuple[httpx.Client, Town],
) -> None:
    http, town = called
    with town.engine.begin() as conn:  # no. 41 is being called about incident 2
        conn.execute(safety_checks.insert().values(
            customer_id="c41", incident_id=2, needs="medical", state="calling", calls=1,
            call_seq=1, asked_at=NOW, called_at=NOW,
        ))  # fmt: skip
    stranger = {"CallSid": "CA" + "9" * 32, "Digits": "1"}
    answer = http.post(GATHER, data=stranger, headers=signed(GATHER, stranger))
    assert answer.status_code == 200 and "<Say" in answer.text and "Thank you" in answer.text
    _, check = state_of(town)
    assert check.state == "calling"
    press = {"CallSid": "CA" + "1" * 32, "Digits": "5", "From": "+441223000000"}
    answer = http.post(GATHER, data=press, headers=signed(GATHER, press))
    assert answer.status_code == 200 and "We know you heard our message" in answer.text
    with town.engine.connect() as conn:
        rows = conn.execute(select(safety_checks.c.customer_id, safety_checks.c.state))
        states = {str(customer): str(state) for customer, state in rows}
        how = conn.execute(
            select(safety_checks.c.confirmed_by).where(safety_checks.c.customer_id == "c45")
        ).scalar()
    # Only no. 45's check of incident 1: the call's own customer and incident.
    assert states == {"c45": "confirmed", "c41": "calling"} and how == "key press"
    again = http.post(GATHER, data=press, headers=signed(GATHER, press))
    assert again.status_code == 200
    with town.engine.connect() as conn:
        assert (
            conn.execute(
                select(safety_checks.c.state).where(safety_checks.c.customer_id == "c41")
            ).scalar()
            == "calling"
        )


def test_after_the_worst_a_call_hook_can_be_sent_the_next_cycle_still_tells_everyone(
    town: Town, settings: Settings
) -> None:
    app_ = create_app(town.engine, None, 100_000, clock=lambda: NOW, twilio=hooks())
    worst: list[tuple[str, bytes, dict[str, str]]] = []
    for path in (STATUS, GATHER):
        form = {"CallSid": "CA" + "7" * 32, "CallStatus": "failed", "Digits": "1" * 70_000}
        body = "&".join(f"{k}={v}" for k, v in form.items()).encode()
        worst += [
            (path, body, signed(path, form)),  # huge, signed
            (path, b"%ff%fe=\x00&&==", {"X-Twilio-Signature": "x"}),  # not a form
            (path, b"CallSid=CA%00&Digits=1&CallStatus=x", {}),  # NUL, unsigned
            (path, b"CallSid=" + b"A" * 5000, {"X-Twilio-Signature": "x" * 5000}),
        ]
    stranger = {"CallSid": "CA" + "8" * 32, "Digits": "9", "CallStatus": "completed"}
    worst += [(p, "&".join(f"{k}={v}" for k, v in stranger.items()).encode(), signed(p, stranger))
              for p in (STATUS, GATHER)]  # fmt: skip
    form_type = {"content-type": "application/x-www-form-urlencoded"}
    with serving(app_) as url, httpx.Client(base_url=url) as http:
        answers = [http.post(p, content=b, headers=h | form_type).status_code for p, b, h in worst]
    assert all(code < 500 for code in answers) and answers.count(200) + answers.count(204) == 2
    ctx = Context.build(settings)
    try:
        report_cabinet(settings.jsonl_feed, "cabA", "down", NOW)
        report = run_cycle(ctx, NOW + timedelta(minutes=3))
    finally:
        ctx.close()
    assert report.changes.any
    lines = (settings.outbox / "sms.jsonl").read_text().splitlines()
    told = {json.loads(line)["customer_id"] for line in lines}
    assert {"c39", "c41", "c43"} <= told  # cabinet A's customers on text (no. 45: email)
