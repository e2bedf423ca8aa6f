"""Real delivery through the ledger: SMS through Twilio's library to Prism (Twilio's own
OpenAPI description) and to a stateful local Twilio, email to a real SMTP server,
Mastodon posts to mastodon-mock, webhooks to a local partner."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from mastodon_mock.testing import MockServer
from pydantic import SecretStr
from sqlalchemy import select, update
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from forewarn.channels.base import Message, Outcome
from forewarn.channels.rate import RateLimiter
from forewarn.channels.sms import SmsSender
from forewarn.config import Settings
from forewarn.context import Context
from forewarn.store import customers, deliveries
from testkit.servers import INVALID_NUMBER, OPTED_OUT_NUMBER, fake_twilio, smtp_server
from tests.conftest import NOW, outage_and_restoration, run_cycle, serving
from tests.town import CABINETS, Town, report_cabinet

ACCOUNT = "AC" + "0123456789abcdef" * 2


def with_channels(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(update=changes)


def ledger(town: Town) -> list[Any]:
    with town.engine.connect() as conn:
        return list(conn.execute(select(deliveries).order_by(deliveries.c.id)))


# --- SMS -------------------------------------------------------------------


@pytest.mark.integration
def test_sms_requests_are_valid_against_twilios_own_openapi_description(prism: str) -> None:
    sms = SmsSender(
        ACCOUNT, "token", "+15005550006", api_url=prism, limiter=RateLimiter(1000), validity_s=1800,
        status_callback="https://alerts.example/hooks/twilio/status",
    )  # fmt: skip
    service = SmsSender(
        ACCOUNT, "token", "MG" + "a1" * 16, api_url=prism, limiter=RateLimiter(1000)
    )
    message = Message(1, "sms", "+447911123039", "c39", 1, 1, "Broadband fault at 39 Mill Road.")
    for notifier in (sms, service):
        [result] = notifier.send([message])
        assert result.outcome is Outcome.DELIVERED, result.detail
        assert result.ref is not None and result.ref.startswith("SM")
    # Prism checks every request against the spec: an ill-formed sender is refused (422),
    # and a refusal is permanent, never retried.
    bad = SmsSender(ACCOUNT, "token", "MGnot-a-service", api_url=prism, limiter=RateLimiter(1000))
    [refused] = bad.send([message])
    assert refused.outcome is Outcome.PERMANENT and "422" in refused.detail
    # The reconciling list call is spec-valid too.
    [found] = sms.reconcile([message])
    assert found is None or found.outcome is Outcome.DELIVERED  # not "cannot reconcile"
    unauthorised = httpx.post(f"{prism}/2010-04-01/Accounts/{ACCOUNT}/Messages.json")
    assert unauthorised.status_code == 401


@pytest.fixture
def twilio_server() -> Iterator[tuple[str, Any]]:
    with fake_twilio() as server:
        yield server


def test_invalid_and_opted_out_numbers_are_recorded_as_permanent(
    town: Town, settings: Settings, twilio_server: tuple[str, Any]
) -> None:
    url, state = twilio_server
    with town.engine.begin() as conn:
        conn.execute(update(customers).values(channels="sms"))
        conn.execute(
            update(customers).where(customers.c.customer_id == "c39").values(phone=INVALID_NUMBER)
        )
        conn.execute(
            update(customers).where(customers.c.customer_id == "c41").values(phone=OPTED_OUT_NUMBER)
        )
    ctx = Context.build(with_channels(
        settings, twilio_account_sid=ACCOUNT, twilio_auth_token=SecretStr("t"),
        sms_from="+15005550006", twilio_api_url=url, sms_rate=1000.0,
    ))  # fmt: skip
    assert "sms" not in ctx.registry.to_outbox
    report_cabinet(settings.jsonl_feed, "cabA", "down", NOW + timedelta())
    run_cycle(ctx, NOW + timedelta(minutes=3))
    rows = {r.customer_id: r for r in ledger(town) if r.channel == "sms"}
    assert rows["c39"].status == "failed" and "21211" in rows["c39"].error
    assert rows["c41"].status == "failed" and "21610" in rows["c41"].error
    assert rows["c43"].status == "sent" and rows["c43"].provider_ref.startswith("SM")
    assert rows["c39"].attempts == rows["c41"].attempts == 1  # never retried
    sent = state.bodies()
    assert sorted(sent) == [(f"+447911123{n:03d}", rows[f"c{n}"].body) for n in (43, 45)]
    assert all(m["validity_period"] == "1800" for m in state.messages)
    # A later cycle retries nothing permanent.
    run_cycle(ctx, NOW + timedelta(hours=2))
    assert len(state.messages) == 2


def test_429_and_5xx_back_off_and_are_sent_once_later(
    town: Town, settings: Settings, twilio_server: tuple[str, Any]
) -> None:
    url, state = twilio_server
    state.fail_next = [429, 503]
    with town.engine.begin() as conn:
        conn.execute(update(customers).values(channels="sms"))
    ctx = Context.build(with_channels(
        settings, twilio_account_sid=ACCOUNT, twilio_auth_token=SecretStr("t"),
        sms_from="+15005550006", twilio_api_url=url, sms_rate=1000.0, send_concurrency=1,
    ))  # fmt: skip
    report_cabinet(settings.jsonl_feed, "cabA", "down", NOW + timedelta())
    run_cycle(ctx, NOW + timedelta(minutes=3))
    rows = [r for r in ledger(town) if r.channel == "sms"]
    waiting = [r for r in rows if r.status == "queued"]
    assert len(waiting) == 2 and all(
        r.next_attempt_at > NOW + timedelta(minutes=3) for r in waiting
    )
    assert all(
        r.error.startswith("twilio 429") or r.error.startswith("twilio 503") for r in waiting
    )
    run_cycle(ctx, NOW + timedelta(minutes=10))
    assert {r.status for r in ledger(town) if r.channel == "sms"} == {"sent"}
    assert sorted(state.bodies().values()) == [1, 1, 1, 1]  # four customers, once each


# --- email -----------------------------------------------------------------


@pytest.mark.integration
def test_email_reaches_a_real_smtp_server_once_per_recipient_per_update(
    town: Town, settings: Settings
) -> None:
    with smtp_server() as (url, mailbox):
        ctx = Context.build(with_channels(
            settings, smtp_url=SecretStr(url), email_from="alerts@millroad.example",
            public_url="https://alerts.millroad.example",
        ))  # fmt: skip
        outage_and_restoration(ctx, settings)
        run_cycle(ctx, NOW + timedelta(hours=1, minutes=12))
    received = mailbox.received
    houses = CABINETS["cabA"]
    assert sorted(str(m["To"]) for m in received) == sorted(
        f"house{n}@example.org" for n in houses for _ in (1, 2)
    )
    assert len(mailbox.by_message_id()) == len(received) == 2 * len(houses)
    opened = next(
        m for m in received if m["To"] == "house39@example.org" and "fault" in m["Subject"]
    )
    assert opened["From"] == "alerts@millroad.example"
    assert opened["List-Unsubscribe"].startswith(
        "<https://alerts.millroad.example/unsubscribe/c39/"
    )
    assert opened["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text, html = (part.get_content() for part in opened.iter_parts())
    assert "39 Mill Road" in text and "39 Mill Road" in html and "<a href=" in html
    rows = {(r.customer_id, r.update_seq): r for r in ledger(town) if r.channel == "email"}
    assert rows[("c39", 1)].provider_ref == opened["Message-ID"]


# --- social ----------------------------------------------------------------


@pytest.fixture
def mastodon() -> Iterator[str]:
    with MockServer() as server:
        yield server.base_url


@pytest.mark.integration
def test_one_public_thread_per_incident_in_area_words_and_idempotent(
    town: Town, settings: Settings, mastodon: str
) -> None:
    ctx = Context.build(with_channels(
        settings, mastodon_url=mastodon, mastodon_token=SecretStr("alice_token"),
        social_rate=1000.0,
    ))  # fmt: skip
    outage_and_restoration(ctx, settings)
    posts = [r for r in ledger(town) if r.channel == "social"]
    assert [(p.update_seq, p.status) for p in posts] == [(1, "sent"), (2, "sent")]
    http = httpx.Client(base_url=mastodon, headers={"Authorization": "Bearer alice_token"})
    first = http.get(f"/api/v1/statuses/{posts[0].provider_ref}").json()
    second = http.get(f"/api/v1/statuses/{posts[1].provider_ref}").json()
    assert second["in_reply_to_id"] == first["id"] and first["visibility"] == "public"
    houses = [n for cabinet in CABINETS.values() for n in cabinet]
    for status in (first, second):
        assert not [n for n in houses if f"{n} Mill Road" in status["content"]]
        assert "@example.org" not in status["content"] and "+44" not in status["content"]
    # A crash after the post but before it was recorded: the resend carries the same
    # Idempotency-Key, and the server answers with the post it already has.
    with town.engine.begin() as conn:
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id == posts[1].id)
            .values(status="sending", provider_ref=None, claimed_at=NOW)
        )
    run_cycle(ctx, NOW + timedelta(hours=2))
    again = [r for r in ledger(town) if r.channel == "social"]
    assert again[1].status == "sent" and again[1].provider_ref == posts[1].provider_ref
    account = http.get("/api/v1/accounts/verify_credentials").json()["id"]
    timeline = http.get(f"/api/v1/accounts/{account}/statuses", params={"limit": 40}).json()
    assert sorted(s["id"] for s in timeline) == sorted(p.provider_ref for p in posts)


# --- webhook ---------------------------------------------------------------


def test_partners_get_statuspage_shaped_webhooks(town: Town, settings: Settings) -> None:
    received: list[tuple[dict[str, str], Any]] = []

    async def hook(request: Request) -> Response:
        received.append((dict(request.headers), json.loads(await request.body())))
        return Response(status_code=204)

    app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    with serving(app) as url:
        ctx = Context.build(with_channels(settings, webhook_urls=SecretStr(f"{url}/hook?key=k")))
        report_cabinet(settings.jsonl_feed, "cabA", "down", NOW + timedelta())
        run_cycle(ctx, NOW + timedelta(minutes=3))
    [(headers, body)] = received
    assert headers["x-forewarn-delivery"].startswith("1-1-partner:")
    incident = body["incident"]
    assert incident["id"] == "1" and incident["status"] == "investigating"
    assert incident["incident_updates"][0]["status"] == "investigating"
    assert incident["shortlink"].endswith("/incidents/1.html")
    # The place is the street (12 homes: over the floor), never a home on it.
    assert "Outage: Mill Road" in json.dumps(body)
    assert not re.search(r"\d+ Mill Road", json.dumps(body))
