"""Reports from anyone (issue 22, items 3 and 4): the site's "report a problem" form and an
OUT text naming an address. A report is a weak signal for its line: alone, a silent case;
from several origins behind one element, an incident found by reports; for a line
monitoring sees working, nothing. Answers never say which; floods and odd input get a
clear answer and enrol nobody. The store, pipeline and receiver as production runs them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select, update
from typer.testing import CliRunner

from forewarn import pipeline
from forewarn.cli import app
from forewarn.config import Settings
from forewarn.context import Context
from forewarn.drill import DrillResult, load_scenario, run_drill
from forewarn.incidents import followers, reporting
from forewarn.incidents.replies import Voice, handle_reply
from forewarn.receiver import TwilioHooks, create_app
from forewarn.receiver_forms import FollowDesk
from forewarn.store import (
    customers,
    deliveries,
    element_states,
    incidents,
    now_utc,
    premises,
    reports,
    secret_key,
    writing,
)
from tests import twilio_hooks
from tests.conftest import BOTH_STORES, NOW, either_store, run_cycle, serving, use_settings
from tests.town import Town, report_cabinet
from tests.twilio_hooks import signed

EXAMPLE = Path(__file__).parent.parent / "examples" / "drill"
STRANGER = "+447911124201"
VOICE = Voice("Mill Road Fibre", "", time_zone="Europe/London", site="status.example")
FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture(params=BOTH_STORES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Reports on both stores (they join text keys and compare times)."""
    return either_store(request, tmp_path)


@pytest.fixture
def ctx(town: Town, settings: Settings) -> Iterator[Context]:
    made = Context.build(
        settings.model_copy(
            update={"time_zone": "Europe/London", "public_url": "https://fw.example"}
        )
    )
    yield made
    made.close()


def report(ctx: Context, place: str, origin: str, minutes: int = 0) -> reporting.Taken:
    at = NOW + timedelta(minutes=minutes)
    return writing(
        ctx.engine,
        lambda conn: reporting.take(conn, "web", origin, place, at, ctx.policy),
        "test report",
    )


def text_in(ctx: Context, sender: str, body: str, minutes: int = 0) -> str | None:
    at = NOW + timedelta(minutes=minutes)
    voice = Voice("Mill Road Fibre", "", ctx.policy, "Europe/London", "status.example")
    return writing(
        ctx.engine, lambda conn: handle_reply(conn, "sms", sender, body, None, at, voice), "t"
    )


def open_incidents(ctx: Context) -> list[Any]:
    with ctx.engine.connect() as conn:
        return list(
            conn.execute(
                select(incidents).where(incidents.c.status != "resolved").order_by(incidents.c.id)
            )
        )


def queued_for(ctx: Context) -> set[str]:
    with ctx.engine.connect() as conn:
        return set(conn.execute(select(deliveries.c.customer_id)).scalars())


# --- what one report does ----------------------------------------------------------


def test_one_report_opens_a_silent_case_of_its_line_and_tells_nobody(ctx: Context) -> None:
    taken = report(ctx, "45 Mill Road", "198.51.100.1")
    assert taken.outcome == "case" and taken.follow == "45 Mill Road, CB1 2AB"
    run_cycle(ctx, NOW + timedelta(minutes=1))
    [case] = open_incidents(ctx)
    assert (case.scope, case.source, case.root_element) == ("premise", "report", "cpe45")
    assert not case.notify and not case.public
    assert queued_for(ctx) == set()  # a stranger's word sends the customer nothing


@pytest.mark.parametrize(
    "named", ["45 Mill Road", "45 mill road, cb1 2ab", "45, CB1 2AB", "  45   Mill Road "]
)
def test_an_address_is_found_however_it_is_written(ctx: Context, named: str) -> None:
    assert report(ctx, named, "198.51.100.2").outcome == "case"
    with ctx.engine.connect() as conn:
        assert conn.execute(select(reports.c.premise_id)).scalars().all() == ["p45"]


@pytest.mark.parametrize(
    "named", ["Mill Road", "99 Mill Road", "45", "5 Mill Road", "%", "45 Mill Road, ZZ9 9ZZ"]
)
def test_a_place_that_names_no_single_premise_is_recorded_and_opens_nothing(
    ctx: Context, named: str
) -> None:
    taken = report(ctx, named, "198.51.100.3")
    assert taken.outcome == "unknown" and taken.follow is None
    assert open_incidents(ctx) == []


