"""The public site as software nobody here wrote reads it (issue 21, items 12 and 14): the
Nu HTML Checker finds no error on any page, and a page on another origin (an operator's
home page embedding the status) can read the JSON in a real browser."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from forewarn import pipeline
from forewarn.config import Settings
from forewarn.context import Context
from forewarn.network import import_network
from forewarn.network.synthetic import generate
from forewarn.receiver import create_app
from tests.conftest import NOW, run_cycle, serving

VNU = Path(__file__).parent / "node/node_modules/vnu-jar/build/dist/vnu.jar"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
OUTPUT = Path(__file__).parent.parent / "test-output"
AXE = Path(__file__).parent / "node/node_modules/axe-core/axe.min.js"
# A moment with microseconds, as the real clock gives them (HTML allows three digits).
MOMENT = NOW + timedelta(minutes=5, microseconds=123456)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Context, Path]]:
    """A town of 1,000 premises with a cabinet and a PON port down, published."""
    here = tmp_path_factory.mktemp("outside")
    town = generate(here / "town", 1000)
    settings = Settings(
        db_url=SecretStr(f"sqlite:///{here / 'forewarn.db'}"), site_dir=here / "site",
        outbox=here / "outbox", jsonl_feed=str(here / "feed.jsonl"), time_zone="Europe/London",
        operator_name="Riverside Fibre", _env_file=None,  # type: ignore[call-arg]
    )  # fmt: skip
    ctx = Context.build(settings)
    import_network(ctx.engine, town.topology, town.customers, None, NOW)
    with open(here / "feed.jsonl", "w") as feed:
        for n in [*range(320, 384), *range(640, 656)]:
            feed.write(json.dumps({"element": f"cpe{n}", "state": "down", "at": NOW.isoformat()}))
            feed.write("\n")
    assert len(run_cycle(ctx, MOMENT).changes.opened) == 2
    yield ctx, settings.site_dir
    ctx.close()


@pytest.mark.integration
def test_the_nu_html_checker_finds_no_error_on_any_page(site: tuple[Context, Path]) -> None:
    _, root = site
    pages = sorted(root.rglob("*.html"))
    assert len(pages) >= 8
    assert ".123Z" in (root / "index.html").read_text()  # the moment's milliseconds, kept
    assert nu_errors(pages) == []


def need_chromium() -> None:
    """Skip without Debian's chromium, except in CI, where its absence is a failure."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("chromium missing: scripts/test.sh installs it")
        pytest.skip("needs Debian chromium")


