"""The right words for each reader (issue 13, item 6): no "it is over" to a line still
down, no second case for a line ops call fixed while it is still down, ops notes on every
channel that can carry them, and every text in the reader's language with its times in
one zone, named."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine

from forewarn import pipeline
from forewarn.channels.sms import is_gsm7, segments
from forewarn.config import Settings
from forewarn.context import Context
from forewarn.detection.run import down_now
from forewarn.incidents.ops import OpsError, resolve_by_ops, update_by_ops
from forewarn.incidents.replies import Voice, handle_reply
from forewarn.incidents.updates import Set
from forewarn.notifiers.compose import EVENT_TEMPLATES, render
from forewarn.store import customers, incident_updates, incidents
from forewarn.texts import update_words
from tests.conftest import NOW, outage_and_restoration, run_cycle
from tests.test_content import LONGEST, row
from tests.town import CABINETS, Town, report_cabinet


def fits_one(text: str) -> bool:
    return is_gsm7(text) and segments(text) == 1


def stamp(moment: datetime) -> str:
    """A moment as the incident stage stores it in an update's words."""
    return moment.isoformat()


def outbox(settings: Settings) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in sorted(settings.outbox.glob("*.jsonl")):
        found += [json.loads(line) for line in path.read_text().splitlines()]
    return found


def signal(settings: Settings, element: str, state: str, at: datetime) -> None:
    assert settings.jsonl_feed is not None
    with Path(settings.jsonl_feed).open("a") as handle:
        handle.write(json.dumps({"element": element, "state": state, "at": at.isoformat()}) + "\n")


def after_ops(ctx: Context, now: datetime) -> None:
    """What the ops commands do after a change: queue, send, publish."""
    pipeline.queue(ctx, now)
    pipeline.deliver_and_publish(ctx, now)


def seq_of(engine: Engine, incident_id: int, event: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.max(incident_updates.c.seq)).where(
                    incident_updates.c.incident_id == incident_id,
                    incident_updates.c.event == event,
                )
            ).scalar_one()
        )


def fixed_but_45_still_down(ctx: Context, settings: Settings) -> int:
    """Cabinet A goes down and comes back, all but no. 45: its line becomes a case."""
    report_cabinet(settings.jsonl_feed, "cabA", "down", NOW)
    run_cycle(ctx, NOW + timedelta(minutes=3))
    for n in CABINETS["cabA"]:
        if n != 45:
            signal(settings, f"cpe{n}", "up", NOW + timedelta(hours=1))
    run_cycle(ctx, NOW + timedelta(hours=1, minutes=1))
    run_cycle(ctx, NOW + timedelta(hours=1, minutes=11))
    with ctx.engine.connect() as conn:
        case = conn.execute(
            select(incidents.c.id).where(
                incidents.c.scope == "premise", incidents.c.status != "resolved"
            )
        ).scalar_one()
    return int(case)


def test_a_line_still_down_hears_the_summary_only_when_it_is_back(
    town: Town, settings: Settings
) -> None:
    ctx = Context.build(settings)
    case = fixed_but_45_still_down(ctx, settings)
    with ctx.engine.begin() as conn:
        outcome = update_by_ops(
            conn, 1, NOW + timedelta(hours=2), ctx.policy, cause="A digger cut the cable."
        )
    after_ops(ctx, NOW + timedelta(hours=2, minutes=1))
    summary = seq_of(ctx.engine, 1, "summary")
    told = {m.get("customer_id") for m in outbox(settings) if m["update_seq"] == summary}
    assert told >= {"c39", "c41", "c43"} and "c45" not in told
    assert any("1 line(s) still down" in held for held in outcome.held)
    # No. 45 comes back: it hears "restored", then the summary, about its own outage.
    signal(settings, "cpe45", "up", NOW + timedelta(hours=3))
    run_cycle(ctx, NOW + timedelta(hours=3, minutes=1))
    run_cycle(ctx, NOW + timedelta(hours=3, minutes=11))
    mine = [
        m for m in outbox(settings) if m.get("customer_id") == "c45" and m["incident_id"] == case
    ]
    assert [m["update_seq"] for m in mine][-2:] == [
        seq_of(ctx.engine, case, "restored"),
        seq_of(ctx.engine, case, "summary"),
    ]
    assert "A digger cut the cable." in mine[-1]["body"] and "3 h" in mine[-1]["body"]
    # Once: the incident's own summary still leaves it out (its case told it).
    again = [m for m in outbox(settings) if m.get("customer_id") == "c45" and m["incident_id"] == 1]
    assert summary not in {m["update_seq"] for m in again}


