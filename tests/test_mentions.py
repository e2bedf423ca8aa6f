"""One memory across channels: social mentions read from a real Mastodon stand-in
(mastodon-mock) and answered from the customer's own history, and the contact history
after a conversation by text, email and social."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from mastodon_mock.testing import MockServer
from pydantic import SecretStr
from sqlalchemy import update

from forewarn.channels.social import SocialSender
from forewarn.config import Settings
from forewarn.context import Context
from forewarn.incidents.history import find_customers, history
from forewarn.incidents.mentions import answer_mentions
from forewarn.incidents.replies import Voice, handle_reply
from forewarn.store import customers
from tests.conftest import NOW, run_cycle
from tests.town import Town, report_cabinet

# Every test here talks to mastodon-mock's server.
pytestmark = pytest.mark.integration


@pytest.fixture
def mastodon() -> Iterator[str]:
    with MockServer() as server:
        yield server.base_url


def post(base: str, token: str, text: str) -> dict[str, Any]:
    response = httpx.post(
        f"{base}/api/v1/statuses",
        data={"status": text},
        headers={"Authorization": f"Bearer {token}"},
    )
    response.raise_for_status()
    return dict(response.json())


def replies_to(base: str, status_id: str) -> list[dict[str, Any]]:
    """alice's statuses answering `status_id` (public ones and direct messages)."""
    response = httpx.get(
        f"{base}/api/v1/statuses/{status_id}/context",
        headers={"Authorization": "Bearer alice_token"},
    )
    response.raise_for_status()
    return [s for s in response.json()["descendants"] if s["account"]["username"] == "alice"]


@pytest.fixture
def conversation(town: Town, settings: Settings, mastodon: str) -> tuple[Any, Settings]:
    """No. 41 (bob on social) takes texts, email and social; cabinets A and B go down."""
    with town.engine.begin() as conn:
        conn.execute(
            update(customers)
            .where(customers.c.customer_id == "c41")
            .values(social="@bob", channels="sms;email;social")
        )
    changed = settings.model_copy(update={
        "mastodon_url": mastodon, "mastodon_token": SecretStr("alice_token"),
        "social_rate": 1000.0, "privacy_floor": 4,
    })  # fmt: skip
    ctx = Context.build(changed)
    report_cabinet(changed.jsonl_feed, "cabA", "down", NOW)
    report_cabinet(changed.jsonl_feed, "cabB", "down", NOW)
    run_cycle(ctx, NOW + timedelta(minutes=3))
    return ctx, changed


def test_a_known_customer_is_answered_with_their_own_incident_in_private(
    conversation: tuple[Any, Settings], mastodon: str
) -> None:
    ctx, _ = conversation
    mention = post(mastodon, "bob_token", "@alice my internet is down again!")
    stranger = post(mastodon, "carol_token", "@alice is something broken in town?")
    account = SocialSender(mastodon, "alice_token")
    assert answer_mentions(ctx.engine, account, ctx.brand, NOW + timedelta(minutes=5), 4) == 2
    answers = replies_to(mastodon, mention["id"])
    direct = [s for s in answers if s["visibility"] == "direct"]
    public = [s for s in answers if s["visibility"] == "public"]
    assert len(direct) == 1 and len(public) == 1
    assert "41 Mill Road" in direct[0]["content"]
    assert "We last told you by" in direct[0]["content"]  # what they already know
    # The public reply points at the page and says nothing personal: not even the place,
    # which beside the customer's handle would tell the world their street.
    assert "working on a fault: <a" in public[0]["content"]
    assert "PON" not in public[0]["content"] and "OLT" not in public[0]["content"]
    for personal in ("41 Mill Road", "Mill Road", "07911", "house41", "c41"):
        assert personal not in public[0]["content"]
    (to_stranger,) = replies_to(mastodon, stranger["id"])
    assert to_stranger["visibility"] == "public" and "localhost:8000" in to_stranger["content"]
    assert "working on faults in" in to_stranger["content"]
    # Read again: nothing new, nothing answered twice.
    assert answer_mentions(ctx.engine, account, ctx.brand, NOW + timedelta(minutes=6), 4) == 0
    assert len(replies_to(mastodon, mention["id"])) == 2


def test_contact_history_after_text_email_and_social(
    conversation: tuple[Any, Settings], mastodon: str
) -> None:
    ctx, settings = conversation
    voice = Voice(settings.operator_name, settings.help_text, ctx.policy)
    with ctx.engine.begin() as conn:
        (c41,) = find_customers(conn, "c41")
        handle_reply(conn, "sms", c41.phone, "HELP", "SM1", NOW + timedelta(minutes=4), voice)
    post(mastodon, "bob_token", "@alice any news?")
    account = SocialSender(mastodon, "alice_token")
    answer_mentions(ctx.engine, account, ctx.brand, NOW + timedelta(minutes=5), 4)
    report_cabinet(settings.jsonl_feed, "cabA", "up", NOW + timedelta(hours=1))
    report_cabinet(settings.jsonl_feed, "cabB", "up", NOW + timedelta(hours=1))
    run_cycle(ctx, NOW + timedelta(hours=1, minutes=1))
    run_cycle(ctx, NOW + timedelta(hours=1, minutes=11))
    with ctx.engine.connect() as conn:
        lines = history(conn, "c41")
        # Found by handle too, however it is written.
        assert [c.customer_id for c in find_customers(conn, "@BOB")] == ["c41"]
    seen = [(e.direction, e.channel, e.status) for e in lines]
    assert [e.at for e in lines] == sorted((e.at for e in lines), reverse=True)
    # Newest first: "restored" on all three channels, then the mention, the HELP, the opening.
    newest = [e for e in lines if e.at == lines[0].at]
    assert {(e.direction, e.channel) for e in newest} == {
        ("out", "sms"),
        ("out", "email"),
        ("out", "social"),
    }
    assert all("back" in e.text or "restored" in e.text or "working again" in e.text
               for e in newest)  # fmt: skip
    order = [s for s in seen if s[0] == "in"]
    assert order == [("in", "social", "mention"), ("in", "sms", "help")]
    opened = [e for e in lines if e.direction == "out" and e.at == NOW + timedelta(minutes=3)]
    assert {e.channel for e in opened} == {"sms", "email", "social"}
    mention = next(e for e in lines if e.status == "mention")
    assert mention.answer and "41 Mill Road" in mention.answer
