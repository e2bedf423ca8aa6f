"""Customer- and public-facing words live in templates/words/<locale>/: every sentence in
both locales, answers and durations in the customer's language, the Spanish page in
Spanish, and no English sentence built in Python under incidents/ or status_page/."""

from __future__ import annotations

import ast
import re
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from forewarn.config import Settings
from forewarn.context import Context
from forewarn.incidents.replies import Voice, handle_reply
from forewarn.notifiers.compose import render
from forewarn.store import customers
from forewarn.texts import duration, say, shipped_templates, word_names
from tests.conftest import NOW, run_cycle
from tests.test_content import LONGEST, row
from tests.town import Town, report_cabinet

FOREWARN = Path(__file__).parent.parent / "forewarn"
LOCALES = ("en", "es")


def test_every_sentence_exists_in_every_locale() -> None:
    names = word_names("en")
    assert names and all(word_names(locale) == names for locale in LOCALES)


def test_every_sentence_the_code_asks_for_is_shipped() -> None:
    shipped = set(word_names("en"))
    asked = set()
    for path in FOREWARN.rglob("*.py"):
        text = path.read_text()
        asked |= set(re.findall(r"\bsay\(\s*\"(\w+)\"", text))
        for family in ("update", "title"):
            kinds = re.findall(rf"{family}_words\(\s*\"(\w+)\"", text)
            asked |= {f"{family}_{kind}" for kind in kinds}
    # update_words(event) in open_case says one of these:
    asked |= {"update_still_down", "update_reopened", "update_report"}
    assert asked and asked <= shipped, asked - shipped
    assert {"reply_stop", "reply_start", "reply_help", "reply_out", "duration"} <= shipped


def test_durations_in_the_customers_language() -> None:
    assert duration(timedelta(days=14)) == "14 days"
    assert duration(timedelta(hours=3)) == "3 h"
    assert duration(timedelta(minutes=45)) == "45 min"
    assert duration(timedelta(days=14), "es") == "14 días"
    assert duration(timedelta(days=14), "fr") == "14 days"  # no French yet: English


def test_a_spanish_summary_says_its_duration_in_spanish() -> None:
    started = {"started_at": NOW - timedelta(days=14)}
    for channel in ("sms", "email"):
        spanish, _ = render(row(channel, "es", "summary", None, **started), LONGEST, NOW)
        english, _ = render(row(channel, "en", "summary", None, **started), LONGEST, NOW)
        # A text says it in GSM-7 letters ("días" would make it UCS-2, two segments).
        assert ("14 días" if channel == "email" else "14 dias") in spanish
        assert "days" not in spanish and "14 days" in english


def test_a_spanish_customers_stop_and_help_are_answered_in_spanish(
    town: Town, engine: Engine
) -> None:
    voice = Voice("Mill Road Fibre", "")
    with engine.begin() as conn:
        conn.execute(update(customers).where(customers.c.customer_id == "c41").values(locale="es"))
        phone = conn.execute(
            select(customers.c.phone).where(customers.c.customer_id == "c41")
        ).scalar_one()
        english = conn.execute(
            select(customers.c.phone).where(customers.c.customer_id == "c43")
        ).scalar_one()
        stop = handle_reply(conn, "sms", phone, "STOP", "SM1", NOW, voice)
        helped = handle_reply(conn, "sms", phone, "HELP", "SM2", NOW, voice)
        start = handle_reply(conn, "sms", phone, "START", "SM3", NOW, voice)
        out = handle_reply(conn, "sms", phone, "OUT", "SM4", NOW, voice)
        stop_en = handle_reply(conn, "sms", english, "STOP", "SM5", NOW, voice)
    assert stop == "Mill Road Fibre: no le enviaremos más avisos de cortes. " + (
        "Responda START para recibirlos de nuevo."
    )
    assert helped and "Responda STOP" in helped
    assert start and "vuelven a estar activos" in start
    assert out and "gracias por avisarnos" in out and "Próximo aviso: lun 20:00" in out
    assert stop_en and "you will get no more outage messages" in stop_en


