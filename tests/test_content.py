"""What customers receive: templates in two locales that fit one GSM-7 segment, quiet
hours, the per-incident cap, and the order of channels."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from forewarn.config import Settings
from forewarn.context import Context
from forewarn.incidents.ledger import channel_order
from forewarn.notifiers.compose import EVENT_TEMPLATES, Brand, render
from forewarn.notifiers.dispatch import Rules, quiet_until
from forewarn.notifiers.sms import is_gsm7, segments
from forewarn.store import customers, deliveries, incident_updates
from forewarn.texts import shipped_templates
from tests.conftest import NOW, run_cycle
from tests.town import Town, report_cabinet

TEMPLATES = shipped_templates()
LOCALES = ("en", "es")
# The longest values we promise one segment for: a 20-character operator name, a
# 30-character address and a 35-character site address (the README says so).
LONGEST = Brand("Mill Road Fibre Ltd.", "https://status.millroad-fibre.co.uk/", "Europe/London")
ADDRESS = "Flat 12B, 1450 Harrowgate Road"


def row(channel: str, locale: str | None, event: str, etr: datetime | None, **extra: Any) -> Any:
    values = {
        "channel": channel, "locale": locale, "event": event, "timezone": "Europe/London",
        "address": ADDRESS, "area_name": "Cabinet 2, Mill Road exchange",
        "started_at": NOW - timedelta(hours=30), "etr": etr,
        "next_update_at": NOW + timedelta(days=1, hours=2), "cause": None, "incident_id": 12345,
        "update_seq": 1, "update_status": "identified", "update_body": "A note from ops.",
        "etr_warned": NOW + timedelta(hours=1), "resolved_at": None,
        "scheduled_for": NOW + timedelta(days=2),
        "scheduled_until": NOW + timedelta(days=2, hours=4),
    }  # fmt: skip
    return SimpleNamespace(**{**values, **extra})


def events(channel: str) -> list[str]:
    return sorted(
        p.name.removesuffix(".txt")
        for p in (TEMPLATES / channel / "en").iterdir()
        if p.name.endswith(".txt") and ".subject" not in p.name
    )


def test_every_event_has_a_template_and_every_template_an_event() -> None:
    assert set(EVENT_TEMPLATES.values()) == set(events("sms")) == set(events("email"))
    assert set(events("social")) == set(events("sms"))


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("event", sorted(EVENT_TEMPLATES))
@pytest.mark.parametrize("etr", [None, NOW + timedelta(days=2, hours=3)])
def test_every_sms_fits_one_gsm7_segment(locale: str, event: str, etr: datetime | None) -> None:
    assert len(LONGEST.operator) == 20 and len(ADDRESS) == 30
    assert len(LONGEST.site_url.rstrip("/")) == 35
    body, subject = render(row("sms", locale, event, etr), LONGEST, NOW)
    assert subject is None
    assert is_gsm7(body), [c for c in body if not is_gsm7(c)]
    assert segments(body) == 1, (len(body), body)
    assert ADDRESS in body and " status.millroad-fibre.co.uk" in body


@pytest.mark.parametrize("channel", ["sms", "email", "social"])
def test_every_channel_and_event_has_both_locales(channel: str) -> None:
    for event in events(channel):
        for locale in LOCALES:
            assert (TEMPLATES / channel / locale / f"{event}.txt").is_file(), (locale, event)
            if channel == "email":
                assert (TEMPLATES / channel / locale / f"{event}.subject.txt").is_file()


def test_spanish_customers_read_spanish_with_spanish_weekdays() -> None:
    body, _ = render(row("sms", "es", "opened", NOW + timedelta(days=1)), LONGEST, NOW)
    assert "incidencia" in body and "Arreglo: mar 14:00" in body  # 2026-11-24 is a Tuesday
    body, subject = render(row("email", "es", "opened", None), LONGEST, NOW)
    assert subject is not None and subject.startswith("Incidencia en")
    assert "Todavía no tenemos una hora de arreglo" in body


def test_public_posts_and_webhooks_name_the_area_never_the_address() -> None:
    public = {"address": None, "timezone": None}
    post, _ = render(row("social", None, "opened", None, **public), LONGEST, NOW)
    assert "Cabinet 2, Mill Road exchange" in post and len(post) <= 500
    hook = row("webhook", None, "opened", None, **public, title="Broadband fault",
               update_status="investigating", update_body="We know.", update_at=NOW,
               incident_status="investigating", resolved_at=None)  # fmt: skip
    body, _ = render(hook, LONGEST, NOW)
    assert json.loads(body)["incident"]["x_area"] == "Cabinet 2, Mill Road exchange"


def test_quiet_hours_in_the_customers_own_time_zone() -> None:
    rules = Rules()  # 21:00 to 06:00
    late = datetime(2026, 11, 23, 23, 30, tzinfo=UTC)
    assert quiet_until(late, "Europe/London", rules) == datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
    early = datetime(2026, 11, 24, 5, 59, tzinfo=UTC)
    assert quiet_until(early, "Europe/London", rules) == datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
    assert quiet_until(datetime(2026, 11, 24, 6, 0, tzinfo=UTC), "Europe/London", rules) is None
    # 14:00 UTC is 09:00 in New York: not quiet there; 01:00 in Sydney: quiet.
    assert quiet_until(NOW, "America/New_York", rules) is None
    assert quiet_until(NOW, "Australia/Sydney", rules) == datetime(2026, 11, 23, 19, 0, tzinfo=UTC)
    assert quiet_until(late, "Not/AZone", rules) is not None  # unknown zones count as UTC
    start, end = Rules.parse_quiet("")
    assert quiet_until(late, "UTC", Rules(quiet_start=start, quiet_end=end)) is None
    daytime = Rules(*Rules.parse_quiet("12:00-15:00"))
    assert quiet_until(NOW, "UTC", daytime) == NOW.replace(hour=15)


def outbox(settings: Settings) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted(settings.outbox.glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]


def test_a_fault_at_night_waits_for_morning_but_the_public_post_does_not(
    town: Town, settings: Settings
) -> None:
    ctx = Context.build(settings)
    night = datetime(2026, 11, 23, 22, 0, tzinfo=UTC)
    report_cabinet(settings.jsonl_feed, "cabA", "down", night)
    report = run_cycle(ctx, night + timedelta(minutes=3))
    assert report.dispatch.deferred == 7  # 3 by SMS and email, no. 45 by email
    assert [m.get("customer_id") for m in outbox(settings)] == [None]  # the public post
    run_cycle(ctx, night + timedelta(hours=7, minutes=59))  # 05:59 London
    assert len(outbox(settings)) == 1
    run_cycle(ctx, night + timedelta(hours=8, minutes=1))  # 06:01
    assert len(outbox(settings)) == 8


def test_restored_goes_at_night_to_those_already_told_and_replaces_an_unsent_opening(
    town: Town, settings: Settings
) -> None:
    ctx = Context.build(settings)
    evening = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
    report_cabinet(settings.jsonl_feed, "cabA", "down", evening)
    run_cycle(ctx, evening + timedelta(minutes=3))  # 20:03: told
    report_cabinet(settings.jsonl_feed, "cabA", "up", evening + timedelta(hours=3))
    run_cycle(ctx, evening + timedelta(hours=3, minutes=1))
    run_cycle(ctx, evening + timedelta(hours=3, minutes=11))  # 23:11: restored, at night
    restored = [m for m in outbox(settings) if m["update_seq"] == 2 and "customer_id" in m]
    assert len(restored) == 7
    # The same outage overnight, never told: the opening is dropped, "restored" waits.
    night = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
    report_cabinet(settings.jsonl_feed, "cabB", "down", night)
    run_cycle(ctx, night + timedelta(minutes=3))
    report_cabinet(settings.jsonl_feed, "cabB", "up", night + timedelta(hours=1))
    run_cycle(ctx, night + timedelta(hours=1, minutes=1))
    run_cycle(ctx, night + timedelta(hours=1, minutes=11))
    morning = night + timedelta(hours=5, minutes=30)
    run_cycle(ctx, morning)
    cab_b = [m for m in outbox(settings) if m.get("customer_id") == "c47"]
    assert [m["update_seq"] for m in cab_b] == [2, 2]  # restored by SMS and email, no opening
    with town.engine.connect() as conn:
        dropped = conn.execute(
            select(deliveries.c.error).where(
                deliveries.c.customer_id == "c47", deliveries.c.update_seq == 1
            )
        ).scalars()
        assert set(dropped) == {"superseded by a later update"}


def test_a_customer_hears_at_most_the_cap_per_incident_but_always_restored(
    town: Town, settings: Settings
) -> None:
    ctx = Context.build(settings.model_copy(update={"max_messages_per_incident": 1}))
    report_cabinet(settings.jsonl_feed, "cabA", "down", NOW)
    run_cycle(ctx, NOW + timedelta(minutes=3))
    with town.engine.begin() as conn:  # a second routine update for everyone affected
        conn.execute(
            insert(incident_updates).values(
                incident_id=1, seq=2, event="opened", status="identified", body="Still on it.",
                created_at=NOW + timedelta(minutes=30), notify=True, deliveries_queued=False,
            )
        )  # fmt: skip
    report = run_cycle(ctx, NOW + timedelta(minutes=31))
    assert report.dispatch.cancelled == 7 and report.dispatch.sent == 1  # only the public post
    with town.engine.connect() as conn:
        errors = set(
            conn.execute(select(deliveries.c.error).where(deliveries.c.update_seq == 2)).scalars()
        )
    assert errors == {"cap of 1 messages for this incident reached", None}


def test_channel_order_puts_text_first_while_the_line_is_down() -> None:
    assert channel_order("email;sms", "opened") == ["sms", "email"]
    assert channel_order("email;sms", "restored") == ["email", "sms"]
    assert channel_order("social;email", "opened") == ["social", "email"]
    assert channel_order("sms;sms;;email", "opened") == ["sms", "email"]


def test_the_ledger_ranks_each_customers_channels(town: Town, settings: Settings) -> None:
    with town.engine.begin() as conn:
        conn.execute(update(customers).where(customers.c.customer_id == "c39").values(
            channels="email;sms"))  # fmt: skip
    ctx = Context.build(settings)
    report_cabinet(settings.jsonl_feed, "cabA", "down", NOW)
    run_cycle(ctx, NOW + timedelta(minutes=3))
    with town.engine.connect() as conn:
        ranks = dict(
            conn.execute(
                select(deliveries.c.channel, deliveries.c.rank).where(
                    deliveries.c.customer_id == "c39"
                )
            ).all()
        )
    assert ranks == {"sms": 0, "email": 1}
