"""`import-network`: bad rows reported and skipped, idempotent re-import, geocoding."""

from __future__ import annotations

import random
import shlex
from collections.abc import Iterator
from pathlib import Path

import phonenumbers
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from forewarn.cli import app
from forewarn.network import import_network
from forewarn.network.csvfile import (
    CUSTOMER_COLUMNS,
    TOPOLOGY_COLUMNS,
    CsvFormatError,
    Problem,
)
from forewarn.network.geocode import nominatim
from forewarn.network.phones import Shortcut, normalise_phones
from forewarn.store import customers, elements, geocode_cache, make_engine, premises
from testkit.servers import FakeNominatim, nominatim_server
from tests.conftest import NOW
from tests.town import customer_rows, topology_rows, write_csv

ROOT = Path(__file__).parent.parent


def count(engine: Engine, table: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def customer_field(engine: Engine, customer_id: str, column: str) -> object:
    with engine.connect() as conn:
        return conn.execute(
            select(customers.c[column]).where(customers.c.customer_id == customer_id)
        ).scalar_one()


def test_import_normalises_phones_and_loads_everything(town: object, engine: Engine) -> None:
    assert count(engine, elements) == 4 + 3 + 12
    assert count(engine, customers) == 12
    assert customer_field(engine, "c45", "phone") == "+447911123045"


def test_a_long_import_reports_its_progress_chunk_by_chunk(
    tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("forewarn.network.importer.CHUNK_ROWS", 5)
    topology = write_csv(tmp_path / "t.csv", TOPOLOGY_COLUMNS, topology_rows())
    people = write_csv(tmp_path / "c.csv", CUSTOMER_COLUMNS, customer_rows())
    heard: list[int] = []
    import_network(engine, topology, people, None, NOW, "GB", progress=heard.append)
    assert heard == [5, 10, 12]


def test_bad_rows_are_reported_with_line_and_reason_and_the_rest_loads(
    tmp_path: Path, engine: Engine
) -> None:
    topo: list[list[object]] = [
        *topology_rows(),
        ["cpe45", "cabA", "cpe", "again", "", ""],  # duplicate id
        ["orphan", "nowhere", "cabinet", "x", "", ""],  # unknown parent
        ["orphan-child", "orphan", "cpe", "x", "", ""],  # parent skipped
        ["loop1", "loop2", "cpe", "x", "", ""],  # cycle
        ["loop2", "loop1", "cpe", "x", "", ""],
        ["badcoord", "cabA", "cpe", "x", "95", "0"],
    ]
    topology = write_csv(tmp_path / "t.csv", TOPOLOGY_COLUMNS, topo)
    rows = customer_rows()
    good = len(rows)
    bad = [
        ["c900", "p900", "cpe-missing", "1 Nowhere", "X", "", "", "07911 123900", "", "", "sms",
         "en", "Europe/London", 0],
        ["c901", "p901", "cpe41", "2 Mill Road", "X", "", "", "not a phone", "", "", "sms",
         "en", "Europe/London", 0],
        ["c39", "p39", "cpe39", "39 Mill Road", "X", "", "", "07911 123039", "", "", "sms",
         "en", "Europe/London", 0],
        ["c902", "p902", "cpe43", "3 Mill Road", "X", "", "", "", "bad@", "", "email",
         "en", "Europe/London", 0],
        ["c903", "p903", "cpe43", "4 Mill Road", "X", "", "", "", "a@b.org", "", "fax",
         "en", "Europe/London", 0],
    ]  # fmt: skip
    path = write_csv(tmp_path / "c.csv", CUSTOMER_COLUMNS, rows + bad)
    with path.open("a") as handle:
        handle.write('c904,p904,cpe43,"5 Mill Road,X,,,,,,sms,en,UTC,0\n')  # broken quoting
        handle.write("c905,p905,cpe43,only,four\n")  # too few fields
        handle.write("c906,p906,cpe43,6 Mill Road,X,,,07911 123906,,,sms,en,UTC,0\n")  # fine

    report = import_network(engine, topology, path, None, NOW, "GB")

    topo_reasons = {p.reason for p in report.problems if p.file == "t.csv"}
    assert any("duplicate element_id 'cpe45'" in r for r in topo_reasons)
    assert "unknown parent_id 'nowhere'" in topo_reasons
    assert "parent 'orphan' was skipped" in topo_reasons
    assert "parent links form a cycle" in topo_reasons
    assert any("out of range" in r for r in topo_reasons)
    cust = reasons_by_line(report.problems, "c.csv")
    first_bad = good + 2
    assert "unknown element_id 'cpe-missing'" in cust[first_bad]
    assert (
        "customer 'c901' cannot be reached: phone 'not a phone' cannot be parsed"
        in cust[first_bad + 1]
    )
    assert "duplicate customer_id 'c39'" in cust[first_bad + 2]
    assert (
        "customer 'c902' cannot be reached: email 'bad@' is not an address" in cust[first_bad + 3]
    )
    assert "unknown channel 'fax' ignored" in cust[first_bad + 4]  # c903 kept: email works
    assert "broken CSV quoting" in cust[first_bad + 5]
    assert "expected 14 fields, found 5" in cust[first_bad + 6]
    assert count(engine, customers) == good + 2  # c903, and c906 after the broken lines
    assert customer_field(engine, "c903", "channels") == "email"
    assert count(engine, elements) == 4 + 3 + 12


def reasons_by_line(problems: list[Problem], file: str) -> dict[int, str]:
    """Every reason given for each line of one file, joined (a kept row may have several)."""
    found: dict[int, list[str]] = {}
    for problem in problems:
        if problem.file == file:
            found.setdefault(problem.line, []).append(problem.reason)
    return {line: " | ".join(reasons) for line, reasons in found.items()}


def test_reimport_updates_and_never_duplicates(
    town: object, tmp_path: Path, engine: Engine
) -> None:
    rows = customer_rows()
    rows[0][10] = "email"  # c39 changes preference
    path = write_csv(tmp_path / "c2.csv", CUSTOMER_COLUMNS, rows)
    topology = write_csv(tmp_path / "t2.csv", TOPOLOGY_COLUMNS, topology_rows())
    report = import_network(engine, topology, path, None, NOW, "GB")
    assert report.problems == []
    assert count(engine, customers) == 12 and count(engine, premises) == 12
    assert count(engine, elements) == 19
    assert customer_field(engine, "c39", "channels") == "email"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"element_id,kind\nx,cpe\n", "missing columns parent_id, name, lat, lon"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
    ],
    ids=["missing-columns", "not-utf8"],
)
def test_unreadable_files_fail_clearly(
    tmp_path: Path, engine: Engine, content: bytes, message: str
) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(content)
    with pytest.raises(CsvFormatError, match=message):
        import_network(engine, path, None, None, NOW)


