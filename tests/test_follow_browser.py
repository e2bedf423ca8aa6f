"""Following a place from the public site, in a real Chromium (issue 22, item 1): a person
who is no customer fills the lookup page's form, opens the emailed link, presses its
button, and then hears the opening and the restoration of their postcode, and nothing of
a fault elsewhere. The pages the forms and the receiver show pass the Nu HTML Checker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from forewarn import pipeline
from forewarn.config import Settings
from forewarn.context import Context
from forewarn.incidents import followers
from forewarn.receiver import create_app
from forewarn.receiver_forms import FollowDesk
from forewarn.store import premises, secret_key, writing
from tests.conftest import NOW, run_cycle, serving
from tests.test_outside_clients import CHROMIUM, CHROMIUM_ARGS, need_chromium, nu_errors
from tests.town import Town, report_cabinet

NEIGHBOUR = "neighbour@example.org"


@pytest.fixture
def served(town: Town, settings: Settings) -> Iterator[tuple[str, Context]]:
    """The receiver serving the site on loopback, forewarn's public URL pointing at it."""
    with town.engine.begin() as conn:  # cabinet C's houses get a postcode of their own
        conn.execute(
            update(premises)
            .where(premises.c.premise_id.in_(["p2", "p4", "p6", "p8"]))
            .values(postcode="CB1 3CD")
        )
    key = writing(town.engine, lambda conn: secret_key(conn, "unsubscribe"), "key")
    desk = FollowDesk("GB", "Europe/London", key, "/")
    app = create_app(
        town.engine, None, 100_000, settings.site_dir, clock=lambda: NOW, unsubscribe_key=key,
        follows=desk,
    )  # fmt: skip
    with serving(app) as url:
        ctx = Context.build(
            settings.model_copy(
                update={"public_url": url, "site_url": url + "/", "time_zone": "Europe/London"}
            )
        )
        pipeline.publish_site(ctx, NOW)
        yield url, ctx
        ctx.close()


def mails(settings: Settings) -> list[dict[str, Any]]:
    path = settings.outbox / "email.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [m for m in map(json.loads, lines) if m["to"] == NEIGHBOUR]


@pytest.mark.integration
def test_a_neighbour_follows_their_postcode_from_the_lookup_page_in_a_real_browser(
    served: tuple[str, Context], settings: Settings, tmp_path: Path
) -> None:
    need_chromium()
    from playwright.sync_api import sync_playwright

    url, ctx = served
    pages: list[Path] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(url + "/lookup.html")
        page.fill("#follow-place", "cb1 2ab")
        page.fill("#follow-contact", NEIGHBOUR)
        page.click("section.follow button")
        page.wait_for_selector("h1")
        assert page.inner_text("h1") == "Check your messages"
        assert "we have emailed neighbour@example.org a link" in page.inner_text("main")
        pages.append(tmp_path / "asked.html")
        pages[-1].write_text(page.content())
        with ctx.engine.connect() as conn:
            assert followers.counts(conn) == {"pending": 1}  # nothing followed yet
        pipeline.deliver(ctx, NOW + timedelta(minutes=1))
        (asking,) = mails(settings)
        link = next(w for w in asking["body"].split() if "/follow/confirm/" in w)
        page.goto(link)
        assert page.inner_text("h1") == "Get outage updates for CB1 2AB?"
        pages.append(tmp_path / "confirm.html")
        pages[-1].write_text(page.content())
        page.click("button")
        page.wait_for_selector("text=You are following CB1 2AB")
        pages.append(tmp_path / "confirmed.html")
        pages[-1].write_text(page.content())
        browser.close()
    # The fault behind cabinet A (CB1 2AB) reaches them; cabinet C's (CB1 3CD) does not.
    report_cabinet(settings.jsonl_feed, "cabA", "down", NOW + timedelta(minutes=5))
    run_cycle(ctx, NOW + timedelta(minutes=8))
    report_cabinet(settings.jsonl_feed, "cabC", "down", NOW + timedelta(minutes=20))
    run_cycle(ctx, NOW + timedelta(minutes=23))
    report_cabinet(settings.jsonl_feed, "cabA", "up", NOW + timedelta(hours=1))
    run_cycle(ctx, NOW + timedelta(hours=1, minutes=1))
    run_cycle(ctx, NOW + timedelta(hours=1, minutes=11))
    subjects = [m["subject"] for m in mails(settings)]
    assert subjects == [
        "Confirm outage updates for CB1 2AB",
        "Broadband fault in Mill Road",
        "Broadband is back in CB1 2AB",
    ]
    # An incident page with its own follow form, and the lookup's: valid HTML.
    site = settings.site_dir
    incident_pages = sorted((site / "incidents").glob("*.html"))
    assert any('name="place" value="' in p.read_text() for p in incident_pages)
    assert (
        nu_errors([site / "lookup.html", site / "es" / "lookup.html", *incident_pages, *pages])
        == []
    )


@pytest.mark.integration
def test_someone_reports_a_problem_from_the_lookup_page_in_a_real_browser(
    served: tuple[str, Context], settings: Settings, tmp_path: Path
) -> None:
    need_chromium()
    from playwright.sync_api import sync_playwright

    from forewarn.store import incidents, reports

    url, ctx = served
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(url + "/lookup.html")
        page.fill("#lookup-query", "CB1 2AB")
        page.click("#lookup-form button")
        page.wait_for_selector("#lookup-result p")
        # No known fault: the lookup points to the form beside it.
        assert "report it below" in page.inner_text("#lookup-result")
        assert page.inner_text("#report-heading") == "Not a known fault? Report it"
        page.fill("#report-place", "45 Mill Road")
        page.fill("#report-contact", NEIGHBOUR)
        page.click("section.report button")
        page.wait_for_selector("h1")
        assert page.inner_text("h1") == "Thank you for telling us"
        assert "we will email neighbour@example.org a link" in page.inner_text("main")
        thanks = tmp_path / "reported.html"
        thanks.write_text(page.content())
        browser.close()
    with ctx.engine.connect() as conn:
        (kept,) = conn.execute(select(reports.c.place, reports.c.outcome, reports.c.origin))
        (case,) = conn.execute(select(incidents.c.source, incidents.c.notify))
        assert followers.counts(conn) == {"pending": 1}  # the address, once confirmed
    assert tuple(kept) == ("45 Mill Road", "case", "127.0.0.1")
    assert tuple(case) == ("report", False)  # a case of that line; its customer not told
    site = settings.site_dir
    assert nu_errors([site / "lookup.html", site / "es" / "lookup.html", thanks]) == []
