"""What customers receive: templates in two locales that fit one GSM-7 segment, quiet
hours, the per-incident cap, and the order of channels."""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, select, update

from forewarn.channels.sms import is_gsm7, segments
from forewarn.config import Settings
from forewarn.context import Context
from forewarn.incidents.follower_news import HEARD
from forewarn.incidents.ledger import DueDelivery, Rules, channel_order, claim
from forewarn.notifiers.compose import EVENT_TEMPLATES, FOLLOWER_TEMPLATE, Brand, render
from forewarn.pipeline import detect_faults, update_incidents
from forewarn.quiet import AWAKE, NIGHT, QuietHours
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


def row(
    channel: str, locale: str | None, event: str, etr: datetime | None, **extra: Any
) -> DueDelivery:
    values: dict[str, Any] = {
        "delivery_id": 1, "incident_id": 12345, "update_seq": 1, "customer_id": "c45",
        "channel": channel, "attempts": 0, "claimed_at": None, "recipient": None,
        "sent_body": None, "sent_subject": None, "phone": "+447700900045", "email": None,
        "social": None, "locale": locale, "time_zone": "Europe/London", "opted_out": False,
        "address": ADDRESS, "event": event, "update_status": "identified",
        "update_body": "A note from ops.", "update_kind": None, "update_params": None,
        "update_at": NOW, "etr": etr,
        "next_update_at": NOW + timedelta(days=1, hours=2), "title": "Broadband fault",
        "incident_status": "identified", "area_name": "Cabinet 2, Mill Road exchange",
        "cause": None, "started_at": NOW - timedelta(hours=30), "resolved_at": None,
        "etr_warned": NOW + timedelta(hours=1), "scheduled_for": NOW + timedelta(days=2),
        "scheduled_until": NOW + timedelta(days=2, hours=4),
    }  # fmt: skip
    return DueDelivery(**{**values, **extra})


def events(channel: str) -> list[str]:
    return sorted(
        p.name.removesuffix(".txt")
        for p in (TEMPLATES / channel / "en").iterdir()
        if p.name.endswith(".txt") and ".subject" not in p.name
    )


def test_every_event_has_a_template_and_every_template_an_event() -> None:
    told = {*EVENT_TEMPLATES.values(), FOLLOWER_TEMPLATE}
    assert told == set(events("sms")) == set(events("email"))
    assert set(events("social")) == set(EVENT_TEMPLATES.values())  # nobody follows a post


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


# The longest place a follower names that a text still carries in one segment.
PLACE = "SW1A 1AA"


def follower_row(channel: str, locale: str, event: str, etr: datetime | None) -> DueDelivery:
    return row(
        channel, locale, event, etr, customer_id="follower:0123456789abcdef", address=None,
        follows=PLACE, email="neighbour@example.org" if channel == "email" else None,
    )  # fmt: skip


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("event", sorted(HEARD))
@pytest.mark.parametrize("etr", [None, NOW + timedelta(days=2, hours=3)])
def test_a_followers_text_fits_one_segment_names_their_place_and_how_to_stop(
    locale: str, event: str, etr: datetime | None
) -> None:
    # A restoration told in the morning says when it happened: the longest text.
    later = NOW + timedelta(hours=5) if event == "restored" else NOW
    body, _ = render(follower_row("sms", locale, event, etr), LONGEST, later)
    assert is_gsm7(body) and segments(body) == 1, (len(body), body)
    if event == "restored":
        assert ("restored at 14:00 GMT" if locale == "en" else "a las 14:00 GMT") in body
    assert body.endswith("STOP to end" if locale == "en" else "BAJA: STOP")
    assert ADDRESS not in body  # never a premise's words
    if event in ("opened", "expanded", "restored", "maintenance_notice"):
        assert PLACE in body


@pytest.mark.parametrize("event", sorted(HEARD))
def test_a_followers_email_says_what_the_page_says_with_its_stop_link(event: str) -> None:
    stop = "https://forewarn.example/unsubscribe/follower:0123456789abcdef/sig"
    brand = replace(LONGEST, stop_link=lambda key: stop if key.startswith("follower:") else None)
    body, subject = render(follower_row("email", "en", event, None), brand, NOW)
    assert subject and "{{" not in subject and "{{" not in body
    assert f"To stop these emails: {stop}" in body and PLACE in body
    assert "/incidents/12345.html" in body and ADDRESS not in body
    assert "A note from ops." not in body  # ops' notes to customers are not the page's news