def test_a_summary_after_the_case_closed_reaches_the_line_with_the_others(
    town: Town, settings: Settings
) -> None:
    ctx = Context.build(settings)
    case = fixed_but_45_still_down(ctx, settings)
    signal(settings, "cpe45", "up", NOW + timedelta(hours=2))
    run_cycle(ctx, NOW + timedelta(hours=2, minutes=1))
    run_cycle(ctx, NOW + timedelta(hours=2, minutes=11))
    with ctx.engine.begin() as conn:
        update_by_ops(conn, 1, NOW + timedelta(hours=3), ctx.policy, cause="A digger.")
    after_ops(ctx, NOW + timedelta(hours=3, minutes=1))
    summary = seq_of(ctx.engine, 1, "summary")
    told = {m.get("customer_id") for m in outbox(settings) if m["update_seq"] == summary}
    assert told - {None} == {"c39", "c41", "c43", "c45"}  # None: the public post
    with ctx.engine.connect() as conn:
        events = conn.execute(
            select(incident_updates.c.event).where(incident_updates.c.incident_id == case)
        ).scalars()
        assert "summary" not in set(events)  # not twice


def test_resolving_a_case_whose_line_is_still_down_opens_nothing_new(
    town: Town, settings: Settings
) -> None:
    ctx = Context.build(settings)
    case = fixed_but_45_still_down(ctx, settings)
    later = NOW + timedelta(hours=2)
    with ctx.engine.begin() as conn:
        before = conn.execute(select(func.count()).select_from(incident_updates)).scalar_one()
        with pytest.raises(OpsError, match=r"cpe45\), which still looks down.*nothing changed"):
            resolve_by_ops(conn, ctx.index(), case, down_now(conn), later, ctx.policy)
    run_cycle(ctx, later + timedelta(minutes=1))
    with ctx.engine.connect() as conn:
        cases = conn.execute(select(incidents.c.id).where(incidents.c.scope == "premise")).all()
        status = conn.execute(select(incidents.c.status).where(incidents.c.id == case)).scalar()
        after = conn.execute(select(func.count()).select_from(incident_updates)).scalar_one()
    assert len(cases) == 1 and status != "resolved" and after == before
    still_down = [m for m in outbox(settings) if "still looks down" in m["body"]]
    assert {m.get("customer_id") for m in still_down} == {"c45"} and len(still_down) == 1


def test_an_ops_note_reaches_the_text_and_the_public_post(town: Town, settings: Settings) -> None:
    settings = settings.model_copy(update={"privacy_floor": 4})  # so the incident is public
    ctx = Context.build(settings)
    report_cabinet(settings.jsonl_feed, "cabA", "down", NOW)
    run_cycle(ctx, NOW + timedelta(minutes=3))
    short = "Splicing at the cabinet now."
    with ctx.engine.begin() as conn:
        update_by_ops(conn, 1, NOW + timedelta(minutes=20), ctx.policy, note=short)
    after_ops(ctx, NOW + timedelta(minutes=21))
    sent = [m for m in outbox(settings) if m["update_seq"] == 2]
    texts = [m for m in sent if m["channel"] == "sms"]
    posts = [m for m in sent if m["channel"] == "social"]
    assert texts and all(short in m["body"] and fits_one(m["body"]) for m in texts)
    assert posts and short in posts[0]["body"]
    # A note too long for one segment: the text points to the incident's page instead,
    # and the email carries it whole.
    long = "The duct under the railway bridge is flooded; " * 4
    with ctx.engine.begin() as conn:
        update_by_ops(conn, 1, NOW + timedelta(minutes=40), ctx.policy, note=long)
    after_ops(ctx, NOW + timedelta(minutes=41))
    sent = [m for m in outbox(settings) if m["update_seq"] == 3]
    texts = [m for m in sent if m["channel"] == "sms"]
    assert texts and all("Note: localhost:8000/incidents/1.html" in m["body"] for m in texts)
    assert all(fits_one(m["body"]) for m in texts)
    assert all(long.strip() in m["body"] for m in sent if m["channel"] == "email")