def test_huge_lines_are_skipped_not_fatal(tmp_path: Path, engine: Engine) -> None:
    rows: list[list[object]] = [*topology_rows(), ["x" * 20000, "ex1", "cpe", "huge", "", ""]]
    report = import_network(
        engine, write_csv(tmp_path / "t.csv", TOPOLOGY_COLUMNS, rows), None, None, NOW
    )
    assert [p.reason for p in report.problems] == ["line longer than 8192 characters"]
    assert report.elements == 19


@pytest.fixture
def geocoder_url() -> Iterator[str]:
    with nominatim_server() as url:
        yield url


def test_geocoding_through_geopy_is_cached(
    tmp_path: Path, engine: Engine, geocoder_url: str
) -> None:
    topology = write_csv(tmp_path / "t.csv", TOPOLOGY_COLUMNS, topology_rows())
    rows = customer_rows()
    for row in rows[:3]:
        row[5] = row[6] = ""  # no coordinates
    rows[2][3] = "1 Nowhere Lane"
    path = write_csv(tmp_path / "c.csv", CUSTOMER_COLUMNS, rows)
    geocoder = nominatim(geocoder_url, per_second=100)

    report = import_network(engine, topology, path, geocoder, NOW, "GB")
    assert report.geocoded == 2
    assert [p.reason for p in report.problems] == ["kept without coordinates: not found"]
    assert len(FakeNominatim.requests) == 3
    with engine.connect() as conn:
        lat = conn.execute(select(premises.c.lat).where(premises.c.premise_id == "p39")).scalar()
    assert lat == pytest.approx(52.2051)
    assert count(engine, geocode_cache) == 3

    again = import_network(engine, topology, path, geocoder, NOW, "GB")
    assert again.geocoded == 2
    assert len(FakeNominatim.requests) == 3  # every answer came from the cache