@pytest.mark.parametrize("channel", ["sms", "email", "social"])
def test_every_channel_and_event_has_both_locales(channel: str) -> None:
    for event in events(channel):
        for locale in LOCALES:  # the follower's template too
            assert (TEMPLATES / channel / locale / f"{event}.txt").is_file(), (locale, event)
            if channel == "email":
                assert (TEMPLATES / channel / locale / f"{event}.subject.txt").is_file()


def test_spanish_customers_read_spanish_with_spanish_weekdays() -> None:
    body, _ = render(row("sms", "es", "opened", NOW + timedelta(days=1)), LONGEST, NOW)
    assert "incidencia" in body and "Arreglo: mar 14:00" in body  # 2026-11-24 is a Tuesday
    body, subject = render(row("email", "es", "opened", None), LONGEST, NOW)
    assert subject is not None and subject.startswith("Incidencia en")
    assert "Todavía no tenemos una hora de arreglo" in body


def test_a_spanish_customer_reads_the_updates_own_words_in_spanish() -> None:
    english = "Service may be interrupted."
    warned = row("email", "es", "at_risk", None, update_body=english, update_kind="at_risk",
                 update_params="{}")  # fmt: skip
    body, _ = render(warned, LONGEST, NOW)
    assert "El servicio podría interrumpirse." in body and english not in body
    # Words ops typed themselves are quoted as written.
    typed = row("email", "es", "note", None, update_body="Cable repaired at 14:00.")
    assert "Cable repaired at 14:00." in render(typed, LONGEST, NOW)[0]


def test_public_posts_and_webhooks_name_the_area_never_the_address() -> None:
    public = {"customer_id": "", "address": None, "time_zone": None}
    post, _ = render(row("social", None, "opened", None, **public), LONGEST, NOW)
    assert "Cabinet 2, Mill Road exchange" in post and len(post) <= 500
    hook = row("webhook", None, "opened", None, **public, title="Broadband fault",
               update_status="investigating", update_body="We know.", update_at=NOW,
               incident_status="investigating", resolved_at=None)  # fmt: skip
    body, _ = render(hook, LONGEST, NOW)
    assert json.loads(body)["incident"]["x_area"] == "Cabinet 2, Mill Road exchange"


def test_quiet_hours_in_the_customers_own_time_zone() -> None:
    quiet = QuietHours.parse("21:00-06:00")
    assert Rules().night == NIGHT and NIGHT.quiet == QuietHours.parse("21:00-08:00")
    assert NIGHT.sleep == QuietHours.parse("23:00-07:00")
    late = datetime(2026, 11, 23, 23, 30, tzinfo=UTC)
    assert quiet.until(late, "Europe/London") == datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
    early = datetime(2026, 11, 24, 5, 59, tzinfo=UTC)
    assert quiet.until(early, "Europe/London") == datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
    assert quiet.until(datetime(2026, 11, 24, 6, 0, tzinfo=UTC), "Europe/London") is None
    # 14:00 UTC is 09:00 in New York: not quiet there; 01:00 in Sydney: quiet.
    assert quiet.until(NOW, "America/New_York") is None
    assert not quiet.contains(NOW, "America/New_York")
    assert quiet.until(NOW, "Australia/Sydney") == datetime(2026, 11, 23, 19, 0, tzinfo=UTC)
    assert quiet.contains(NOW, "Australia/Sydney")
    assert quiet.until(late, "Not/AZone") is not None  # unknown zones count as UTC
    assert quiet.contains(late, None)  # and so does no zone
    assert QuietHours.from_setting("") is None
    daytime = QuietHours.parse("12:00-15:00")
    assert daytime.until(NOW, "UTC") == NOW.replace(hour=15)
    assert daytime.contains(NOW, "UTC") and not daytime.contains(NOW.replace(hour=15), "UTC")
    assert not QuietHours.parse("06:00-06:00").contains(NOW, "UTC")  # an empty window