def test_a_private_incidents_note_is_cut_to_fit_the_text() -> None:
    note = "Engineers are replacing the splitter in the cabinet; " * 3
    params = json.dumps({"note": note.strip(), "cause": None, "etr_changed": False,
                         "etr": None, "status": "identified"})  # fmt: skip
    due = row("sms", "en", "note", None, update_kind="ops", update_params=params,
              incident_public=False, address="2 Mill Road")  # fmt: skip
    body, _ = render(due, LONGEST, NOW)
    assert fits_one(body) and "Engineers are" in body and "..." in body
    assert "/incidents/" not in body  # a private incident has no page to point to


# English that gives a sentence away in a Spanish message (the operator's name, address,
# area and site are names, not sentences).
ENGLISH = re.compile(
    r"\b(the|your|you|we|our|is|are|has|have|will|sorry|thanks?|please|estimate|premises|"
    r"service|fault|fix|update|next|new|cause|status|days|planned|work|Mon|Tue|Wed|Thu|Fri|"
    r"Sat|Sun)\b",
    re.IGNORECASE,
)
NAMES = ("Mill Road Fibre Ltd.", "Flat 12B, 1450 Harrowgate Road",
         "Cabinet 2, Mill Road exchange", "status.millroad-fibre.co.uk")  # fmt: skip
# A time ("14:05") not followed by its zone's name.
BARE_TIME = re.compile(r"\b\d{1,2}:\d{2}\b(?! (GMT|CET|UTC))")


def stored(event: str, etr: datetime) -> dict[str, Any]:
    """The update's words as the incident stage stores them for this event."""
    said: dict[str, tuple[str, dict[str, Any]]] = {
        "followup": ("followup", {"etr": stamp(etr)}),
        "etr_missed": ("etr_missed", {"missed": stamp(NOW), "later": stamp(etr)}),
        "etr_changed": ("ops", {"note": None, "cause": None, "etr_changed": True,
                                "etr": stamp(etr), "status": "identified"}),
        "etr_set": ("ops", {"note": None, "cause": None, "etr_changed": True, "first": True,
                            "etr": stamp(etr), "status": "identified"}),
        "note": ("ops", {"note": None, "cause": None, "etr_changed": False, "etr": None,
                         "status": "monitoring"}),
        "summary": ("summary", {"cause": None, "note": None}),
        "maintenance_notice": ("maintenance_notice", {"starts": stamp(NOW), "ends": stamp(etr)}),
        "maintenance_start": ("maintenance_start", {"end": stamp(etr)}),
        "restored": ("restored", {"still_down": None}),
        "expanded": ("expanded", {"premises": 40, "area": "Mill Road"}),
        "opened": ("opened", {"premises": 40, "area": "Mill Road"}),
    }  # fmt: skip
    kind, params = said.get(event, (event, {}))
    body = update_words(kind, **params)
    return {"update_body": str(body), "update_kind": kind, "update_params": json.dumps(params)}


@pytest.mark.parametrize("event", sorted(EVENT_TEMPLATES))
def test_a_spanish_customer_reads_every_event_in_spanish_with_zoned_times(event: str) -> None:
    etr = NOW + timedelta(days=9, hours=3)  # beyond a week: the date is said too
    for channel in ("sms", "email"):
        due = row(channel, "es", event, etr, time_zone="Europe/Madrid", **stored(event, etr))
        body, subject = render(due, LONGEST, NOW)
        text = f"{subject or ''}\n{body}"
        for name in NAMES:
            text = text.replace(name, "")
        assert not ENGLISH.findall(text), (channel, ENGLISH.findall(text), text)
        assert not BARE_TIME.search(text), (channel, text)
        if re.search(r"\d:\d\d", text):
            assert " CET" in text and " GMT" not in text, text  # the customer's zone, named


def test_text_email_and_post_agree_on_the_zone_for_each_reader() -> None:
    etr = NOW + timedelta(days=1)  # 14:00 UTC: 15:00 in Madrid, 14:00 in London
    text, _ = render(row("sms", "es", "opened", etr, time_zone="Europe/Madrid"), LONGEST, NOW)
    email, subject = render(row("email", "es", "opened", etr, time_zone="Europe/Madrid"),
                            LONGEST, NOW)  # fmt: skip
    public = {"customer_id": "", "address": None, "time_zone": None}
    post, _ = render(row("social", None, "opened", etr, **public), LONGEST, NOW)
    assert "mar 15:00 CET" in text and "mar 15:00 CET" in email and subject
    assert "Tue 14:00 GMT" in post  # the operator's zone (Europe/London)
    # A customer without a zone reads the operator's, named too.
    plain, _ = render(row("sms", "en", "opened", etr, time_zone=None), LONGEST, NOW)
    assert "Tue 14:00 GMT" in plain