def test_a_line_monitoring_sees_working_is_recorded_and_opens_nothing(ctx: Context) -> None:
    with ctx.engine.begin() as conn:
        conn.execute(
            element_states.insert(),
            [
                {"element_id": f"cpe{n}", "state": "up", "since": NOW, "observed_at": NOW,
                 "source": "jsonl", "confirmed": False, "down_since": None}
                for n in (39, 41, 43, 45)
            ],
        )  # fmt: skip
    for n, origin in zip((39, 41, 43, 45), ("a", "b", "c", "d"), strict=True):
        assert report(ctx, f"{n} Mill Road", f"198.51.100.{ord(origin)}").outcome == "seen_up"
    run_cycle(ctx, NOW + timedelta(minutes=1))
    assert open_incidents(ctx) == [] and queued_for(ctx) == set()


def test_a_report_of_a_line_in_an_open_incident_offers_that_incident(
    ctx: Context, settings: Settings
) -> None:
    report_cabinet(settings.jsonl_feed, "cabA", "down", NOW)
    run_cycle(ctx, NOW + timedelta(minutes=3))
    [area] = open_incidents(ctx)
    taken = report(ctx, "41 Mill Road", "198.51.100.9", minutes=4)
    assert (taken.outcome, taken.incident_id, taken.follow) == ("known", area.id, str(area.id))
    assert len(open_incidents(ctx)) == 1  # no case beside the incident


# --- several reports: an area's fault ---------------------------------------------


def test_reports_from_three_origins_behind_a_cabinet_open_its_incident_within_a_cycle(
    ctx: Context,
) -> None:
    for minute, (n, origin) in enumerate([(39, "198.51.100.1"), (41, "+447911124202"),
                                          (43, "198.51.100.3")]):  # fmt: skip
        report(ctx, f"{n} Mill Road", origin, minutes=minute)
    changes = run_cycle(ctx, NOW + timedelta(minutes=3)).changes
    [area] = [i for i in open_incidents(ctx) if i.scope == "area"]
    assert changes.opened == [area.id]
    assert (area.source, area.root_element) == ("reports", "cabA")
    assert [i for i in open_incidents(ctx) if i.scope == "premise"] == []  # folded in
    assert queued_for(ctx) == {"c39", "c41", "c43", "c45"}  # the cabinet's customers


def test_one_origin_naming_every_house_is_one_report_not_an_outage(ctx: Context) -> None:
    for n in (39, 41, 43, 45):
        report(ctx, f"{n} Mill Road", "203.0.113.66")
    run_cycle(ctx, NOW + timedelta(minutes=1))
    assert [i.scope for i in open_incidents(ctx)] == ["premise"] * 4
    assert queued_for(ctx) == set()
    # A second and a third person make it one: the prankster's other lines fold in too.
    report(ctx, "39 Mill Road", "198.51.100.7", minutes=2)
    report(ctx, "41 Mill Road", "198.51.100.8", minutes=3)
    run_cycle(ctx, NOW + timedelta(minutes=4))
    assert [i.scope for i in open_incidents(ctx)] == ["premise"] * 4  # 2 origins: not yet
    report(ctx, "43 Mill Road", "198.51.100.9", minutes=5)
    run_cycle(ctx, NOW + timedelta(minutes=6))
    assert [(i.scope, i.source) for i in open_incidents(ctx)] == [("area", "reports")]


def test_a_customers_own_out_makes_a_reported_line_theirs(ctx: Context) -> None:
    report(ctx, "39 Mill Road", "198.51.100.1")
    with ctx.engine.connect() as conn:
        phone = conn.execute(
            select(customers.c.phone).where(customers.c.customer_id == "c39")
        ).scalar_one()
    answer = text_in(ctx, phone, "OUT", minutes=1)
    assert answer is not None and "Next update by" in answer
    [case] = open_incidents(ctx)
    assert (case.source, case.notify) == ("reply", True)  # one case, now a conversation
    assert case.next_update_at is not None