def test_quiet_hours_across_midnight_and_when_they_began() -> None:
    quiet = QuietHours.parse(" 22:30 - 07:15 ")
    new_york = "America/New_York"  # UTC-5 in November
    evening = datetime(2026, 11, 24, 3, 29, tzinfo=UTC)  # 22:29 in New York
    assert not quiet.contains(evening, new_york) and quiet.since(evening, new_york) is None
    night = evening + timedelta(minutes=1)  # 22:30: the window opens
    assert quiet.contains(night, new_york)
    assert quiet.until(night, new_york) == datetime(2026, 11, 24, 12, 15, tzinfo=UTC)
    assert quiet.since(night, new_york) == night
    after_midnight = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)  # 01:00 the next day
    assert quiet.until(after_midnight, new_york) == datetime(2026, 11, 24, 12, 15, tzinfo=UTC)
    assert quiet.since(after_midnight, new_york) == night
    # The answer keeps the moment's own offset.
    resume = quiet.until(night.astimezone(ZoneInfo("Asia/Tokyo")), new_york)
    assert resume is not None and resume.utcoffset() == timedelta(hours=9)


@pytest.mark.parametrize(
    "bad", ["", "21:00", "21-06", "9:00-6:00", "21:00-06:00-07:00", "25:00-06:00", "night"]
)
def test_quiet_hours_refuse_what_is_not_a_window(bad: str) -> None:
    with pytest.raises(ValueError, match="not quiet hours"):
        QuietHours.parse(bad)


