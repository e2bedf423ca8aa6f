"""Write the site to a fresh directory, then swap it in, so readers never see half a site."""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2

from forewarn.status_page.build import DESCRIPTIONS

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("forewarn", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_site(summary: dict[str, Any]) -> dict[str, bytes]:
    """Every file of the site, by relative path."""
    files: dict[str, bytes] = {}
    context = {"summary": summary, "descriptions": DESCRIPTIONS}
    index = _ENV.get_template("site/index.html.j2").render(context | {"root": ""})
    files["index.html"] = index.encode()
    summary = dict(summary)
    recent = summary.pop("x_recent_incidents", [])
    for incident in recent:
        page = _ENV.get_template("site/incident.html.j2").render(
            context | {"incident": incident, "root": "../"}
        )
        files[f"incidents/{incident['id']}.html"] = page.encode()
    files["api/v2/summary.json"] = _json(summary)
    files["api/v2/status.json"] = _json({"page": summary["page"], "status": summary["status"]})
    files["api/v2/components.json"] = _json(
        {"page": summary["page"], "components": summary["components"]}
    )
    files["api/v2/incidents.json"] = _json({"page": summary["page"], "incidents": recent})
    files["api/v2/incidents/unresolved.json"] = _json(
        {"page": summary["page"], "incidents": summary["incidents"]}
    )
    return files


def _json(data: object) -> bytes:
    return json.dumps(data, indent=2, ensure_ascii=False).encode()


def publish(site_dir: Path, files: dict[str, bytes], now: datetime) -> Path:
    """Write `files` beside `site_dir` and swap them into place."""
    site_dir = site_dir.resolve()
    parent = site_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    stamp = f"{now.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    fresh = parent / f".{site_dir.name}.new-{stamp}"
    shutil.rmtree(fresh, ignore_errors=True)
    for relative, content in files.items():
        target = fresh / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    old = parent / f".{site_dir.name}.old-{stamp}"
    if site_dir.exists():
        site_dir.rename(old)
    fresh.rename(site_dir)
    shutil.rmtree(old, ignore_errors=True)
    return site_dir
