"""Following a place without an account (issue 22, item 1): asked on the site's form or by
a FOLLOW text, nothing until confirmed, then the page's news of that place (opening,
restoration) and nothing of a fault elsewhere; STOP and the email's link end it; limits
hold against floods. The store and pipeline as production runs them; the receiver real."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from forewarn import pipeline
from forewarn.channels.unsubscribe import sign, verify
from forewarn.config import Settings
from forewarn.context import Context
from forewarn.incidents import followers
from forewarn.incidents.followers import Limits
from forewarn.incidents.replies import Voice, handle_reply
from forewarn.notifiers.confirmations import confirm_path, confirms
from forewarn.receiver import TwilioHooks, create_app
from forewarn.receiver_forms import FollowDesk
from forewarn.store import customers, deliveries, incidents, premises, secret_key, writing
from tests import twilio_hooks
from tests.conftest import (
    BOTH_STORES,
    NOW,
    either_store,
    run_cycle,
    serving,
    use_settings,
)
from tests.town import Town, report_cabinet
from tests.twilio_hooks import signed

NEIGHBOUR = "+447911124123"
ELSEWHERE = "CB1 3CD"  # cabinet C's houses, moved to a postcode of their own
VOICE = Voice("Mill Road Fibre", "", time_zone="Europe/London", site="status.example")


@pytest.fixture(params=BOTH_STORES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Followers on both stores (their queries compare text keys with incident ids)."""
    return either_store(request, tmp_path)


@pytest.fixture
def ctx(town: Town, settings: Settings) -> Iterator[Context]:
    with town.engine.begin() as conn:
        conn.execute(
            update(premises)
            .where(premises.c.premise_id.in_(["p2", "p4", "p6", "p8"]))
            .values(postcode=ELSEWHERE)
        )
    made = Context.build(
        settings.model_copy(
            update={"time_zone": "Europe/London", "public_url": "https://fw.example"}
        )
    )
    yield made
    made.close()


def outbox(settings: Settings, channel: str) -> list[dict[str, Any]]:
    path = settings.outbox / f"{channel}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def to(settings: Settings, channel: str, contact: str) -> list[str]:
    return [m["body"] for m in outbox(settings, channel) if m["to"] == contact]


def asked_on_form(
    ctx: Context, contact: str, place: str, origin: str = "192.0.2.1", **kw: Any
) -> followers.Asked:
    channel, address = followers.contact_of(contact, "GB")

    def work(conn: Any) -> followers.Asked:
        return followers.ask(
            conn, channel, address, place, "en", "Europe/London", "web", origin, NOW, **kw
        )

    return writing(ctx.engine, work, "test")


def ask(ctx: Context, contact: str, place: str, origin: str = "192.0.2.1", **kw: Any) -> str:
    asked = asked_on_form(ctx, contact, place, origin, **kw)
    assert asked.follower_id is not None, asked.reason
    return asked.follower_id


def text_in(ctx: Context, sender: str, body: str, minutes: int = 1) -> str | None:
    at = NOW + timedelta(minutes=minutes)
    return writing(
        ctx.engine, lambda conn: handle_reply(conn, "sms", sender, body, None, at, VOICE), "t"
    )


def outage_and_restoration(ctx: Context, settings: Settings, cabinet: str = "cabA") -> None:
    report_cabinet(settings.jsonl_feed, cabinet, "down", NOW + timedelta(minutes=5))
    run_cycle(ctx, NOW + timedelta(minutes=8))
    report_cabinet(settings.jsonl_feed, cabinet, "up", NOW + timedelta(hours=1))
    run_cycle(ctx, NOW + timedelta(hours=1, minutes=1))
    run_cycle(ctx, NOW + timedelta(hours=1, minutes=11))


