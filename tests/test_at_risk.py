"""At-risk customers (issue 23, items 1, 2 and 4): the customers file's `needs`, imported
like every other field; in an outage they are told first, on every channel they have,
whatever the hour, and asked to confirm (YES, the email's link); unconfirmed too long,
they are listed for a visit until ops mark them reached. Nothing of it is public."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from forewarn.cli import app
from forewarn.config import Settings
from forewarn.context import Context
from forewarn.incidents import safety
from forewarn.incidents.replies import Voice, handle_reply
from forewarn.network.csvfile import CUSTOMER_COLUMNS, TOPOLOGY_COLUMNS
from forewarn.network.importer import import_network
from forewarn.notifiers.confirmations import safe_path
from forewarn.receiver import create_app
from forewarn.store import customers, deliveries, safety_checks, secret_key, writing
from testkit.servers import INVALID_NUMBER, TwilioState, fake_twilio
from tests.conftest import NOW, run_cycle, serving, use_settings
from tests.town import Town, customer_rows, report_cabinet, topology_rows, write_csv

# 02:00 in London, in sleep hours: only an at-risk customer hears now.
NIGHT = NOW.replace(hour=2)
VOICE = Voice("Mill Road Fibre", "", time_zone="Europe/London")


@pytest.fixture
def ctx(town: Town, settings: Settings) -> Iterator[Context]:
    with town.engine.begin() as conn:  # no. 41 has a telecare alarm; no. 45 prefers email
        conn.execute(
            update(customers)
            .where(customers.c.customer_id.in_(["c41", "c45"]))
            .values(needs="telecare")
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


def fault_at_night(ctx: Context, settings: Settings) -> datetime:
    report_cabinet(settings.jsonl_feed, "cabA", "down", NIGHT)
    run_cycle(ctx, NIGHT + timedelta(minutes=3))
    return NIGHT + timedelta(minutes=3)


def phone_of(engine: Engine, customer_id: str) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(
                select(customers.c.phone).where(customers.c.customer_id == customer_id)
            ).scalar_one()
        )


def checks(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(safety_checks).order_by(safety_checks.c.customer_id)))


# --- the customers file ------------------------------------------------------------


def import_with_needs(tmp_path: Path, engine: Engine, needs: dict[str, str]) -> list[str]:
    columns = ("needs", *CUSTOMER_COLUMNS)  # anywhere in the file, as a CRM exports it
    rows = [[needs.get(str(row[0]), ""), *row] for row in customer_rows()]
    topology = write_csv(tmp_path / "t.csv", TOPOLOGY_COLUMNS, topology_rows())
    path = write_csv(tmp_path / "c.csv", columns, rows)
    report = import_network(engine, topology, path, None, NOW, "GB")
    return [p.reason for p in report.problems]


def test_needs_are_imported_and_a_bad_value_drops_only_the_field(
    tmp_path: Path, engine: Engine
) -> None:
    said = import_with_needs(
        tmp_path, engine,
        {"c39": "Telecare; medical", "c41": "landline-only", "c43": "telecare;vip", "c45": ";"},
    )  # fmt: skip
    with engine.connect() as conn:
        stored = dict(conn.execute(select(customers.c.customer_id, customers.c.needs)).all())
    assert len(stored) == 12  # nobody skipped
    assert stored["c39"] == "telecare;medical" and stored["c41"] == "landline-only"
    # One unknown word is left out, never the telecare it came with.
    assert stored["c43"] == "telecare" and stored["c45"] is None and stored["c47"] is None
    assert any(r.startswith("customer 'c43' kept with needs telecare: needs 'telecare;vip'")
               for r in said)  # fmt: skip
    assert any(r.startswith("customer 'c45' kept without its needs: needs ';'") for r in said)
    assert len([r for r in said if "needs" in r]) == 2


def test_a_file_without_the_needs_column_leaves_the_needs_it_knows(
    tmp_path: Path, engine: Engine
) -> None:
    import_with_needs(tmp_path, engine, {"c41": "telecare"})
    topology = write_csv(tmp_path / "t.csv", TOPOLOGY_COLUMNS, topology_rows())
    plain = write_csv(tmp_path / "plain.csv", CUSTOMER_COLUMNS, customer_rows())
    import_network(engine, topology, plain, None, NOW, "GB")  # the CRM's usual export
    with engine.connect() as conn:
        stored = dict(conn.execute(select(customers.c.customer_id, customers.c.needs)).all())
    assert stored["c41"] == "telecare"


def test_a_file_without_the_needs_column_still_imports(town: Town) -> None:
    with town.engine.connect() as conn:
        assert set(conn.execute(select(customers.c.needs)).scalars()) == {None}


# --- told first, at any hour, asked to confirm ---------------------------------------


def test_at_night_an_at_risk_customer_is_told_at_once_on_every_channel_and_asked_to_confirm(
    ctx: Context, settings: Settings
) -> None:
    fault_at_night(ctx, settings)
    texts = {m["customer_id"]: m["body"] for m in outbox(settings, "sms")}
    mails = {m["customer_id"]: m["body"] for m in outbox(settings, "email")}
    # No. 41 and no. 45 (who chose email only) on text and email; the others wait.
    assert set(texts) == {"c41", "c45"} and set(mails) == {"c41", "c45"}
    assert "Please reply YES so we know you got this." in texts["c41"]
    link = "https://fw.example" + safe_path(ctx.signing_key, "c45", 1)
    assert link in mails["c45"]
    with ctx.engine.connect() as conn:
        held = conn.execute(
            select(deliveries.c.customer_id, deliveries.c.next_attempt_at).where(
                deliveries.c.status == "queued"
            )
        ).all()
    assert {c for c, _ in held} == {"c39", "c43"}
    assert all(at.hour == 7 for _, at in held)  # the morning, after sleep hours
    assert [(c.customer_id, c.state) for c in checks(ctx.engine)] == [
        ("c41", "asked"), ("c45", "asked"),
    ]  # fmt: skip


def test_at_risk_messages_are_queued_ahead_of_everyone(ctx: Context, settings: Settings) -> None:
    report_cabinet(settings.jsonl_feed, "cabA", "down", NOW)
    run_cycle(ctx, NOW + timedelta(minutes=3))
    order = [m["customer_id"] for m in outbox(settings, "sms")]
    assert order[:2] == ["c41", "c45"] and set(order[2:]) == {"c39", "c43"}


def test_a_yes_from_their_number_confirms_and_from_another_confirms_nothing(
    ctx: Context, settings: Settings
) -> None:
    at = fault_at_night(ctx, settings)
    with ctx.engine.begin() as conn:
        stranger = handle_reply(conn, "sms", "+447911124999", "YES", "S1", at, VOICE)
        neighbour = handle_reply(conn, "sms", phone_of(ctx.engine, "c39"), "yes", "S2", at, VOICE)
    assert stranger is None and neighbour is not None and "we know you" not in neighbour
    assert {c.state for c in checks(ctx.engine)} == {"asked"}
    with ctx.engine.begin() as conn:
        answer = handle_reply(conn, "sms", phone_of(ctx.engine, "c41"), "Yes", "S3", at, VOICE)
    assert answer == (
        "Mill Road Fibre: thank you, we know you have our message. "
        "We will keep you posted until your line is fixed."
    )
    c41, c45 = checks(ctx.engine)
    assert (c41.state, c41.confirmed_by, c45.state) == ("confirmed", "sms yes", "asked")


@pytest.fixture
def receiver(ctx: Context, town: Town) -> Iterator[httpx.Client]:
    key = writing(town.engine, lambda conn: secret_key(conn, "unsubscribe"), "key")
    app_ = create_app(town.engine, None, 100_000, clock=lambda: NIGHT, unsubscribe_key=key)
    with serving(app_) as url, httpx.Client(base_url=url) as http:
        yield http


def test_the_emailed_link_shows_a_button_and_only_the_button_confirms(
    receiver: httpx.Client, ctx: Context, settings: Settings
) -> None:
    fault_at_night(ctx, settings)
    path = safe_path(ctx.signing_key, "c45", 1)
    page = receiver.get(path)
    assert page.status_code == 200 and "I have the message" in page.text
    assert receiver.head(path).status_code == 200
    assert {c.state for c in checks(ctx.engine)} == {"asked"}  # a scanner's GET: nothing
    assert receiver.post(path[:-4] + "0000").status_code == 403  # forged
    assert receiver.post(safe_path(ctx.signing_key, "c45", 1)[:-1]).status_code == 403
    other = safe_path(ctx.signing_key, "c41", 1).replace("/c41/", "/c45/")
    assert receiver.post(other).status_code == 403  # one customer's link, another's path
    assert receiver.post(path.replace("/1/", "/x/")).status_code == 404
    # "¹" is a digit to Python's isdigit, but no incident id (schemathesis found it).
    assert receiver.post(path.replace("/1/", "/\u00b9/")).status_code == 404
    done = receiver.post(path)
    assert done.status_code == 200 and "We know you have our message" in done.text
    states = {c.customer_id: (c.state, c.confirmed_by) for c in checks(ctx.engine)}
    assert states == {"c41": ("asked", None), "c45": ("confirmed", "email link")}
    assert receiver.get(safe_path(ctx.signing_key, "nobody", 1)).status_code == 404


# --- escalation -------------------------------------------------------------------


def test_unconfirmed_after_the_window_they_are_listed_for_a_visit_until_reached(
    ctx: Context, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_settings(monkeypatch, settings)
    monkeypatch.setenv("COLUMNS", "300")
    monkeypatch.setenv("FOREWARN_TIME_ZONE", "Europe/London")
    at = fault_at_night(ctx, settings)
    with ctx.engine.begin() as conn:
        handle_reply(conn, "sms", phone_of(ctx.engine, "c41"), "YES", "S1", at, VOICE)
    run_cycle(ctx, at + timedelta(minutes=14))
    assert {c.customer_id: c.state for c in checks(ctx.engine)} == {
        "c41": "confirmed", "c45": "asked",
    }  # fmt: skip
    from forewarn import pipeline

    pipeline.follow_up(ctx, at + timedelta(minutes=15))
    c45 = checks(ctx.engine)[1]
    assert c45.state == "visit"
    listed = CliRunner().invoke(app, ["at-risk"])
    assert listed.exit_code == 0, listed.output
    assert "visit needed" in listed.output and "telecare" in listed.output
    assert "45 Mill Road, CB1 2AB" in listed.output and "+447911123045" in listed.output
    assert "c41" not in listed.output  # confirmed: nobody needs to go
    status = CliRunner().invoke(app, ["status"])
    assert "at-risk customers: 1 visit needed, 0 being called, 0 asked to confirm" in status.output
    empty = CliRunner().invoke(app, ["at-risk", "reached", str(c45.id), "--note", "  "])
    assert empty.exit_code == 2 and "the note is empty" in empty.output
    unknown = CliRunner().invoke(app, ["at-risk", "reached", "999", "--note", "x"])
    assert unknown.exit_code == 2 and "no open check 999" in unknown.output
    note = "Visited 03:10 by J. Patel: well, alarm on a mobile loan unit"
    done = CliRunner().invoke(app, ["at-risk", "reached", str(c45.id), "--note", note])
    assert done.exit_code == 0, done.output
    assert "No at-risk customer is waiting" in CliRunner().invoke(app, ["at-risk"]).output
    history = CliRunner().invoke(app, ["customer", "c45"])
    assert "at risk when the line fails: telecare" in history.output
    for step in ("at risk: asked to confirm", "at risk: visit needed", "at risk: reached"):
        assert step in history.output
    assert "J. Patel" in history.output


def test_a_check_ends_when_the_line_is_back_first(ctx: Context, settings: Settings) -> None:
    at = fault_at_night(ctx, settings)
    report_cabinet(settings.jsonl_feed, "cabA", "up", at + timedelta(minutes=2))
    run_cycle(ctx, at + timedelta(minutes=3))
    run_cycle(ctx, at + timedelta(minutes=13))
    from forewarn import pipeline

    pipeline.follow_up(ctx, at + timedelta(minutes=14))
    assert {c.state for c in checks(ctx.engine)} == {"ended"}
    with ctx.engine.connect() as conn:
        assert safety.listing(conn) == []


def test_nothing_of_a_customers_needs_reaches_the_public(ctx: Context, settings: Settings) -> None:
    fault_at_night(ctx, settings)
    from forewarn import pipeline

    pipeline.publish_site(ctx, NIGHT + timedelta(minutes=4))
    published = [p.read_text() for p in settings.site_dir.rglob("*") if p.is_file()]
    posts = [m["body"] for m in outbox(settings, "social")]
    assert published and not any("telecare" in text for text in published + posts)


def test_the_at_risk_drill_reads_as_each_household_would_live_it(tmp_path: Path) -> None:
    from sqlalchemy import create_engine

    from forewarn.drill import load_scenario, run_drill

    example = Path(__file__).parent.parent / "examples" / "drill" / "at-risk.yaml"
    result = run_drill(load_scenario(example), Settings(_env_file=None), tmp_path / "out")  # type: ignore[call-arg]
    heard: dict[str, list[tuple[str, str, str]]] = {}
    for m in result.messages:
        if m["direction"] == "out" and m.get("customer_id"):
            heard.setdefault(m["customer_id"], []).append(
                (m["at"][11:16], m["channel"], m["event"])
            )
    # Told at once at 02:02, on text and email, whatever their preference; asked to confirm.
    for who in ("c41", "c43"):
        assert {("02:02", "sms", "opened"), ("02:02", "email", "opened")} <= set(heard[who])
    confirm = [m["body"] for m in result.messages if m.get("customer_id") == "c43"]
    assert any("Please reply YES so we know you got this." in body for body in confirm)
    # The neighbours sleep: nothing before the morning.
    assert all(at >= "07:00" for who in ("c39", "c45") for at, _, _ in heard[who])
    engine = create_engine(f"sqlite:///{tmp_path / 'out' / 'drill.db'}")
    with engine.connect() as conn:
        rows = {r.customer_id: r for r in conn.execute(select(safety_checks))}
    engine.dispose()
    assert rows["c41"].state == "confirmed" and rows["c41"].confirmed_by == "sms yes"
    # Fifteen minutes unconfirmed: a call, asking for a key; five more: the one retry.
    calls = [m for m in result.messages if m["channel"] == "voice"]
    assert [(m["at"][11:16], m["customer_id"]) for m in calls] == [
        ("02:17", "c43"),
        ("02:22", "c43"),
    ]
    assert all("press any key now" in m["body"] for m in calls)
    assert not any(
        m["channel"] == "voice" for m in result.messages if m.get("customer_id") == "c41"
    )
    assert rows["c43"].calls == 2
    assert rows["c43"].visit_at.strftime("%H:%M") == "02:27"  # then listed for a visit
    assert rows["c43"].state == "ended"  # the line came back at 05:30
    assert result.summary["messages_in_sleep_hours"] == 0
    assert result.summary["at_risk_messages_in_the_night"] == 6
    assert result.summary["promised_updates_broken"] == 0


# --- called when unconfirmed (with calls set up) -------------------------------------


@pytest.fixture
def calling(ctx: Context, settings: Settings) -> Iterator[tuple[Context, TwilioState]]:
    """The same street, with texts and calls through a local Twilio."""
    with fake_twilio() as (url, state):
        made = Context.build(
            ctx.settings.model_copy(
                update={
                    "twilio_account_sid": "AC" + "0" * 32,
                    "twilio_auth_token": SecretStr("token"),
                    "sms_from": "+441223000000",
                    "twilio_api_url": url,
                    "sms_rate": 1000.0,
                    "voice_rate": 1000.0,
                }
            )
        )
        assert made.policy.calling
        yield made, state
        made.close()


def test_unconfirmed_they_are_called_then_called_once_more_then_listed_for_a_visit(
    calling: tuple[Context, TwilioState], settings: Settings
) -> None:
    from forewarn import pipeline

    ctx, twilio = calling
    at = fault_at_night(ctx, settings)
    assert twilio.calls == []  # nobody chose calls: texts and emails first
    with ctx.engine.begin() as conn:
        handle_reply(conn, "sms", phone_of(ctx.engine, "c41"), "YES", "S1", at, VOICE)
    pipeline.follow_up(ctx, at + timedelta(minutes=14))
    assert twilio.calls == []
    pipeline.follow_up(ctx, at + timedelta(minutes=15))
    [first] = twilio.calls
    assert first["to"] == phone_of(ctx.engine, "c45")  # no. 41 confirmed: not called
    assert "press any key now" in first["twiml"] and "<Gather" in first["twiml"]
    assert "https://fw.example/hooks/twilio/voice/gather" in first["twiml"]
    c45 = checks(ctx.engine)[1]
    assert (c45.state, c45.calls) == ("calling", 1)
    pipeline.follow_up(ctx, at + timedelta(minutes=19))
    assert len(twilio.calls) == 1  # the call is given five minutes
    pipeline.follow_up(ctx, at + timedelta(minutes=20))
    assert [c["to"] for c in twilio.calls] == [first["to"]] * 2  # the one retry
    assert checks(ctx.engine)[1].calls == 2
    pipeline.follow_up(ctx, at + timedelta(minutes=25))
    assert len(twilio.calls) == 2  # never a third
    c45 = checks(ctx.engine)[1]
    assert c45.state == "visit" and c45.visit_at == at + timedelta(minutes=25)
    with ctx.engine.connect() as conn:
        call_row = conn.execute(select(deliveries).where(deliveries.c.channel == "voice")).one()
    assert call_row.status == "sent" and call_row.provider_ref == twilio.calls[1]["sid"]


def test_a_key_pressed_on_the_call_stops_the_escalation(
    calling: tuple[Context, TwilioState], settings: Settings
) -> None:
    from forewarn import pipeline
    from forewarn.incidents.callbacks import key_pressed

    ctx, twilio = calling
    at = fault_at_night(ctx, settings)
    pipeline.follow_up(ctx, at + timedelta(minutes=15))
    assert len(twilio.calls) == 2  # nos. 41 and 45
    with ctx.engine.begin() as conn:
        assert key_pressed(conn, twilio.calls[0]["sid"], at + timedelta(minutes=16)) == "en"
    pipeline.follow_up(ctx, at + timedelta(minutes=20))
    assert len(twilio.calls) == 3  # only the one who did not press is called again
    states = {c.customer_id: (c.state, c.confirmed_by) for c in checks(ctx.engine)}
    pressed = {"c41": "c41", "c45": "c45"}[
        next(c for c in ("c41", "c45") if phone_of(ctx.engine, c) == twilio.calls[0]["to"])
    ]
    assert states[pressed] == ("confirmed", "key press")


def test_without_a_phone_or_when_the_call_cannot_be_placed_a_visit_at_once(
    calling: tuple[Context, TwilioState], settings: Settings
) -> None:
    from forewarn import pipeline

    ctx, twilio = calling
    with ctx.engine.begin() as conn:  # no. 45 has only an email
        conn.execute(update(customers).where(customers.c.customer_id == "c45").values(phone=None))
        conn.execute(
            update(customers).where(customers.c.customer_id == "c41").values(phone=INVALID_NUMBER)
        )
    at = fault_at_night(ctx, settings)
    pipeline.follow_up(ctx, at + timedelta(minutes=15))
    states = {c.customer_id: c.state for c in checks(ctx.engine)}
    assert states == {"c41": "calling", "c45": "visit"}
    pipeline.follow_up(ctx, at + timedelta(minutes=16))  # the call failed: no retry
    assert {c.customer_id: c.state for c in checks(ctx.engine)} == {"c41": "visit", "c45": "visit"}
    assert twilio.calls == []


def test_an_opted_out_at_risk_customer_hears_nothing_but_is_listed_for_a_visit(
    ctx: Context, settings: Settings
) -> None:
    from forewarn import pipeline

    with ctx.engine.begin() as conn:
        conn.execute(
            update(customers).where(customers.c.customer_id == "c41").values(opted_out=True)
        )
    at = fault_at_night(ctx, settings)
    assert "c41" not in {m["customer_id"] for m in outbox(settings, "sms")}
    assert {c.customer_id: c.state for c in checks(ctx.engine)} == {"c41": "asked", "c45": "asked"}
    pipeline.follow_up(ctx, at + timedelta(minutes=15))
    assert {c.customer_id: c.state for c in checks(ctx.engine)}["c41"] == "visit"
    assert "c41" not in {m["customer_id"] for m in outbox(settings, "sms")}


def test_a_line_still_down_after_the_area_fix_keeps_its_check(
    ctx: Context, settings: Settings
) -> None:
    from forewarn import pipeline

    at = fault_at_night(ctx, settings)
    pipeline.follow_up(ctx, at + timedelta(minutes=15))
    assert {c.state for c in checks(ctx.engine)} == {"visit"}
    # The cabinet comes back but no. 45's own line stays down: its own case goes on.
    assert settings.jsonl_feed is not None
    with open(settings.jsonl_feed, "a") as feed:
        for n in (39, 41, 43):
            up = {
                "element": f"cpe{n}",
                "state": "up",
                "at": (at + timedelta(minutes=20)).isoformat(),
            }
            feed.write(json.dumps(up) + "\n")
    run_cycle(ctx, at + timedelta(minutes=21))
    run_cycle(ctx, at + timedelta(minutes=31))
    pipeline.follow_up(ctx, at + timedelta(minutes=32))
    rows = {(c.customer_id, c.incident_id): c.state for c in checks(ctx.engine)}
    assert rows[("c41", 1)] == "ended"  # no. 41's line is back
    assert rows[("c45", 1)] == "visit"  # still listed, from the first fifteen minutes
    assert len([k for k in rows if k[0] == "c45"]) == 1  # no second check, no new clock


def test_a_yes_to_our_safety_check_does_not_also_confirm_a_follow_asked_for_the_number(
    ctx: Context, settings: Settings
) -> None:
    from forewarn.incidents import followers

    phone = phone_of(ctx.engine, "c41")

    def stranger_asks(conn: Any) -> followers.Asked:
        return followers.ask(conn, "sms", phone, "CB1 2AB", "en", "Europe/London", "web",
                             "192.0.2.9", NIGHT)  # fmt: skip

    asked = writing(ctx.engine, stranger_asks, "test")
    assert asked.follower_id is not None
    with ctx.engine.begin() as conn:
        followers.confirmation_sent(conn, [asked.follower_id], NIGHT)
    at = fault_at_night(ctx, settings)
    with ctx.engine.begin() as conn:
        answer = handle_reply(conn, "sms", phone, "YES", "S1", at, VOICE)
        assert followers.pending(conn, asked.follower_id) is not None  # still to confirm
    assert answer is not None and "we know you have our message" in answer


def test_a_big_faults_first_batch_is_the_at_risk_customers_whatever_the_priority(
    ctx: Context, settings: Settings
) -> None:
    from forewarn.incidents.ledger import queue

    with ctx.engine.begin() as conn:  # no. 39 is a priority customer, but not at risk
        conn.execute(update(customers).where(customers.c.customer_id == "c39").values(priority=9))
    fault_at_night(ctx, settings)
    with ctx.engine.connect() as conn:
        order = [who for who, _, _ in queue._recipients(conn, 1, 1, "opened")]
    assert order[:3] == ["c41", "c45", "c39"]