def test_unreachable_geocoder_keeps_rows_and_caches_nothing(tmp_path: Path, engine: Engine) -> None:
    topology = write_csv(tmp_path / "t.csv", TOPOLOGY_COLUMNS, topology_rows())
    rows = customer_rows()
    rows[0][5] = rows[0][6] = ""
    path = write_csv(tmp_path / "c.csv", CUSTOMER_COLUMNS, rows)
    geocoder = nominatim(
        "http://127.0.0.1:9", per_second=100, retry_wait_s=0
    )  # nothing listens on port 9
    report = import_network(engine, topology, path, geocoder, NOW, "GB")
    assert [p.reason for p in report.problems] == ["kept without coordinates: geocoder unavailable"]
    assert count(engine, customers) == 12
    assert count(engine, geocode_cache) == 0


# --- no customer dropped for a field (issue 13, item 7) ----------------------------------
COLUMN = {name: i for i, name in enumerate(CUSTOMER_COLUMNS)}


def import_street_with(
    tmp_path: Path, engine: Engine, changes: dict[str, object], customer: str = "c39"
) -> tuple[int, list[str]]:
    """Import the street with some columns of one customer's row changed; that row's line
    and what the import said about it."""
    rows = customer_rows()
    index = next(i for i, row in enumerate(rows) if row[0] == customer)
    for column, value in changes.items():
        rows[index][COLUMN[column]] = value
    topology = write_csv(tmp_path / "t.csv", TOPOLOGY_COLUMNS, topology_rows())
    path = write_csv(tmp_path / "c.csv", CUSTOMER_COLUMNS, rows)
    report = import_network(engine, topology, path, None, NOW, "GB")
    line = index + 2
    return line, [p.reason for p in report.problems if p.line == line]


@pytest.mark.parametrize(
    ("written", "stored"),
    [("high", 1), ("Normal", 0), ("VIP", 2), ("critical", 3), ("low", -1), ("medium", 0),
     ("2", 2), ("-1", -1), ("3.0", 3), ("", 0)],
    ids=["high", "Normal", "VIP", "critical", "low", "medium", "number", "negative",
         "spreadsheet-float", "empty"],
)  # fmt: skip
def test_priority_takes_numbers_and_the_words_crms_export(
    tmp_path: Path, engine: Engine, written: str, stored: int
) -> None:
    _, said = import_street_with(tmp_path, engine, {"priority": written})
    assert said == []
    assert customer_field(engine, "c39", "priority") == stored