def test_a_neighbour_confirmed_by_yes_hears_the_opening_and_the_restoration_of_their_postcode(
    ctx: Context, settings: Settings
) -> None:
    ask(ctx, NEIGHBOUR, "cb12ab")  # as typed: the network's "CB1 2AB"
    pipeline.deliver(ctx, NOW)
    assert to(settings, "sms", NEIGHBOUR) == [
        "Mill Road Fibre: reply YES to get outage updates for CB1 2AB. Not you? Ignore this: "
        "we will not text again."
    ]
    answer = text_in(ctx, NEIGHBOUR, "yes")
    assert answer == (
        "Mill Road Fibre: you will now get outage updates for CB1 2AB. Reply STOP to end them."
    )
    outage_and_restoration(ctx, settings)
    said = to(settings, "sms", NEIGHBOUR)[1:]
    assert len(said) == 2, said
    assert said[0].startswith("Mill Road Fibre: broadband fault in Mill Road, covering CB1 2AB.")
    assert said[1].startswith("Mill Road Fibre: broadband in CB1 2AB is back.")
    assert all(s.endswith("STOP to end") and not re.search(r"\d+ Mill Road", s) for s in said)


def test_nothing_reaches_a_follow_never_confirmed_nor_a_follower_of_a_place_not_affected(
    ctx: Context, settings: Settings
) -> None:
    ask(ctx, NEIGHBOUR, "CB1 2AB")
    pipeline.deliver(ctx, NOW)  # the confirmation text, never answered
    elsewhere = ask(ctx, "+447911124777", ELSEWHERE)
    writing(ctx.engine, lambda c: followers.confirm(c, [elsewhere], "test", NOW), "t")
    outage_and_restoration(ctx, settings)
    assert len(to(settings, "sms", NEIGHBOUR)) == 1  # the confirmation alone
    assert to(settings, "sms", "+447911124777") == []
    with ctx.engine.connect() as conn:
        keys = set(conn.execute(select(deliveries.c.customer_id)).scalars())
    assert not any(followers.is_follower(k) for k in keys)


def test_a_number_that_never_confirms_gets_one_confirmation_never_more(
    ctx: Context, settings: Settings
) -> None:
    for n, place in enumerate(["CB1 2AB", ELSEWHERE, "39 Mill Road", "41 mill road, cb1 2ab"]):
        ask(ctx, NEIGHBOUR, place, origin=f"192.0.2.{n}")
        pipeline.deliver(ctx, NOW + timedelta(minutes=n))
    assert len(to(settings, "sms", NEIGHBOUR)) == 1
    # Having confirmed one, the number is asked about one more place, and again waits.
    assert text_in(ctx, NEIGHBOUR, "YES") is not None
    for n in range(3):
        pipeline.deliver(ctx, NOW + timedelta(minutes=9 + n))
    assert len(to(settings, "sms", NEIGHBOUR)) == 2


def test_stop_ends_every_follow_of_the_number_and_the_form_never_texts_it_again(
    ctx: Context, settings: Settings
) -> None:
    ask(ctx, NEIGHBOUR, "CB1 2AB")
    pipeline.deliver(ctx, NOW)
    text_in(ctx, NEIGHBOUR, "YES")
    ask(ctx, NEIGHBOUR, ELSEWHERE)
    assert text_in(ctx, NEIGHBOUR, "STOP", minutes=2) == (
        "Mill Road Fibre: you will get no more outage messages from us. Reply START to get "
        "them again."
    )
    with ctx.engine.connect() as conn:
        found = followers.find(conn, NEIGHBOUR, "GB")
    assert {f.state for f in found} == {"stopped"} and len(found) == 2
    again = asked_on_form(ctx, NEIGHBOUR, "CB1 2AB", origin="198.51.100.7")
    assert again.follower_id is None and again.reason == f"{NEIGHBOUR} said STOP"
    pipeline.deliver(ctx, NOW + timedelta(minutes=3))
    outage_and_restoration(ctx, settings)
    assert len(to(settings, "sms", NEIGHBOUR)) == 1  # the first confirmation only


def test_after_stop_a_form_asking_the_same_place_again_neither_texts_nor_reopens_the_follow(
    ctx: Context, settings: Settings
) -> None:
    # Before: the stopped row was reused and its STOP forgotten, so a stranger could have
    # the number texted again after every STOP, and a message held for the morning went.
    ask(ctx, NEIGHBOUR, "CB1 2AB")
    pipeline.deliver(ctx, NOW)
    text_in(ctx, NEIGHBOUR, "YES")
    text_in(ctx, NEIGHBOUR, "STOP", minutes=2)
    assert asked_on_form(ctx, NEIGHBOUR, "CB1 2AB", origin="198.51.100.7").follower_id is None
    pipeline.deliver(ctx, NOW + timedelta(minutes=3))
    outage_and_restoration(ctx, settings)
    assert len(to(settings, "sms", NEIGHBOUR)) == 1
    # Their own FOLLOW text may undo their STOP: it asks again, and YES confirms again.
    assert "reply YES" in (text_in(ctx, NEIGHBOUR, "FOLLOW CB1 2AB", minutes=90) or "")