def test_a_due_delivery_is_frozen_and_every_field_is_typed() -> None:
    due = row("sms", "en", "opened", None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        due.attempts = 2  # type: ignore[misc]
    assert not hasattr(due, "__dict__")  # slotted
    hints = typing.get_type_hints(DueDelivery)
    assert set(hints) == {f.name for f in dataclasses.fields(DueDelivery)}
    assert Any not in hints.values() and all(h is not object for h in hints.values())


def outbox(settings: Settings) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted(settings.outbox.glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]


def test_the_claim_hands_out_due_deliveries(town: Town, settings: Settings) -> None:
    ctx = Context.build(settings)
    report_cabinet(settings.jsonl_feed, "cabA", "down", NOW)
    moment = NOW + timedelta(minutes=3)  # detected and queued, not yet sent
    update_incidents(ctx, detect_faults(ctx, moment).detection, moment)
    composed: list[DueDelivery] = []

    def compose(due: DueDelivery) -> tuple[str, str | None]:
        composed.append(due)
        return f"text for {due.customer_id}", None

    later = NOW + timedelta(minutes=4)
    with town.engine.begin() as conn:
        claimed = claim(conn, later, 100, Rules(night=AWAKE), compose, channels=["sms"])
    assert claimed.due and claimed.cancelled == claimed.deferred == 0
    assert len(composed) == len(claimed.due)
    for due in claimed.due:
        assert isinstance(due, DueDelivery) and due.channel == "sms"
        assert due.recipient == due.phone and due.sent_body == f"text for {due.customer_id}"
        assert due.claimed_at == later and due.attempts == 1 and due.event == "opened"
    with town.engine.connect() as conn:
        statuses = conn.execute(
            select(deliveries.c.status).where(deliveries.c.channel == "sms")
        ).scalars()
        assert set(statuses) == {"sending"}


def test_a_fault_in_sleep_hours_waits_for_morning_but_the_public_post_does_not(
    town: Town, settings: Settings
) -> None:
    ctx = Context.build(settings)
    night = datetime(2026, 11, 23, 23, 30, tzinfo=UTC)
    report_cabinet(settings.jsonl_feed, "cabA", "down", night)
    report = run_cycle(ctx, night + timedelta(minutes=3))
    assert report.dispatch.deferred == 7  # 3 by SMS and email, no. 45 by email
    assert [m.get("customer_id") for m in outbox(settings)] == [None]  # the public post
    run_cycle(ctx, night + timedelta(hours=7, minutes=29))  # 06:59 London
    assert len(outbox(settings)) == 1
    run_cycle(ctx, night + timedelta(hours=7, minutes=31))  # 07:01: the end of sleep hours
    assert len(outbox(settings)) == 8


def test_an_evening_fault_is_told_at_once_but_a_routine_update_waits(
    town: Town, settings: Settings
) -> None:
    # 21:30 in London: quiet hours, not yet sleep hours. People are online and notice.
    ctx = Context.build(settings)
    evening = datetime(2026, 11, 23, 21, 30, tzinfo=UTC)
    report_cabinet(settings.jsonl_feed, "cabA", "down", evening)
    report = run_cycle(ctx, evening + timedelta(minutes=3))
    assert report.dispatch.deferred == 0 and len(outbox(settings)) == 8
    with town.engine.begin() as conn:  # a routine update, half an hour later
        conn.execute(
            insert(incident_updates).values(
                incident_id=1, seq=2, event="note", status="identified", body="Still on it.",
                created_at=evening + timedelta(minutes=30), notify=True, deliveries_queued=False,
            )
        )  # fmt: skip
    report = run_cycle(ctx, evening + timedelta(minutes=31))
    assert report.dispatch.deferred == 7 and len(outbox(settings)) == 9  # the public post
    with town.engine.connect() as conn:
        held = set(
            conn.execute(
                select(deliveries.c.next_attempt_at).where(
                    deliveries.c.update_seq == 2, deliveries.c.status == "queued"
                )
            ).scalars()
        )
    assert held == {datetime(2026, 11, 24, 8, 0, tzinfo=UTC)}  # the end of quiet hours


def test_restored_goes_at_night_to_those_already_told_and_replaces_an_unsent_opening(
    town: Town, settings: Settings
) -> None:
    ctx = Context.build(settings)
    evening = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
    report_cabinet(settings.jsonl_feed, "cabA", "down", evening)
    run_cycle(ctx, evening + timedelta(minutes=3))  # 20:03: told
    report_cabinet(settings.jsonl_feed, "cabA", "up", evening + timedelta(hours=2))
    run_cycle(ctx, evening + timedelta(hours=2, minutes=1))
    run_cycle(ctx, evening + timedelta(hours=2, minutes=11))  # 22:11: restored, in quiet hours
    restored = [m for m in outbox(settings) if m["update_seq"] == 2 and "customer_id" in m]
    assert len(restored) == 7
    # The same outage overnight, never told: the opening is dropped, "restored" waits.
    night = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
    report_cabinet(settings.jsonl_feed, "cabB", "down", night)
    run_cycle(ctx, night + timedelta(minutes=3))
    report_cabinet(settings.jsonl_feed, "cabB", "up", night + timedelta(hours=1))
    run_cycle(ctx, night + timedelta(hours=1, minutes=1))
    run_cycle(ctx, night + timedelta(hours=1, minutes=11))
    morning = night + timedelta(hours=7, minutes=1)  # 08:01: the end of quiet hours
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


def test_over_the_days_ceiling_a_routine_update_waits_for_the_promise_never_cancelled(
    town: Town, settings: Settings
) -> None:
    # Before: a cap of messages per incident cancelled everything after it, promises too.
    ctx = Context.build(settings.model_copy(update={"routine_per_day": 1}))
    report_cabinet(settings.jsonl_feed, "cabA", "down", NOW)
    run_cycle(ctx, NOW + timedelta(minutes=3))
    promise = NOW + timedelta(hours=6)
    for seq, minutes in ((2, 30), (3, 40)):  # two routine updates for everyone affected
        with town.engine.begin() as conn:
            conn.execute(
                insert(incident_updates).values(
                    incident_id=1, seq=seq, event="note", status="identified", body="On it.",
                    created_at=NOW + timedelta(minutes=minutes), next_update_at=promise,
                    notify=True, deliveries_queued=False,
                )
            )  # fmt: skip
        report = run_cycle(ctx, NOW + timedelta(minutes=minutes + 1))
        assert report.dispatch.cancelled == 0
    assert report.dispatch.deferred == 7 and report.dispatch.sent == 1  # the public post
    with town.engine.connect() as conn:
        held = set(
            conn.execute(
                select(deliveries.c.next_attempt_at).where(deliveries.c.update_seq == 3)
                .where(deliveries.c.status == "queued")
            ).scalars()
        )  # fmt: skip
    assert held == {promise}  # the ceiling frees in a day; the promise comes first
    report = run_cycle(ctx, promise + timedelta(minutes=1))
    assert report.dispatch.cancelled == 0 and report.dispatch.sent >= 7


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