@pytest.mark.parametrize(
    ("column", "value", "stored", "warning"),
    [
        ("priority", "urgent-ish", 0, "kept without its priority: priority 'urgent-ish' is not"),
        ("priority", "9" * 30, 0, "kept without its priority"),  # beyond SQLite's integers
        ("locale", "English", "en", "kept without its locale: locale 'English' is not a lang"),
        ("timezone", "Mars/Olympus", "UTC", "kept without its time zone: unknown timezone"),
        ("social", "grace at social", None, "kept without its social handle: social 'grace at"),
        ("lat", "north", None, "kept without its coordinates: lat/lon must both be numbers"),
        ("phone", "9" * 5000, None, "kept without its phone: phone '9999"),
        ("email", f"a@{'b' * 400}.org", None, "kept without its email: email 'a@bbb"),
        ("social", "@" + "g" * 300, None, "kept without its social handle"),
    ],
    ids=[
        "priority-word",
        "priority-huge",
        "locale",
        "timezone",
        "social",
        "coordinates",
        "phone-huge",
        "email-huge",
        "social-huge",
    ],
)
def test_a_bad_field_is_dropped_with_a_warning_naming_line_and_customer(
    tmp_path: Path, engine: Engine, column: str, value: str, stored: object, warning: str
) -> None:
    line, said = import_street_with(tmp_path, engine, {column: value})
    assert any(reason.startswith(f"customer 'c39' {warning}") for reason in said), said
    assert line == 2
    assert count(engine, customers) == 12
    where = premises.c.premise_id == "p39" if column == "lat" else customers.c.customer_id == "c39"
    table = premises if column == "lat" else customers
    with engine.connect() as conn:
        assert conn.execute(select(table.c[column]).where(where)).scalar_one() == stored


def test_a_bad_phone_with_a_good_email_keeps_the_customer_on_email(
    tmp_path: Path, engine: Engine
) -> None:
    line, said = import_street_with(tmp_path, engine, {"phone": "12345"})
    assert said == ["customer 'c39' kept without its phone: phone '12345' is not a valid number"]
    assert line == 2
    assert customer_field(engine, "c39", "phone") is None
    assert customer_field(engine, "c39", "channels") == "email"
    assert count(engine, customers) == 12


def test_a_customer_who_prefers_only_an_unusable_channel_gets_the_ones_that_work(
    tmp_path: Path, engine: Engine
) -> None:
    _, said = import_street_with(tmp_path, engine, {"phone": "not a phone", "channels": "sms"})
    assert "customer 'c39': no preferred channel can reach them, using email" in said
    assert customer_field(engine, "c39", "channels") == "email"


def test_a_row_nothing_can_reach_is_skipped_with_its_reasons(
    tmp_path: Path, engine: Engine
) -> None:
    _, said = import_street_with(
        tmp_path, engine, {"phone": "12345", "email": "house39 at example", "social": ""}
    )
    assert said == [
        "customer 'c39' cannot be reached: phone '12345' is not a valid number; "
        "email 'house39 at example' is not an address"
    ]
    assert count(engine, customers) == 11
    _, said = import_street_with(tmp_path, engine, {"phone": "", "email": ""}, customer="c41")
    assert said == ["customer 'c41' cannot be reached: no phone, email or social handle"]


def test_a_handle_alone_reaches_a_customer(tmp_path: Path, engine: Engine) -> None:
    _, said = import_street_with(
        tmp_path, engine, {"phone": "", "email": "", "social": "@grace@social.example"}
    )
    assert said == [
        "customer 'c39': channel sms dropped, no address for it",
        "customer 'c39': channel email dropped, no address for it",
        "customer 'c39': no preferred channel can reach them, using social",
    ]
    assert customer_field(engine, "c39", "channels") == "social"


def test_region_defaults_to_the_phone_region_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOREWARN_DB_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("FOREWARN_PHONE_REGION", "GB")
    monkeypatch.setenv("FOREWARN_GEOCODER_URL", "http://127.0.0.1:9")
    topology = write_csv(tmp_path / "t.csv", TOPOLOGY_COLUMNS, topology_rows())
    people = write_csv(tmp_path / "c.csv", CUSTOMER_COLUMNS, customer_rows())
    result = CliRunner().invoke(app, ["import-network", str(topology), str(people)])
    assert result.exit_code == 0, result.output
    assert "customers 12" in result.output
    engine = make_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    assert customer_field(engine, "c45", "phone") == "+447911123045"
    engine.dispose()