def test_an_unconfirmed_follow_hears_nothing_even_of_news_already_queued(
    ctx: Context, settings: Settings
) -> None:
    from forewarn.incidents.ledger.due import _as_follower

    row = {"f_contact": NEIGHBOUR, "f_channel": "sms", "f_label": "CB1 2AB", "f_locale": "en",
           "f_zone": "Europe/London", "f_state": "pending"}  # fmt: skip
    assert _as_follower(dict(row))["opted_out"] is True
    assert _as_follower({**row, "f_state": "active"})["opted_out"] is False


def test_the_form_never_texts_a_customer_who_opted_out_nor_a_number_we_would_pay_extra_for(
    ctx: Context, town: Town
) -> None:
    with town.engine.begin() as conn:
        phone = conn.execute(
            select(customers.c.phone).where(customers.c.customer_id == "c39")
        ).scalar_one()
        conn.execute(
            update(customers).where(customers.c.customer_id == "c39").values(opted_out=True)
        )
    refused = asked_on_form(ctx, phone, "CB1 2AB")
    assert refused.follower_id is None and "said STOP" in refused.reason
    # Premium-rate, satellite, a landline, another country's mobile: refused as contacts.
    for typed in ("+19005550100", "+88216123456", "01223 000000", "+33612345678"):
        with pytest.raises(followers.FollowError):
            followers.contact_of(typed, "GB")


def test_a_follow_text_asks_for_yes_and_addresses_are_not_looked_up_by_text(ctx: Context) -> None:
    assert text_in(ctx, NEIGHBOUR, "FOLLOW cb1 2ab") == (
        "Mill Road Fibre: reply YES to get outage updates for CB1 2AB. Not you? Ignore this: "
        "we will not text again."
    )
    assert text_in(ctx, NEIGHBOUR, "REG 45 Mill Road") == (
        'Mill Road Fibre: we found no postcode or incident "45 Mill Road". Text FOLLOW and a '
        "postcode, e.g. FOLLOW CB1 2AB."
    )
    assert "CB1 2AB" in (text_in(ctx, NEIGHBOUR, "Yes") or "")
    said = text_in(ctx, "+447911124555", "SEGUIR CB1 2AB")
    assert said is not None and said.startswith("Mill Road Fibre: responda YES")


def test_status_from_a_follower_names_their_places_and_the_fault_there(
    ctx: Context, settings: Settings
) -> None:
    text_in(ctx, NEIGHBOUR, "FOLLOW CB1 2AB")
    text_in(ctx, NEIGHBOUR, f"FOLLOW {ELSEWHERE}")
    text_in(ctx, NEIGHBOUR, "YES")
    report_cabinet(settings.jsonl_feed, "cabA", "down", NOW + timedelta(minutes=5))
    run_cycle(ctx, NOW + timedelta(minutes=8))
    said = text_in(ctx, NEIGHBOUR, "STATUS", minutes=10) or ""
    assert said.startswith("Mill Road Fibre: CB1 2AB: Mill Road has a fault, no fix time yet")
    assert f"{ELSEWHERE}: no known fault." in said


def test_a_follow_of_an_incident_ends_when_it_is_resolved(ctx: Context, settings: Settings) -> None:
    report_cabinet(settings.jsonl_feed, "cabA", "down", NOW + timedelta(minutes=5))
    run_cycle(ctx, NOW + timedelta(minutes=8))
    with ctx.engine.connect() as conn:
        incident = conn.execute(select(deliveries.c.incident_id).limit(1)).scalar_one()
    follower = ask(ctx, "neighbour@example.org", f"incident {incident}")
    writing(ctx.engine, lambda c: followers.confirm(c, [follower], "test", NOW), "t")
    report_cabinet(settings.jsonl_feed, "cabA", "up", NOW + timedelta(hours=1))
    run_cycle(ctx, NOW + timedelta(hours=1, minutes=1))
    run_cycle(ctx, NOW + timedelta(hours=1, minutes=11))
    mails = [m for m in outbox(settings, "email") if m["to"] == "neighbour@example.org"]
    assert [m["subject"] for m in mails][-1] == f"Broadband is back in Mill Road ({incident})"
    assert "To stop these emails: https://fw.example/unsubscribe/follower:" in mails[-1]["body"]
    with ctx.engine.connect() as conn:
        (ended,) = followers.find(conn, follower, "GB")
    assert ended.state == "ended" and ended.end_reason == "incident resolved"