def test_the_spanish_page_says_each_update_in_spanish(
    town: Town, engine: Engine, settings: Settings
) -> None:
    settings = settings.model_copy(update={"privacy_floor": 4})
    ctx = Context.build(settings)
    report_cabinet(settings.jsonl_feed, "cabA", "down", NOW)
    run_cycle(ctx, NOW + timedelta(minutes=5))
    report_cabinet(settings.jsonl_feed, "cabA", "up", NOW + timedelta(hours=1))
    run_cycle(ctx, NOW + timedelta(hours=1, minutes=5))
    run_cycle(ctx, NOW + timedelta(hours=2))
    [incident] = list((settings.site_dir / "es" / "incidents").glob("*.html"))
    spanish = incident.read_text()
    english = (settings.site_dir / "incidents" / incident.name).read_text()
    assert "Estamos investigando una avería que afecta a unos 4 domicilios" in spanish
    assert "El servicio se ha restablecido" in spanish
    assert "<h1>Corte: " in spanish and "<h1>Outage: " in english
    assert "We are investigating" not in spanish and "Service has been restored" not in spanish
    assert "We are investigating a fault affecting about 4 premises" in english
    # The JSON API keeps the English words, and says what they are.
    api = (settings.site_dir / "api/v2/incidents.json").read_text()
    assert "Service has been restored" in api and '"x_kind": "restored"' in api


# English words that give away a sentence (a message, not a name or a key).
ENGLISH = re.compile(
    r"\b(the|your|you|we|our|is|are|has|have|will|sorry|thanks?|please|no estimate|"
    r"premises|service|fault)\b",
    re.IGNORECASE,
)
# Calls whose strings are for ops, logs or errors, not customers.
FOR_OPS = {"debug", "info", "warning", "error", "exception", "append", "OpsError"}
# Keyword arguments kept for ops (the estimate history's reason).
OPS_KEYWORDS = {"reason"}
# Not sentences for customers: Statuspage's fixed API descriptions (the page shows its own
# words from site/strings.json), and what an ops error names.
ALLOWED = {"Minor Service Outage", "Major Service Outage", "the area"}


def _sentences(path: Path) -> list[tuple[int, str]]:
    """String literals (f-string parts included) that read like English sentences,
    outside docstrings, raises and calls for ops."""
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            skip.add(id(node.value))  # a docstring
        inside: list[ast.AST] = []
        if isinstance(node, ast.Raise):
            inside = [node]
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in FOR_OPS:
                inside = [node]
            inside += [k.value for k in node.keywords if k.arg in OPS_KEYWORDS]
        for part in inside:
            skip |= {id(n) for n in ast.walk(part)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            text = node.value
            if " " in text.strip() and ENGLISH.search(text) and text not in ALLOWED:
                found.append((node.lineno, text))
    return found


def test_no_english_sentence_for_customers_is_built_in_python() -> None:
    packages = [FOREWARN / "incidents", FOREWARN / "status_page"]
    files = [p for package in packages for p in sorted(package.glob("*.py"))]
    files += [FOREWARN / "notifiers" / "compose.py"]
    found = {
        f"{path.relative_to(FOREWARN)}:{line}": text
        for path in files
        for line, text in _sentences(path)
    }
    assert not found, found


def test_the_scan_catches_a_sentence(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""A docstring: the rules say nothing about docstrings."""\n'
        "def f(n):\n"
        '    log.info("the cycle took %s", n)\n'
        '    return f"We are sorry: {n} premises are down."\n'
    )
    assert {line for line, _ in _sentences(sample)} == {4}


def test_words_fall_back_to_english_for_an_unknown_locale() -> None:
    assert say("reply_stop", "fr", operator="X") == say("reply_stop", "en", operator="X")
    assert (shipped_templates() / "words" / "es" / "reply_stop.txt").is_file()