def readme_example() -> list[str]:
    """The shell lines of the README's block that imports the bundled example."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = readme.split("```sh\n")[1:]
    block = next(b.split("```")[0] for b in blocks if "import-network examples/" in b)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]


def test_the_bundled_example_imports_with_the_readmes_commands_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("FOREWARN_DB_URL", f"sqlite:///{tmp_path / 'example.db'}")
    monkeypatch.delenv("FOREWARN_PHONE_REGION", raising=False)
    outputs = []
    for command in readme_example():
        words = shlex.split(command)
        if words[0] == "export":
            name, _, value = words[1].partition("=")
            monkeypatch.setenv(name, value)
            continue
        assert words[0] == "forewarn", command
        result = CliRunner().invoke(app, words[1:])
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    assert any("customers 12," in output for output in outputs), outputs
    assert not any("skipped or kept with a warning" in output for output in outputs), outputs
    engine = make_engine(f"sqlite:///{tmp_path / 'example.db'}")
    with engine.connect() as conn:
        phones = conn.execute(select(customers.c.phone)).scalars().all()
    engine.dispose()
    assert len(phones) == 12 and all(p and p.startswith("+447911") for p in phones)


def spellings(region: str, rng: random.Random) -> Iterator[str]:
    """Numbers as people write them: each type's example, changed a digit at a time, in
    national, international and unprefixed form, with and without separators."""
    code = phonenumbers.country_code_for_region(region)
    for kind in phonenumbers.PhoneNumberType.values():
        example = phonenumbers.example_number_for_type(region, kind)
        if example is None:
            continue
        national = phonenumbers.national_significant_number(example)
        for _ in range(40):
            digits = list(national)
            digits[rng.randrange(len(digits))] = rng.choice("0123456789")
            if rng.random() < 0.2:
                digits.insert(rng.randrange(len(digits)), rng.choice("0123456789"))
            changed = "".join(digits)
            for text in (f"0{changed}", f"+{code}{changed}", changed, f"00{code}{changed}"):
                yield text
                yield f"{text[:4]} {text[4:7]}-{text[7:]}"


@pytest.mark.parametrize("region", ["GB", "US", "DE", "FR", "AU", "IN", "IT", "ES", "CA", "BR"])
def test_the_phone_shortcut_agrees_with_phonenumbers(region: str) -> None:
    rng = random.Random(region)
    texts = list(dict.fromkeys(spellings(region, rng)))
    shortcut = Shortcut.for_region(region)
    vouched = {t: e for t in texts if (e := shortcut.e164(t)) is not None}
    slow = {t: r for t, r in zip(texts, slow_phones(texts, region), strict=True)}
    assert {t: slow[t] for t in vouched} == vouched
    assert normalise_phones(texts, region) == [slow[t] for t in texts]
    if region not in ("CA", "BR"):  # not a main region / a prefix rewrite: no shortcut
        assert len(vouched) > len(texts) / 10  # the shortcut does real work


def slow_phones(texts: list[str], region: str) -> list[str]:
    """What phonenumbers alone says of each text (the import's answer before the shortcut)."""
    out = []
    for text in texts:
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            out.append(f"phone {text[:32]!r} cannot be parsed")
            continue
        valid = phonenumbers.is_valid_number(number)
        format_ = phonenumbers.PhoneNumberFormat.E164
        out.append(
            phonenumbers.format_number(number, format_)
            if valid
            else f"phone {text[:32]!r} is not a valid number"
        )
    return out


def test_the_shortcut_takes_the_numbers_a_crm_exports() -> None:
    texts = ["07400 123456", "07400123456", "+44 7400 123456", "(0)7400 123456", "7400123456"]
    assert [Shortcut.for_region("GB").e164(t) for t in texts] == ["+447400123456"] * 5
    assert slow_phones(texts, "GB") == ["+447400123456"] * 5
    # 07911 1... is Guernsey's (same country code): valid, but left to phonenumbers
    assert Shortcut.for_region("GB").e164("07911 123456") is None
    assert Shortcut.for_region("US").e164("(651) 123-4567") is None  # no exchange starts with 1
    assert slow_phones(["(651) 123-4567"], "US") == ["phone '(651) 123-4567' is not a valid number"]
    assert Shortcut.for_region("US").e164("(651) 222-0123") == "+16512220123"