def test_monitoring_seeing_a_reported_line_down_tells_its_customer(
    ctx: Context, settings: Settings
) -> None:
    report(ctx, "45 Mill Road", "198.51.100.1")
    feed = settings.jsonl_feed
    assert feed is not None
    with Path(feed).open("a") as handle:
        handle.write(json.dumps({"element": "cpe45", "state": "down", "at": NOW.isoformat()}))
        handle.write("\n")
    # An operator who tells customers of a lone line's fault (FOREWARN_NOTIFY_SINGLE_PREMISE)
    loud = Context.build(ctx.settings.model_copy(update={"notify_single_premise": True}))
    run_cycle(loud, NOW + timedelta(minutes=3))
    loud.close()
    [line] = open_incidents(ctx)
    assert (line.source, line.root_element, line.notify) == ("detected", "cpe45", True)
    assert queued_for(ctx) == {"c45"}  # the silent case folded in; the customer is told


# --- answers by text ---------------------------------------------------------------


def test_an_out_text_naming_a_place_is_answered_alike_whether_or_not_it_exists(
    ctx: Context,
) -> None:
    known = text_in(ctx, STRANGER, "OUT 45 Mill Road")
    unknown = text_in(ctx, "+447911124203", "OUT 99 Nowhere Lane")
    assert known is not None and unknown is not None
    assert known.replace("45 Mill Road", "X") == unknown.replace("99 Nowhere Lane", "X")
    assert "text FOLLOW and the postcode" in known
    with ctx.engine.connect() as conn:
        outcomes = conn.execute(select(reports.c.outcome).order_by(reports.c.id)).scalars()
        assert list(outcomes) == ["case", "unknown"]
        assert followers.counts(conn) == {}  # nothing followed from an address by text


def test_an_out_text_with_a_postcode_offers_it_and_yes_follows_it(ctx: Context) -> None:
    answer = text_in(ctx, STRANGER, "out 45 Mill Road, cb1 2ab")
    assert answer is not None and "Reply YES to get outage updates for CB1 2AB" in answer
    confirmed = text_in(ctx, STRANGER, "YES", minutes=1)
    assert confirmed is not None and "you will now get outage updates for CB1 2AB" in confirmed
    with ctx.engine.connect() as conn:
        (follow,) = followers.find(conn, STRANGER, "GB")
        assert conn.execute(select(reports.c.follower_id)).scalar() == follow.follower_id
    assert (follow.place_kind, follow.state) == ("postcode", "active")


def test_a_customer_texting_out_and_words_is_their_own_out(ctx: Context) -> None:
    with ctx.engine.connect() as conn:
        phone = conn.execute(
            select(customers.c.phone).where(customers.c.customer_id == "c41")
        ).scalar_one()
    answer = text_in(ctx, phone, "Out since this morning")
    assert answer is not None and "thank you for telling us" in answer
    [case] = open_incidents(ctx)
    assert (case.source, case.root_element) == ("reply", "cpe41")


def test_a_flood_of_out_texts_from_one_number_is_kept_five_times_an_hour(ctx: Context) -> None:
    answers = [text_in(ctx, STRANGER, f"OUT {n} Mill Road") for n in range(39, 55, 2)]
    assert all(answers[:5]) and answers[5:] == [None, None, None]  # not answered, not kept
    with ctx.engine.connect() as conn:
        assert conn.execute(select(reports.c.id)).scalars().all().__len__() == 5
    assert text_in(ctx, STRANGER, "OUT 39 Mill Road", minutes=61) is not None  # next hour


# --- the site's form ---------------------------------------------------------------


@pytest.fixture
def receiver(ctx: Context, town: Town) -> Iterator[httpx.Client]:
    key = writing(town.engine, lambda conn: secret_key(conn, "unsubscribe"), "key")
    desk = FollowDesk("GB", "Europe/London", key, "https://status.example/", policy=ctx.policy)
    twilio = TwilioHooks(twilio_hooks.AUTH_TOKEN, twilio_hooks.PUBLIC, VOICE)
    app = create_app(
        town.engine, None, 1_000_000, clock=lambda: NOW, twilio=twilio, unsubscribe_key=key,
        follows=desk,
    )  # fmt: skip
    with serving(app) as url, httpx.Client(base_url=url) as http:
        yield http