def test_the_spanish_page_says_an_ops_estimate_in_spanish_in_the_operators_zone(
    town: Town, engine: Engine, settings: Settings
) -> None:
    settings = settings.model_copy(update={"privacy_floor": 4, "time_zone": "Europe/Madrid"})
    ctx = Context.build(settings)
    with engine.begin() as conn:
        conn.execute(update(customers).values(locale="es"))
    report_cabinet(settings.jsonl_feed, "cabA", "down", NOW)
    run_cycle(ctx, NOW + timedelta(minutes=3))
    with engine.begin() as conn:
        update_by_ops(conn, 1, NOW + timedelta(minutes=10), ctx.policy,
                      estimate=Set(NOW + timedelta(days=1, hours=2)))  # fmt: skip
    after_ops(ctx, NOW + timedelta(minutes=11))
    spanish = (settings.site_dir / "es" / "incidents" / "1.html").read_text()
    english = (settings.site_dir / "incidents" / "1.html").read_text()
    # The first estimate ops give: a fix time, not a change of one; the month in words.
    assert "Estimación: mar 24 nov 17:00 CET." in spanish
    assert "Estimate: Tue 24 Nov 17:00 CET." in english
    assert "UTC" not in spanish and "lun 23 nov 2026 15:03 CET" in spanish  # started, in Madrid
    assert "<title>Corte: " in spanish
    # Every update the Spanish page shows, through to the end, is in Spanish.
    report_cabinet(settings.jsonl_feed, "cabA", "up", NOW + timedelta(hours=1))
    run_cycle(ctx, NOW + timedelta(hours=1, minutes=1))
    run_cycle(ctx, NOW + timedelta(hours=1, minutes=11))
    with engine.begin() as conn:
        update_by_ops(conn, 1, NOW + timedelta(hours=2), ctx.policy, cause="Un cable cortado.")
    after_ops(ctx, NOW + timedelta(hours=2, minutes=1))
    spanish = (settings.site_dir / "es" / "incidents" / "1.html").read_text()
    bodies = re.findall(r"</time><br>(.*?)</li>", spanish)
    assert len(bodies) == 4 and not [b for b in bodies if ENGLISH.search(b)], bodies
    history = (settings.site_dir / "es" / "history.html").read_text()
    assert '.html">Corte: ' in history and "Outage" not in history  # linked to its page
    assert "<td>lun 23 nov 2026 15:00 CET</td>" in history  # started, in the operator's zone


def test_an_out_reply_is_answered_in_the_customers_own_zone(town: Town, engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(customers)
            .where(customers.c.customer_id == "c41")
            .values(locale="es", timezone="Europe/Madrid")
        )
        phone = conn.execute(
            select(customers.c.phone).where(customers.c.customer_id == "c41")
        ).scalar_one()
        # The operator's zone (UTC here) is not the customer's: their texts say CET. Six
        # hours on is 21:00 in Madrid, inside their quiet hours: the promise is the morning.
        answer = handle_reply(conn, "sms", phone, "OUT", "SM1", NOW, Voice("Mill Road Fibre", ""))
    # Nothing was restored to reopen: a first report, thanked as one.
    assert answer and "gracias por avisarnos" in answer and "mar 08:00 CET" in answer


def test_an_out_reply_after_the_summary_does_not_bring_the_summary_twice(
    town: Town, settings: Settings
) -> None:
    ctx = Context.build(settings)
    outage_and_restoration(ctx, settings)
    later = NOW + timedelta(hours=2)
    with ctx.engine.begin() as conn:
        update_by_ops(conn, 1, later, ctx.policy, cause="A digger.")
    after_ops(ctx, later)
    with ctx.engine.begin() as conn:
        phone = conn.execute(
            select(customers.c.phone).where(customers.c.customer_id == "c41")
        ).scalar_one()
        handle_reply(conn, "sms", phone, "OUT", "SM1", later, Voice("Mill Road Fibre", ""))
        case = conn.execute(select(func.max(incidents.c.id))).scalar_one()
        resolve_by_ops(conn, ctx.index(), case, down_now(conn), later, ctx.policy)
        events = set(
            conn.execute(
                select(incident_updates.c.event).where(incident_updates.c.incident_id == case)
            ).scalars()
        )
    assert "restored" in events and "summary" not in events  # c41 had it already
