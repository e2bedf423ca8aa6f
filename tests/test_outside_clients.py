"""The public site as software nobody here wrote reads it (issue 21, items 12 and 14): the
Nu HTML Checker finds no error on any page, and a page on another origin (an operator's
home page embedding the status) can read the JSON in a real browser."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from forewarn.config import Settings
from forewarn.context import Context
from forewarn.network import import_network
from forewarn.network.synthetic import generate
from forewarn.receiver import create_app
from tests.conftest import NOW, run_cycle, serving

VNU = Path(__file__).parent / "node/node_modules/vnu-jar/build/dist/vnu.jar"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
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
    if not VNU.exists() or shutil.which("java") is None:
        if os.environ.get("CI"):
            pytest.fail("vnu.jar or java missing: scripts/test.sh installs them")
        pytest.skip("needs Java and tests/node/node_modules (npm ci)")
    _, root = site
    pages = sorted(str(p) for p in root.rglob("*.html"))
    assert len(pages) >= 8
    assert ".123Z" in (root / "index.html").read_text()  # the moment's milliseconds, kept
    done = subprocess.run(
        ["java", "-jar", str(VNU), "--errors-only", "--format", "json", *pages],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    found = json.loads(done.stderr or '{"messages": []}')["messages"]
    assert [(m["url"].rsplit("/", 2)[-1], m["message"]) for m in found] == []


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
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("chromium missing: scripts/test.sh installs it")
        pytest.skip("needs Debian chromium")
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