def test_the_form_answers_alike_whatever_the_report_came_to(
    receiver: httpx.Client, ctx: Context
) -> None:
    with ctx.engine.begin() as conn:  # no. 47's line is seen working
        conn.execute(element_states.insert().values(
            element_id="cpe47", state="up", since=NOW, observed_at=NOW, source="jsonl",
            confirmed=False, down_since=None,
        ))  # fmt: skip
    places = ["45 Mill Road", "47 Mill Road", "99 Nowhere Lane", "45 Mill Road"]
    pages = [
        receiver.post("/report", data={"place": p, "contact": "a@example.org"}) for p in places
    ]
    assert {p.status_code for p in pages} == {202}
    assert len({p.text for p in pages}) == 1  # the place is not even echoed
    assert "If the address is on our network, we will email a@example.org" in pages[0].text
    with ctx.engine.connect() as conn:
        outcomes = conn.execute(select(reports.c.outcome).order_by(reports.c.id)).scalars()
        assert list(outcomes) == ["case", "seen_up", "unknown", "known"]
        follows = followers.find(conn, "a@example.org", "GB")
    # A follow of the addresses' postcode (an area's news, never one line's), pending
    # until the emailed link is confirmed: 45 and 47 are both CB1 2AB, asked once.
    assert sorted((f.label, f.state) for f in follows) == [("CB1 2AB", "pending")]


def test_the_form_takes_a_house_number_and_postcode(receiver: httpx.Client, ctx: Context) -> None:
    page = receiver.post("/report", data={"number": "43", "postcode": "cb1 2ab", "locale": "es"})
    assert page.status_code == 202 and 'lang="es"' in page.text and "Gracias" in page.text
    with ctx.engine.connect() as conn:
        assert conn.execute(select(reports.c.premise_id)).scalar() == "p43"


@pytest.mark.parametrize(
    ("body", "status", "why"),
    [
        (b"", 400, "Give the address"),
        (b"place=+++&contact=", 400, "Give the address"),
        (b"number=45", 400, "Give the address"),
        (b"place=45+Mill+Road&contact=not-a-contact", 400, "not an email address"),
        (b"place=\xff\xfe45", 400, "could not read"),
        (b"place=45%00Mill", 400, "could not read"),
        (b"&&&==", 400, "could not read"),
        (b"place=" + b"4" * 20_000, 413, "more than this form sends"),
    ],
)
def test_hostile_reports_get_a_clear_answer_and_keep_nothing(
    receiver: httpx.Client, ctx: Context, body: bytes, status: int, why: str
) -> None:
    page = receiver.post("/report", content=body, headers=FORM)
    assert page.status_code == status and why in page.text
    with ctx.engine.connect() as conn:
        assert conn.execute(select(reports.c.id)).first() is None
        assert followers.counts(conn) == {}


def test_odd_but_readable_places_are_kept_clean_and_shown_nowhere(
    receiver: httpx.Client, ctx: Context
) -> None:
    odd = "45 Mill Road\u202e<script>alert(1)</script>\u0007" + "é" * 300
    page = receiver.post("/report", data={"place": odd})
    plain = receiver.post("/report", data={"place": "99 Nowhere Lane"})
    # The page is the same whatever was reported: nothing of the place comes back.
    assert page.status_code == 202 and page.text == plain.text
    with ctx.engine.connect() as conn:
        (kept, _) = conn.execute(select(reports.c.place).order_by(reports.c.id)).scalars()
    assert "\u202e" not in kept and "\u0007" not in kept and len(kept) <= 200


def test_a_flood_of_reports_from_one_ip_is_kept_five_times_an_hour_and_answered_alike(
    receiver: httpx.Client, ctx: Context, settings: Settings
) -> None:
    pages = [
        receiver.post("/report", data={"place": f"{n} Mill Road", "contact": STRANGER})
        for n in range(39, 79, 2)
    ]
    assert {p.status_code for p in pages} == {202} and len({p.text for p in pages}) == 1
    with ctx.engine.connect() as conn:
        assert len(conn.execute(select(reports.c.id)).all()) == 5
        assert followers.counts(conn) == {"pending": 1}  # every house is in CB1 2AB
    run_cycle(ctx, NOW + timedelta(minutes=1))
    assert [i.source for i in open_incidents(ctx)] == ["report"] * 5  # one origin: no area
    pipeline.deliver(ctx, NOW + timedelta(minutes=1))
    texts = [
        json.loads(line)
        for line in (settings.outbox / "sms.jsonl").read_text().splitlines()
        if json.loads(line)["to"] == STRANGER
    ]
    assert len(texts) == 1 and "reply YES" in texts[0]["body"]  # one confirmation, never more