def nu_errors(pages: list[Path]) -> list[tuple[str, str]]:
    """The Nu HTML Checker's errors on these pages: (page, message)."""
    if not VNU.exists() or shutil.which("java") is None:
        if os.environ.get("CI"):
            pytest.fail("vnu.jar or java missing: scripts/test.sh installs them")
        pytest.skip("needs Java and tests/node/node_modules (npm ci)")
    done = subprocess.run(
        ["java", "-jar", str(VNU), "--errors-only", "--format", "json", *map(str, pages)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    found = json.loads(done.stderr or '{"messages": []}')["messages"]
    return [(m["url"].rsplit("/", 2)[-1], m["message"]) for m in found]


def test_the_public_json_may_be_read_from_any_origin_and_the_hooks_may_not(
    site: tuple[Context, Path],
) -> None:
    ctx, root = site
    with serving(create_app(ctx.engine, "token", 1000, root)) as base:
        origin = {"Origin": "https://www.riverside.example"}
        for path in ("/api/v2/summary.json", "/history.atom", "/areas.geojson", "/index.html"):
            answer = httpx.get(base + path, headers=origin)
            assert answer.status_code == 200, path
            assert answer.headers["access-control-allow-origin"] == "*", path
        hook = httpx.post(base + "/hooks/alertmanager", headers=origin, content=b"{}")
        assert "access-control-allow-origin" not in hook.headers


WIDGET = """<!doctype html><html lang="en"><head><title>Riverside</title></head><body>
<p id="status">loading</p>
<script>
fetch("%s/api/v2/summary.json")
  .then((r) => r.json())
  .then((s) => { document.getElementById("status").textContent = s.status.description; })
  .catch((e) => { document.getElementById("status").textContent = "blocked: " + e; });
</script></body></html>"""


@pytest.mark.integration
def test_a_page_on_another_origin_shows_the_status_in_a_real_browser(
    site: tuple[Context, Path],
) -> None:
    need_chromium()
    from playwright.sync_api import sync_playwright

    ctx, root = site
    summary = json.loads((root / "api/v2/summary.json").read_text())
    with serving(create_app(ctx.engine, None, 1000, root)) as status:

        def home(_: Any) -> HTMLResponse:
            return HTMLResponse(WIDGET % status)

        # Another origin: another port on loopback.
        with serving(Starlette(routes=[Route("/", home)])) as elsewhere:
            assert elsewhere.rsplit(":", 1)[1] != status.rsplit(":", 1)[1]
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
                )
                page = browser.new_page()
                page.goto(elsewhere + "/")
                page.wait_for_function("document.getElementById('status').textContent != 'loading'")
                shown = page.locator("#status").inner_text()
                browser.close()
    assert shown == summary["status"]["description"]


def png(size: int = 256) -> bytes:
    """A plain light-grey PNG tile, written by hand (no imaging library needed)."""
    raw = b"".join(b"\x00" + b"\xdd\xdd\xdd" * size for _ in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


@pytest.mark.integration
def test_the_areas_are_drawn_over_a_street_map_of_local_tiles_and_read_without_scripts(
    site: tuple[Context, Path], tmp_path: Path
) -> None:
    need_chromium()
    from playwright.sync_api import sync_playwright

    ctx, _ = site
    asked: list[str] = []
    tile = png()

    def tiles(request: Any) -> Response:
        asked.append(request.url.path)
        return Response(tile, media_type="image/png")

    with serving(Starlette(routes=[Route("/{z}/{x}/{y}.png", tiles)])) as tile_server:
        settings = ctx.settings.model_copy(update={
            "map_tiles": tile_server + "/{z}/{x}/{y}.png", "site_dir": tmp_path / "site",
            "map_attribution": "Tiles © Riverside Maps",
        })  # fmt: skip
        mapped = Context(settings, ctx.engine, httpx.Client(), ctx.registry)
        pipeline.publish_site(mapped, MOMENT)
        mapped.http.close()
        root = settings.site_dir
        assert (root / "assets/leaflet/leaflet.js").exists()
        assert nu_errors([root / "index.html", root / "es" / "index.html"]) == []
        names = [
            f["properties"]["name"]
            for f in json.loads((root / "areas.geojson").read_text())["features"]
        ]
        with serving(create_app(ctx.engine, None, 1000, root)) as base, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 900, "height": 1400})
            hosts: set[str] = set()
            page.on("request", lambda r: hosts.add(r.url.split("/")[2]))
            page.goto(base + "/index.html")
            page.wait_for_selector("#street-map .leaflet-tile-loaded")
            shapes = page.locator("#street-map path.leaflet-interactive").count()
            labels = page.locator("#street-map .leaflet-tooltip").all_inner_texts()
            credit = page.locator("#street-map .leaflet-control-attribution").inner_text()
            drawn_shown = page.locator("svg.map").is_visible()
            page.add_script_tag(path=str(AXE))
            axe = page.evaluate(
                "async () => await axe.run(document, {runOnly: ['wcag2a', 'wcag2aa']})"
            )
            violations = [f"{v['id']}: {v['help']}" for v in axe["violations"]]
            OUTPUT.mkdir(exist_ok=True)
            page.screenshot(path=str(OUTPUT / "status-street-map.png"), full_page=True)
            # Without JavaScript: the drawn map and the named list, no street map.
            plain = browser.new_context(java_script_enabled=False).new_page()
            plain.goto(base + "/index.html")
            plain_svg = plain.locator("svg.map polygon.area").count()
            plain_box = plain.locator("#street-map").is_visible()
            plain_names = plain.locator(
                "section[aria-labelledby=map-heading] figcaption li"
            ).all_inner_texts()
            browser.close()
    assert violations == []  # the street map keeps the page accessible
    assert shapes == len(names) == 2
    assert sorted(labels) == sorted(names)
    assert "Tiles © Riverside Maps" in credit
    assert not drawn_shown  # the street map took the drawn one's place
    assert asked and all(path.endswith(".png") for path in asked)
    assert hosts <= {base.split("/")[2], tile_server.split("/")[2]}  # nothing from a CDN
    assert plain_svg == 2 and not plain_box
    assert [n.split(" (")[0] for n in plain_names] == names
