"""The words people read on the page and in their messages (issue 21, item 9): one way of
writing a date, a title in each language's own order, counts that agree, and a first
estimate told as a fix time rather than a change of one."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from forewarn.config import Settings
from forewarn.drill import DrillResult, load_scenario, run_drill
from forewarn.status_page.site import place_label

EXAMPLE = Path(__file__).parent.parent / "examples" / "drill"


@pytest.fixture(scope="module")
def drilled(tmp_path_factory: pytest.TempPathFactory) -> tuple[DrillResult, Path]:
    """Cabinet A down on a Monday; ops give a first estimate, then move it; one house
    stays out as a case of its own after the fix."""
    folder = tmp_path_factory.mktemp("words")
    path = folder / "scenario.yaml"
    path.write_text(yaml.safe_dump({
        "start": "2026-11-23T08:00:00+00:00", "until": "+10d",
        "network": {"topology": str(EXAMPLE / "topology.csv"),
                    "customers": str(EXAMPLE / "customers.csv")},
        "settings": {"phone_region": "GB", "time_zone": "Europe/London",
                     "operator_name": "Mill Road Fibre", "privacy_floor": 1},
        "events": [
            {"at": "+0m", "feed": {"under": "cabA", "state": "down"}},
            {"at": "+1h", "ops": {"action": "update", "etr": "2026-12-01T14:00:00+00:00"}},
            {"at": "+2h", "ops": {"action": "update", "etr": "2026-12-02T14:00:00+00:00"}},
            {"at": "+3h", "feed": {"elements": ["cpe39", "cpe41", "cpe43"], "state": "up"}},
        ],
    }))  # fmt: skip
    out = folder / "out"
    return run_drill(load_scenario(path), Settings(), out), out


def texts(result: DrillResult, customer: str, channel: str) -> list[dict[str, Any]]:
    return [m for m in result.messages if m["customer_id"] == customer and m["channel"] == channel]


def test_a_first_estimate_is_a_fix_time_and_the_next_one_a_new_fix_time(
    drilled: tuple[DrillResult, Path],
) -> None:
    result, _ = drilled
    sms = [m["body"] for m in texts(result, "c39", "sms")]
    first, moved = sms[1], sms[2]
    assert "fix time for 39 Mill Road." in first and "new fix time" not in first
    assert "new fix time at 39 Mill Road." in moved
    emails = texts(result, "c39", "email")
    assert emails[1]["subject"].startswith("Fix time for 39 Mill Road: ")
    assert "We now have an estimate for fixing the fault at 39 Mill Road." in emails[1]["body"]
    assert "has changed" in emails[2]["body"]


def test_dates_are_written_with_the_months_name_never_as_numbers(
    drilled: tuple[DrillResult, Path],
) -> None:
    result, out = drilled
    bodies = " ".join(m["body"] for m in result.messages)
    assert "Tue 1 Dec 14:00 GMT" in bodies
    assert not re.search(r"\b\d{1,2}/\d{1,2}\b", bodies)  # no 1/12: a day, or January?
    page = (out / "site" / "incidents" / "1.html").read_text()
    assert "Mon 23 Nov 2026 08:0" in page  # the page's own times, in the same words
    assert not re.search(r">\d{4}-\d{2}-\d{2} \d{2}:\d{2}", page)
    assert not re.search(r"\b\d{1,2}/\d{1,2}\b", re.sub(r"<[^>]+>", " ", page))
    spanish = (out / "site" / "es" / "incidents" / "1.html").read_text()
    assert "lun 23 nov 2026 08:0" in spanish


def test_the_title_is_in_each_languages_own_order(drilled: tuple[DrillResult, Path]) -> None:
    _, out = drilled
    assert "<h1>Mill Road Fibre status</h1>" in (out / "site" / "index.html").read_text()
    spanish = (out / "site" / "es" / "index.html").read_text()
    assert "<h1>Estado del servicio de Mill Road Fibre</h1>" in spanish


def test_a_spanish_page_leads_to_spanish_pages(drilled: tuple[DrillResult, Path]) -> None:
    _, out = drilled
    for path in (out / "site" / "es").rglob("*.html"):
        page = path.read_text()
        here = path.relative_to(out / "site" / "es").as_posix()
        up = "../" * here.count("/")
        english = [
            link
            for link in re.findall(r'href="([^"#]+\.html)"', page)
            if link == f"../{up}{here}" or link.startswith(f"../{up}")
        ]
        assert english == [f"../{up}{here}"], (path, english)  # only "English"


def test_counts_agree_and_every_dot_has_its_spaces(drilled: tuple[DrillResult, Path]) -> None:
    _, out = drilled
    for path in (out / "site").rglob("*.html"):
        page = path.read_text()
        assert not re.search(r"\b1 premises\b|\b1 customers\b", page), path
        assert not re.search(r"\S&middot;|&middot;\S", page), path
    index = (out / "site" / "index.html").read_text()
    assert re.search(r"\d+% of days without an outage", index)
    page = (out / "site" / "incidents" / "1.html").read_text()  # no. 45's line, left out
    assert "1 premise still looks down; we are checking them." in page


def test_the_history_links_each_incident_to_its_page(drilled: tuple[DrillResult, Path]) -> None:
    _, out = drilled
    history = (out / "site" / "history.html").read_text()
    assert '<td><a href="incidents/1.html">Outage: Mill Road</a></td>' in history
    spanish = (out / "site" / "es" / "history.html").read_text()
    assert 'href="../incidents/' not in spanish  # no link leaves Spanish for English
    assert 'href="../history.html"' in spanish  # but the switch to English
    assert '<a href="incidents/1.html">Corte: Mill Road</a>' in spanish


def test_a_street_in_the_lookup_is_written_as_a_place() -> None:
    assert place_label("street:mill road") == "Mill Road"
    assert place_label("street:st john's road") == "St John's Road"
    assert place_label("district:CB1") == "CB1"
    assert place_label("CB1 2AB") == "CB1 2AB"