def test_a_report_through_the_signed_webhook_is_answered_in_twiml(
    receiver: httpx.Client, ctx: Context
) -> None:
    form = {"From": STRANGER, "To": "+441632960000", "Body": "OUT 45 Mill Road", "MessageSid": "S1"}
    path = "/hooks/twilio/inbound"
    answer = receiver.post(path, data=form, headers=signed(path, form))
    assert answer.status_code == 200 and "we have your report of" in answer.text
    assert [i.source for i in open_incidents(ctx)] == ["report"]


# --- what ops and agents see -------------------------------------------------------


def test_ops_see_reports_in_status_incident_show_and_the_customers_history(
    ctx: Context, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_settings(monkeypatch, settings)
    monkeypatch.setenv("COLUMNS", "300")
    for minute, (n, origin) in enumerate([(39, "198.51.100.1"), (41, "198.51.100.2"),
                                          (43, "198.51.100.3")]):  # fmt: skip
        report(ctx, f"{n} Mill Road", origin, minutes=minute)
    [opened] = run_cycle(ctx, NOW + timedelta(minutes=3)).changes.opened
    shown = CliRunner().invoke(app, ["incident", "show", str(opened)])
    assert shown.exit_code == 0, shown.output
    assert "found by reports: 3 reports from the site or other numbers, from " in shown.output
    history = CliRunner().invoke(app, ["customer", "c41"])
    assert history.exit_code == 0, history.output
    assert "report (web)" in history.output and "report: case" in history.output
    assert "198.51.100.2" not in history.output  # what was said, not who said it
    with ctx.engine.begin() as conn:  # `status` counts the last day of the real clock
        conn.execute(update(reports).values(received_at=now_utc() - timedelta(hours=1)))
    status = CliRunner().invoke(app, ["status"])
    assert "reports from the site and other numbers in the last 24 h: 3" in status.output


def test_the_strangers_drill_reads_as_the_street_would_live_it(tmp_path: Path) -> None:
    result: DrillResult = run_drill(
        load_scenario(EXAMPLE / "strangers.yaml"),
        Settings(_env_file=None),  # type: ignore[call-arg]
        tmp_path / "out",
    )
    engine = create_engine(f"sqlite:///{tmp_path / 'out' / 'drill.db'}")
    with engine.connect() as conn:
        rows = list(conn.execute(select(incidents).order_by(incidents.c.id)))
        outcomes = dict(
            conn.execute(select(reports.c.place, reports.c.outcome).order_by(reports.c.id)).all()
        )
        tenison = set(
            conn.execute(
                select(customers.c.customer_id)
                .join(premises, premises.c.premise_id == customers.c.premise_id)
                .where(premises.c.element_id.like("cpe-d%"))
            ).scalars()
        )
    engine.dispose()
    [area] = [r for r in rows if r.scope == "area"]
    # Five origins: the fifth reported at 10:10, the cabinet's incident opened at 10:11.
    assert (area.source, area.root_element) == ("reports", "cabD")
    assert area.opened_at.strftime("%H:%M") == "10:11"
    opened = {
        m["customer_id"] for m in result.messages if m.get("event") == "opened" and m["customer_id"]
    }
    assert tenison and tenison <= opened
    follower = [m["body"] for m in result.messages if m.get("to") == "+447911125002"]
    assert any("Tenison Road, covering CB1 3AA" in body for body in follower)
    # Every case behind the cabinet folded in, the prankster's extra houses too.
    behind = [r for r in rows if r.scope == "premise" and r.root_element.startswith("cpe-d")]
    assert behind and all(r.status == "resolved" for r in behind)
    # One report of Station Road: that line's silent case; Chesterton Road seen working.
    [station] = [r for r in rows if r.root_element == "cpe-e001"]
    assert (station.source, station.status, station.notify) == ("report", "investigating", False)
    assert outcomes["6, CB1 3AA"] == "known"
    assert [outcomes[f"{n} Chesterton Road"] for n in (1, 2, 3)] == ["seen_up"] * 3
    assert not any(m.get("customer_id", "") and m["customer_id"].startswith("c-f") for m in
                   result.messages if m["direction"] == "out")  # fmt: skip
    assert result.summary["promised_updates_broken"] == 0
    assert result.summary["messages_in_sleep_hours"] == 0