def test_limits_hold_per_origin_per_place_and_per_contact(ctx: Context) -> None:
    limits = Limits(per_origin_hour=3, per_place_hour=4, per_contact=2)

    def asked(contact: str, place: str, origin: str) -> str | None:
        channel, address = followers.contact_of(contact, "GB")
        return writing(
            ctx.engine,
            lambda conn: (
                followers.ask(
                    conn, channel, address, place, "en", "UTC", "web", origin, NOW, limits
                ).follower_id
            ),
            "t",
        )

    made = [asked(f"+4479111241{n:02d}", "CB1 2AB", "192.0.2.1") for n in range(5)]
    assert [m is not None for m in made] == [True, True, True, False, False]  # one IP: 3
    made = [asked(f"+4479111242{n:02d}", "CB1 2AB", f"192.0.2.{10 + n}") for n in range(3)]
    assert [m is not None for m in made] == [True, False, False]  # one place: 4 an hour
    with ctx.engine.begin() as conn:  # nos. 51 and 53 in postcodes of their own
        for premise, code in (("p51", "CB1 4EF"), ("p53", "CB1 5GH")):
            conn.execute(
                update(premises).where(premises.c.premise_id == premise).values(postcode=code)
            )
    mine = [asked("me@example.org", p, f"192.0.3.{n}") for n, p in enumerate(
        [ELSEWHERE, "CB1 4EF", "CB1 5GH"]
    )]  # fmt: skip
    assert [m is not None for m in mine] == [True, True, False]  # one contact: 2
    assert asked("you@example.org", "CB1 5GH", "192.0.3.10") is not None  # it is a place


@pytest.mark.parametrize(
    ("typed", "why"),
    [
        ("", "follow_no_contact"),
        ("not an address", "follow_bad_contact"),
        ("a@b@c", "follow_bad_contact"),
        ("me@example.org\r\nBcc: you@example.org", "follow_bad_contact"),
        ("07700 9", "follow_bad_contact"),
        ("9" * 5000, "follow_bad_contact"),
    ],
)
def test_a_contact_that_cannot_be_written_to_is_refused_with_why(typed: str, why: str) -> None:
    with pytest.raises(followers.FollowError, match=why):
        followers.contact_of(typed, "GB")


def test_the_import_refuses_a_customer_id_a_followers_key_could_take(
    tmp_path: Path, settings: Settings
) -> None:
    from forewarn.network.csvfile import CUSTOMER_COLUMNS, TOPOLOGY_COLUMNS
    from forewarn.network.importer import import_network
    from forewarn.store import make_engine
    from tests.town import customer_rows, topology_rows, write_csv

    rows = customer_rows()
    rows[0][0] = "follower:0123456789abcdef"
    engine = make_engine(settings.db_url)
    report = import_network(
        engine,
        write_csv(tmp_path / "t.csv", TOPOLOGY_COLUMNS, topology_rows()),
        write_csv(tmp_path / "c.csv", CUSTOMER_COLUMNS, rows),
        None,
        NOW,
        "GB",
    )
    engine.dispose()
    assert any("may not start with 'follower:'" in p.reason for p in report.problems)


# --- the receiver ------------------------------------------------------------------


@pytest.fixture
def receiver(ctx: Context, town: Town) -> Iterator[httpx.Client]:
    key = writing(town.engine, lambda conn: secret_key(conn, "unsubscribe"), "key")
    desk = FollowDesk("GB", "Europe/London", key, "https://status.example/")
    twilio = TwilioHooks(twilio_hooks.AUTH_TOKEN, twilio_hooks.PUBLIC, VOICE)
    app = create_app(
        town.engine, None, 1_000_000, clock=lambda: NOW, twilio=twilio, unsubscribe_key=key,
        follows=desk,
    )  # fmt: skip
    with serving(app) as url, httpx.Client(base_url=url) as http:
        yield http


