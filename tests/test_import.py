"""`import-network`: bad rows reported and skipped, idempotent re-import, geocoding."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from forewarn.network import import_network
from forewarn.network.csvfile import CUSTOMER_COLUMNS, TOPOLOGY_COLUMNS, CsvFormatError
from forewarn.network.geocode import nominatim
from forewarn.store import customers, elements, geocode_cache, premises
from tests.conftest import NOW
from tests.servers import FakeNominatim, nominatim_server
from tests.town import customer_rows, topology_rows, write_csv


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
    cust = {p.line: p.reason for p in report.problems if p.file == "c.csv"}
    first_bad = good + 2
    assert "unknown element_id 'cpe-missing'" in cust[first_bad]
    assert "cannot be parsed" in cust[first_bad + 1]
    assert "duplicate customer_id 'c39'" in cust[first_bad + 2]
    assert "not an address" in cust[first_bad + 3]
    assert "unknown channel 'fax'" in cust[first_bad + 4]
    assert "broken CSV quoting" in cust[first_bad + 5]
    assert "expected 14 fields, found 5" in cust[first_bad + 6]
    assert count(engine, customers) == good + 1  # c906 loaded after the broken lines
    assert count(engine, elements) == 4 + 3 + 12


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
