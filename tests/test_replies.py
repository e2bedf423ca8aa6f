"""Twilio's hooks on the receiver: signatures, repeats, STOP / START / HELP, status
callbacks, and one-click email unsubscribes, all through the real HTTP server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from prefect.logging import disable_run_logger
from sqlalchemy import select, update
from typer.testing import CliRunner

from forewarn import pipeline
from forewarn.channels.unsubscribe import sign
from forewarn.cli import app
from forewarn.config import Settings
from forewarn.context import Context
from forewarn.incidents.callbacks import apply_status, replay_status_callbacks
from forewarn.incidents.ledger import MAX_ATTEMPTS
from forewarn.incidents.ledger.claims import BACKOFF_BASE
from forewarn.incidents.replies import classify
from forewarn.pipeline import detect_faults, update_incidents
from forewarn.receiver import create_app
from forewarn.store import customers, deliveries, inbox, incidents, replies, secret_key
from tests import twilio_hooks
from tests.conftest import NOW, outage_and_restoration, run_cycle, serving
from tests.town import Town, report_cabinet
from tests.twilio_hooks import signed

PHONE_39 = "+447911123039"


@pytest.fixture
def hooks(town: Town) -> Iterator[httpx.Client]:
    with town.engine.begin() as conn:
        key = secret_key(conn, "unsubscribe")
    twilio = twilio_hooks.hooks()
    app = create_app(
        town.engine, None, 100_000, clock=lambda: NOW, twilio=twilio, unsubscribe_key=key
    )
    with serving(app) as url, httpx.Client(base_url=url) as http:
        yield http


def text_in(
    http: httpx.Client, body: str, sender: str = PHONE_39, token: str = ""
) -> httpx.Response:
    form = {"From": sender, "To": "+441632960000", "Body": body, "MessageSid": f"SM{body}{token}"}
    headers = signed("/hooks/twilio/inbound", form)
    if token:
        headers["I-Twilio-Idempotency-Token"] = token
    return http.post("/hooks/twilio/inbound", data=form, headers=headers)


def opted_out(town: Town, customer: str) -> bool:
    with town.engine.connect() as conn:
        return bool(
            conn.execute(
                select(customers.c.opted_out).where(customers.c.customer_id == customer)
            ).scalar_one()
        )


def test_a_forged_or_unsigned_request_changes_nothing(hooks: httpx.Client, town: Town) -> None:
    form = {"From": PHONE_39, "To": "+441632960000", "Body": "STOP", "MessageSid": "SM1"}
    forged = signed("/hooks/twilio/inbound", form, token="someone-else")
    assert hooks.post("/hooks/twilio/inbound", data=form, headers=forged).status_code == 403
    assert hooks.post("/hooks/twilio/inbound", data=form).status_code == 403
    # Signed for another body: changing one field breaks the signature.
    tampered = signed("/hooks/twilio/inbound", {**form, "Body": "HELLO"})
    assert hooks.post("/hooks/twilio/inbound", data=form, headers=tampered).status_code == 403
    assert not opted_out(town, "c39")
    with town.engine.connect() as conn:
        assert conn.execute(select(replies)).all() == []
        assert conn.execute(select(inbox)).all() == []


def test_oversized_and_malformed_requests_are_refused(hooks: httpx.Client) -> None:
    huge = {"From": PHONE_39, "Body": "x" * 200_000}
    assert hooks.post("/hooks/twilio/inbound", data=huge).status_code == 413
    bad = hooks.post(
        "/hooks/twilio/inbound", content=b"\xff\xfe not a form", headers=signed("/x", {})
    )
    assert bad.status_code == 400
    missing = {"To": "+441632960000"}
    response = hooks.post(
        "/hooks/twilio/inbound", data=missing, headers=signed("/hooks/twilio/inbound", missing)
    )
    assert response.status_code == 400


def test_stop_opts_out_of_every_channel_confirms_once_and_start_opts_back_in(
    hooks: httpx.Client, town: Town
) -> None:
    first = text_in(hooks, "Stop")
    assert first.status_code == 200 and "no more outage messages" in first.text
    assert first.headers["content-type"].startswith("application/xml")
    assert opted_out(town, "c39")
    again = text_in(hooks, "UNSUBSCRIBE")
    assert "<Message>" not in again.text  # confirmed once only
    back = text_in(hooks, "start")
    assert "back on" in back.text and not opted_out(town, "c39")
    helped = text_in(hooks, "HELP")
    assert "Mill Road Fibre: Outage alerts." in helped.text
    with town.engine.connect() as conn:
        history = conn.execute(
            select(replies.c.customer_id, replies.c.action, replies.c.body).order_by(replies.c.id)
        ).all()
    assert [tuple(r) for r in history] == [
        ("c39", "stop", "Stop"), ("c39", "stop", "UNSUBSCRIBE"), ("c39", "start", "start"),
        ("c39", "help", "HELP"),
    ]  # fmt: skip


def test_a_repeated_request_is_dropped_by_its_idempotency_token(
    hooks: httpx.Client, town: Town
) -> None:
    assert "no more" in text_in(hooks, "STOP", token="tok-1").text
    text_in(hooks, "START", token="tok-2")
    repeat = text_in(hooks, "STOP", token="tok-1")  # Twilio retrying the first request
    assert repeat.status_code == 200 and "<Message>" not in repeat.text
    assert not opted_out(town, "c39")
    with town.engine.connect() as conn:
        assert len(conn.execute(select(replies)).all()) == 2


def test_a_reply_from_an_unknown_number_is_kept_without_a_customer(
    hooks: httpx.Client, town: Town
) -> None:
    response = text_in(hooks, "is the internet down?", sender="+447700900999")
    assert response.status_code == 200
    with town.engine.connect() as conn:
        row = conn.execute(select(replies)).one()
    assert row.customer_id is None and row.action == "other" and row.sender == "+447700900999"


@pytest.mark.parametrize(
    ("body", "action"),
    [("STOP", "stop"), ("stopall", "stop"), (" Cancel. ", "stop"), ("optout", "stop"),
     ("UNSTOP", "start"), ("yes", "start"), ("info", "help"), ("OUT", "out"),
     ("please stop the texts", "other"), ("", "other")],
)  # fmt: skip
def test_keywords_are_single_words_in_any_case(body: str, action: str) -> None:
    assert classify(body) == action


def told(settings: Settings, customer: str) -> list[str]:
    return [
        line
        for path in settings.outbox.glob("*.jsonl")
        for line in path.read_text().splitlines()
        if json.loads(line).get("customer_id") == customer
    ]


def test_stop_then_an_update_sends_nothing_start_then_an_update_sends(
    hooks: httpx.Client, town: Town, settings: Settings
) -> None:
    ctx = Context.build(settings)
    text_in(hooks, "STOP")
    report_cabinet(settings.jsonl_feed, "cabA", "down", NOW)
    run_cycle(ctx, NOW + timedelta(minutes=3))
    assert told(settings, "c39") == []
    assert len(told(settings, "c41")) == 2  # the neighbour on the same cabinet: SMS and email
    text_in(hooks, "START")
    report_cabinet(
        settings.jsonl_feed, "cabB", "down", NOW + timedelta(minutes=4)
    )  # the fault grows: a new update
    run_cycle(ctx, NOW + timedelta(minutes=8))
    # c39 is back in, but the growth is news only to cabinet B's premises.
    assert told(settings, "c39") == []
    assert len(told(settings, "c47")) == 2
    # The next update that concerns c39 reaches them again.
    for cabinet in ("cabA", "cabB"):
        report_cabinet(settings.jsonl_feed, cabinet, "up", NOW + timedelta(hours=1))
    run_cycle(ctx, NOW + timedelta(hours=1, minutes=1))
    run_cycle(ctx, NOW + timedelta(hours=1, minutes=11))
    restored = [json.loads(line) for line in told(settings, "c39")]
    assert sorted((m["channel"], m["update_seq"]) for m in restored) == [("email", 3), ("sms", 3)]


def test_stop_is_honoured_for_messages_already_queued(
    hooks: httpx.Client, town: Town, settings: Settings
) -> None:
    ctx = Context.build(settings)
    report_cabinet(settings.jsonl_feed, "cabA", "down", NOW)
    with town.engine.begin() as conn:  # queue, but hold dispatch back
        conn.execute(update(customers).values(channels="sms"))

    moment = NOW + timedelta(minutes=3)
    with disable_run_logger():
        detection = detect_faults(ctx, moment).detection
        update_incidents(ctx, detection, moment)
    text_in(hooks, "STOP")
    run_cycle(ctx, moment + timedelta(minutes=1))
    assert told(settings, "c39") == [] and len(told(settings, "c41")) == 1
    with town.engine.connect() as conn:
        row = conn.execute(
            select(deliveries.c.status, deliveries.c.error).where(deliveries.c.customer_id == "c39")
        ).one()
    assert tuple(row) == ("cancelled", "customer opted out")


def test_status_callbacks_update_the_ledger(hooks: httpx.Client, town: Town) -> None:
    with town.engine.begin() as conn:
        conn.execute(
            deliveries.insert(),
            [
                {"incident_id": 1, "update_seq": 1, "customer_id": f"c{n}", "channel": "sms",
                 "status": "sent", "attempts": 2 if n == 47 else 1, "rank": 0,
                 "created_at": NOW, "next_attempt_at": NOW, "provider_ref": f"SM{n}"}
                for n in (39, 41, 43, 45, 47)
            ],
        )  # fmt: skip

    def callback(sid: str, status: str, code: str = "") -> int:
        form = {"MessageSid": sid, "MessageStatus": status, "ErrorCode": code}
        headers = signed("/hooks/twilio/status", form)
        return hooks.post("/hooks/twilio/status", data=form, headers=headers).status_code

    assert callback("SM39", "delivered") == 204
    assert callback("SM41", "undelivered", "30003") == 204  # unreachable handset: try again
    assert callback("SM43", "failed", "30006") == 204  # a landline: never again
    assert callback("SMunknown", "delivered") == 204  # kept in the inbox, changes nothing
    assert callback("SM45", "undelivered", "30008") == 204  # unknown: one more try...
    assert callback("SM47", "undelivered", "30008") == 204  # ...but not a third
    with town.engine.connect() as conn:
        rows = {
            r.customer_id: (r.status, r.provider_status) for r in conn.execute(select(deliveries))
        }
    assert rows == {
        "c39": ("sent", "delivered"),
        "c41": ("queued", "undelivered"),
        "c43": ("failed", "failed"),
        "c45": ("queued", "undelivered"),
        "c47": ("failed", "undelivered"),
    }


def test_one_click_unsubscribe_needs_a_valid_link_and_a_post(
    hooks: httpx.Client, town: Town
) -> None:
    with town.engine.begin() as conn:
        key = secret_key(conn, "unsubscribe")
    link = f"/unsubscribe/c39/{sign(key, 'c39')}"
    page = hooks.get(link)  # a mail scanner following the link
    assert page.status_code == 200 and "<form" in page.text and not opted_out(town, "c39")
    assert hooks.post(f"/unsubscribe/c41/{sign(key, 'c39')}").status_code == 403
    assert hooks.post("/unsubscribe/c39/forged").status_code == 403
    assert not opted_out(town, "c41")
    done = hooks.post(link, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and opted_out(town, "c39")


def test_out_after_restored_reopens_the_case_and_says_when_they_will_hear(
    hooks: httpx.Client, town: Town, settings: Settings
) -> None:
    ctx = Context.build(settings)
    outage_and_restoration(ctx, settings)  # "restored ... reply OUT"
    answer = text_in(hooks, "out")
    assert answer.status_code == 200
    assert "reopened your case" in answer.text and "Next update by" in answer.text
    with town.engine.connect() as conn:
        case = conn.execute(select(incidents).where(incidents.c.root_element == "cpe39")).one()
        reply = conn.execute(select(replies.c.action, replies.c.customer_id)).one()
    assert (case.scope, case.source, case.status, case.parent_id) == (
        "premise",
        "reply",
        "investigating",
        1,
    )
    assert case.notify and case.next_update_at is not None
    assert tuple(reply) == ("out", "c39")
    # The case is followed up like any incident: when its promise comes, c39 hears again.
    done = pipeline.keep_promises(ctx, case.next_update_at)
    assert done.reminded == [case.id]
    run_cycle(ctx, case.next_update_at)
    followups = [json.loads(line) for line in told(settings, "c39")]
    assert [m["incident_id"] for m in followups].count(case.id) == 2  # text and email


def test_a_status_callback_before_its_sid_is_recorded_is_applied_later(
    hooks: httpx.Client, town: Town
) -> None:
    form = {"MessageSid": "SMearly", "MessageStatus": "undelivered", "ErrorCode": "30003"}
    headers = signed("/hooks/twilio/status", form)
    assert hooks.post("/hooks/twilio/status", data=form, headers=headers).status_code == 204
    stray = {"MessageSid": "SMstray", "MessageStatus": "delivered", "ErrorCode": ""}
    hooks.post("/hooks/twilio/status", data=stray, headers=signed("/hooks/twilio/status", stray))
    with town.engine.begin() as conn:
        assert replay_status_callbacks(conn, NOW) == 0  # the text is not recorded yet
        conn.execute(
            deliveries.insert(),
            {"incident_id": 1, "update_seq": 1, "customer_id": "c39", "channel": "sms",
             "status": "sent", "attempts": 1, "rank": 0, "created_at": NOW,
             "next_attempt_at": NOW, "provider_ref": "SMearly"},
        )  # fmt: skip
        assert replay_status_callbacks(conn, NOW + timedelta(seconds=5)) == 1
        row = conn.execute(select(deliveries.c.status, deliveries.c.provider_status)).one()
        assert tuple(row) == ("queued", "undelivered")  # 30003: sent again
        assert replay_status_callbacks(conn, NOW + timedelta(seconds=6)) == 0  # once only
        # A callback about no text of ours is given up after a day.
        replay_status_callbacks(conn, NOW + timedelta(days=2))
        left = conn.execute(select(inbox.c.id).where(inbox.c.processed_at.is_(None))).all()
        assert left == []


def test_an_unreachable_handset_is_retried_with_backoff_then_failed_with_the_reason(
    town: Town, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 12, item 3: a handset switched off in a power cut answers 30003 to every
    text. Each resend is an attempt, waits the send retries' backoff, and the cap ends it
    in `failed` with the reason, shown by `forewarn incident show` and `forewarn status`."""
    ctx = Context.build(settings)
    with town.engine.begin() as conn:
        conn.execute(update(customers).values(channels="sms"))
    report_cabinet(settings.jsonl_feed, "cabA", "down", NOW)
    at = NOW + timedelta(minutes=3)
    run_cycle(ctx, at)
    text_39 = (deliveries.c.customer_id == "c39") & (deliveries.c.channel == "sms")

    def the_text() -> Any:
        with town.engine.connect() as conn:
            return conn.execute(select(deliveries).where(text_39)).one()

    assert (the_text().status, the_text().attempts) == ("sent", 1)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        sid = f"SMoff{attempt}"
        with town.engine.begin() as conn:
            conn.execute(update(deliveries).where(text_39).values(provider_ref=sid))
            assert apply_status(conn, sid, "undelivered", "30003", at)
            assert apply_status(conn, sid, "undelivered", "30003", at)  # a repeat: no effect
        row = the_text()
        if attempt == MAX_ATTEMPTS:
            break
        assert row.status == "queued" and row.attempts == attempt
        wait = row.next_attempt_at - at
        assert BACKOFF_BASE * 2 ** (attempt - 1) <= wait <= BACKOFF_BASE * 3 * 2 ** (attempt - 2)
        if attempt == 1:
            pipeline.deliver(ctx, at + timedelta(seconds=1))  # the next beat: not yet
            assert the_text().status == "queued"
        at = row.next_attempt_at
        pipeline.deliver(ctx, at)
        assert (the_text().status, the_text().attempts) == ("sent", attempt + 1)
    reason = f"undelivered 30003 (unreachable handset) after {MAX_ATTEMPTS} attempts"
    assert (row.status, row.error, row.attempts) == ("failed", reason, MAX_ATTEMPTS)
    sms = [json.loads(line) for line in told(settings, "c39")]
    assert len([m for m in sms if m["channel"] == "sms"]) == MAX_ATTEMPTS
    pipeline.deliver(ctx, at + timedelta(days=1))  # nothing more, ever
    assert the_text().status == "failed"

    monkeypatch.setenv("FOREWARN_DB_URL", settings.db_url.get_secret_value())
    monkeypatch.setenv("COLUMNS", "250")
    runner = CliRunner()
    shown = runner.invoke(app, ["incident", "show", str(row.incident_id)])
    assert shown.exit_code == 0, shown.output
    assert f"failed 1: {reason}" in shown.output
    status = runner.invoke(app, ["status"])
    assert status.exit_code == 0, status.output
    assert "failed 1" in status.output and f"failed 1: {reason}" in status.output