def test_the_form_answers_the_same_whether_or_not_the_place_exists(
    receiver: httpx.Client, ctx: Context
) -> None:
    known = receiver.post("/follow", data={"contact": NEIGHBOUR, "place": "45 Mill Road"})
    unknown = receiver.post("/follow", data={"contact": NEIGHBOUR, "place": "99 Nowhere Lane"})
    assert known.status_code == unknown.status_code == 202
    assert known.text.replace("45 Mill Road", "X") == unknown.text.replace("99 Nowhere Lane", "X")
    assert "Reply YES" in known.text and "Nothing is sent until you confirm" in known.text
    with ctx.engine.connect() as conn:
        (only,) = followers.find(conn, NEIGHBOUR, "GB")
    # An address is followed as its postcode: the page's news of an area, never of one line.
    assert only.label == "CB1 2AB" and only.state == "pending"
    assert only.requested_from == "127.0.0.1" and only.requested_via == "web"


def test_the_confirmation_is_alike_for_an_address_on_the_network_and_one_not(
    receiver: httpx.Client, ctx: Context, settings: Settings
) -> None:
    # Before, only an address the network knew got a confirmation, naming it as the
    # network spells it: anyone could learn who is a customer with their own mailbox.
    receiver.post("/follow", data={"contact": "a@example.org", "place": "45 mill road, cb1 2ab"})
    receiver.post("/follow", data={"contact": "b@example.org", "place": "99 Mill Road, CB1 2AB"})
    pipeline.deliver(ctx, NOW)
    mails = {m["to"]: m for m in outbox(settings, "email")}
    assert set(mails) == {"a@example.org", "b@example.org"}
    link = re.compile(r"https://fw\.example/follow/confirm/\S+")
    a, b = (link.sub("LINK", mails[who]["body"]) for who in ("a@example.org", "b@example.org"))
    assert a == b and "CB1 2AB" in a and "45 Mill Road" not in a and "99 Mill" not in a
    assert mails["a@example.org"]["subject"] == mails["b@example.org"]["subject"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"contact=&place=CB1+2AB", 400),
        (b"contact=%2B447700900123&place=", 400),
        (b"contact=%ff%fe&place=CB1", 400),
        (b"contact=a%00b%40c.d&place=CB1", 400),
        (b"&&&==", 400),
        (b"contact=" + b"x" * 20_000, 413),
    ],
)
def test_hostile_forms_get_a_clear_answer_and_enrol_nobody(
    receiver: httpx.Client, ctx: Context, body: bytes, status: int
) -> None:
    answer = receiver.post(
        "/follow", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert answer.status_code == status and "<h1>We could not take that</h1>" in answer.text
    with ctx.engine.connect() as conn:
        assert followers.counts(conn) == {}


def test_a_flood_from_one_address_enrols_ten_and_texts_each_number_once(
    receiver: httpx.Client, ctx: Context, settings: Settings
) -> None:
    for n in range(30):
        receiver.post("/follow", data={"contact": NEIGHBOUR, "place": f"{39 + n} Mill Road"})
        receiver.post("/follow", data={"contact": f"+4479111243{n:02d}", "place": "CB1 2AB"})
    with ctx.engine.connect() as conn:
        assert followers.counts(conn) == {"pending": 10}
    pipeline.deliver(ctx, NOW)
    numbers = [m["to"] for m in outbox(settings, "sms")]
    assert len(numbers) == len(set(numbers)) <= 10


def test_the_emailed_link_shows_a_button_and_only_the_button_confirms(
    receiver: httpx.Client, ctx: Context, settings: Settings
) -> None:
    answer = receiver.post(
        "/follow", data={"contact": "Neighbour@Example.org", "place": "cb1 2ab", "locale": "es"}
    )
    assert answer.status_code == 202 and 'lang="es"' in answer.text
    pipeline.deliver(ctx, NOW)
    (mail,) = outbox(settings, "email")
    assert mail["to"] == "neighbour@example.org" and mail["subject"].startswith("Confirme")
    link = next(w for w in mail["body"].split() if w.startswith("https://fw.example/follow/"))
    path = link.removeprefix("https://fw.example")
    assert receiver.head(path).status_code == 200 and receiver.get(path).status_code == 200
    with ctx.engine.connect() as conn:
        (asked,) = followers.find(conn, "neighbour@example.org", "GB")
    assert asked.state == "pending"  # a scanner's GET changes nothing
    forged = path[:-4] + "0000"
    assert receiver.post(forged).status_code == 403
    done = receiver.post(path)
    assert done.status_code == 200 and "Sigue CB1 2AB" in done.text
    assert receiver.post(path).status_code == 404  # used
    with ctx.engine.connect() as conn:
        (confirmed,) = followers.find(conn, "neighbour@example.org", "GB")
    assert confirmed.state == "active" and confirmed.confirmed_by == "email link"
    # The unsubscribe signature of a follow cannot confirm one, and the reverse.
    key, follower = ctx.signing_key, confirmed.follower_id
    unsubscribe_signature = sign(key, follower)
    confirm_signature = confirm_path(key, follower).rsplit("/", 1)[1]
    assert confirms(key, follower, confirm_signature)
    assert not confirms(key, follower, unsubscribe_signature)
    assert not verify(key, follower, confirm_signature)


def test_the_follow_text_through_the_signed_webhook_then_the_outage(
    receiver: httpx.Client, ctx: Context, settings: Settings
) -> None:
    def text(body: str, sid: str) -> str:
        form = {"From": NEIGHBOUR, "To": "+441632960000", "Body": body, "MessageSid": sid}
        path = "/hooks/twilio/inbound"
        answer = receiver.post(path, data=form, headers=signed(path, form))
        assert answer.status_code == 200
        return answer.text

    assert "reply YES to get outage updates for CB1 2AB" in text("FOLLOW CB1 2AB", "SM1")
    assert "you will now get outage updates for CB1 2AB" in text("YES", "SM2")
    outage_and_restoration(ctx, settings, "cabA")
    report_cabinet(settings.jsonl_feed, "cabC", "down", NOW + timedelta(hours=2))
    run_cycle(ctx, NOW + timedelta(hours=2, minutes=3))
    said = to(settings, "sms", NEIGHBOUR)
    assert len(said) == 2 and "CB1 2AB is back" in said[1]  # nothing of cabinet C's fault


def test_the_unsubscribe_link_of_a_followers_email_ends_the_follow(
    receiver: httpx.Client, ctx: Context, settings: Settings
) -> None:
    follower = ask(ctx, "neighbour@example.org", "CB1 2AB")
    writing(ctx.engine, lambda c: followers.confirm(c, [follower], "test", NOW), "t")
    report_cabinet(settings.jsonl_feed, "cabA", "down", NOW + timedelta(minutes=5))
    run_cycle(ctx, NOW + timedelta(minutes=8))
    (mail,) = [m for m in outbox(settings, "email") if m["to"] == "neighbour@example.org"]
    link = next(w for w in mail["body"].split() if "/unsubscribe/" in w)
    answer = receiver.post(link.removeprefix("https://fw.example"))
    assert answer.status_code == 200
    with ctx.engine.connect() as conn:
        (stopped,) = followers.find(conn, follower, "GB")
    assert stopped.state == "stopped" and stopped.end_reason == "unsubscribe link"


def test_ops_list_a_follow_with_its_consent_count_them_and_remove_them(
    ctx: Context, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from forewarn.cli import app

    use_settings(monkeypatch, settings)
    monkeypatch.setenv("FOREWARN_PHONE_REGION", "GB")
    monkeypatch.setenv("COLUMNS", "300")  # the table whole, as on a wide terminal
    ask(ctx, NEIGHBOUR, "CB1 2AB", origin="203.0.113.9")
    text_in(ctx, NEIGHBOUR, "FOLLOW CB1 3CD")
    text_in(ctx, NEIGHBOUR, "YES")
    listed = CliRunner().invoke(app, ["follower", "07911 124123"])  # as ops type a number
    assert listed.exit_code == 0, listed.output
    assert "CB1 2AB" in listed.output and "CB1 3CD" in listed.output
    assert "by web from 203.0.113.9" in listed.output and "by sms yes" in listed.output
    status = CliRunner().invoke(app, ["status"])
    assert "followers: active 1, pending 1" in status.output
    removed = CliRunner().invoke(app, ["follower", "CB1 3CD", "--remove"])
    assert "removed 1 follow" in removed.output
    with ctx.engine.connect() as conn:
        assert followers.counts(conn) == {"pending": 1, "stopped": 1}
    nobody = CliRunner().invoke(app, ["follower", "nobody@example.org"])
    assert nobody.exit_code == 2 and "no follower matches" in nobody.output


def test_the_follower_drill_reads_as_the_neighbour_would_live_it(tmp_path: Path) -> None:
    from forewarn.drill import load_scenario, run_drill

    example = Path(__file__).parent.parent / "examples" / "drill" / "follower.yaml"
    result = run_drill(load_scenario(example), Settings(_env_file=None), tmp_path / "out")  # type: ignore[call-arg]
    lines = (tmp_path / "out" / "messages.jsonl").read_text().splitlines()
    said = [json.loads(line) for line in lines]
    heard = [
        (m["at"][11:16], m["body"])
        for m in said
        if m.get("to") == "+447911124047" and m.get("direction", "out") == "out"
    ]
    expected = [
        ("19:00", "Mill Road Fibre: reply YES to get outage updates for CB1 2AB."),
        ("19:02", "Mill Road Fibre: you will now get outage updates for CB1 2AB."),
        ("21:32", "Mill Road Fibre: broadband fault in Mill Road, covering CB1 2AB."),
        # Held by the night, told in the morning with when it happened.
        ("07:00", "Mill Road Fibre: broadband in CB1 2AB is back (restored at 02:04 GMT)."),
    ]
    assert len(heard) == len(expected), heard
    for (at, body), (when, start) in zip(heard, expected, strict=True):
        assert at == when and body.startswith(start), (at, body)
    unconfirmed = [m for m in said if m.get("to") == "+447911124999"]
    assert len(unconfirmed) == 1  # the one question, nothing else
    assert result.summary["broken_promises"] == []
    assert result.summary["messages_in_sleep_hours"] == 0


def test_a_flood_of_follow_texts_goes_unanswered_and_an_answer_never_echoes_much(
    ctx: Context,
) -> None:
    long = "FOLLOW " + "x" * 1500
    answer = text_in(ctx, NEIGHBOUR, long) or ""
    assert "we found no postcode" in answer and len(answer) < 220
    answers = [text_in(ctx, NEIGHBOUR, f"FOLLOW CB1 {n}AB") for n in range(12)]
    # Ten asks an hour from one number are answered; after them, silence (each answer
    # is a text we pay for). Before, all twelve were answered.
    assert all(answers[:9]) and answers[-1] is None


def test_a_us_zip_of_digits_is_a_postcode_and_incident_n_is_still_the_incident(
    ctx: Context, town: Town
) -> None:
    with town.engine.begin() as conn:  # two houses on a street whose ZIP is 02139
        conn.execute(
            update(premises)
            .where(premises.c.premise_id.in_(["p39", "p41"]))
            .values(postcode="02139")
        )
        conn.execute(incidents.insert().values(
            id=2139, title="Fault", status="investigating", scope="area", source="inferred",
            public=True, notify=True, area_name="Cabinet B", premises_count=10,
            customers_count=10, started_at=NOW, opened_at=NOW, updated_at=NOW,
        ))  # fmt: skip
    with town.engine.connect() as conn:
        zip_code = followers.resolve_place(conn, "02139")
        incident = followers.resolve_place(conn, "incident 2139")
        bare = followers.resolve_place(conn, "2139")
    assert zip_code is not None and (zip_code.kind, zip_code.key) == ("postcode", "02139")
    assert incident is not None and (incident.kind, incident.key) == ("incident", "2139")
    assert bare is not None and bare.kind == "incident"  # no postcode 2139: the incident


def test_a_number_typed_into_the_form_at_night_is_texted_in_the_morning_an_email_at_once(
    ctx: Context, settings: Settings
) -> None:
    # Before, the confirmation text went at 03:00 to a number that may be someone else's.
    night = NOW.replace(hour=3)
    ask(ctx, NEIGHBOUR, "CB1 2AB")
    ask(ctx, "carer@example.org", "CB1 2AB")
    pipeline.deliver(ctx, night)
    assert to(settings, "sms", NEIGHBOUR) == []
    assert len(to(settings, "email", "carer@example.org")) == 1
    pipeline.deliver(ctx, night.replace(hour=8))
    assert len(to(settings, "sms", NEIGHBOUR)) == 1
