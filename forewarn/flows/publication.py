"""Publication: rebuild the public site and swap it in. The detection cycle calls it when
an incident changes; `forewarn serve` also runs it on a schedule (history bars move daily)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from forewarn.flows.context import Context, context_for
from forewarn.status_page import SiteData, collect, load_components, publish, render
from forewarn.store import now_utc


def site_data(ctx: Context, now: datetime) -> SiteData:
    """Everything the site shows now, read from the store in one go."""
    with ctx.engine.connect() as conn:
        components = load_components(ctx.settings.components_file, conn)
        return collect(conn, ctx.index(), ctx.page, components, now)


def rebuild_site(ctx: Context, now: datetime) -> tuple[Path, int, SiteData]:
    """Render every file of the site and publish them atomically (no Prefect needed):
    where it went, how many files, and what they show."""
    data = site_data(ctx, now)
    files = render(data)
    return publish(ctx.settings.site_dir, files, now), len(files), data


@task(cache_policy=NO_CACHE)
def publish_site(ctx: Context, now: datetime) -> str:
    """Gather what the site shows, render every file, and publish them atomically."""
    site, files, data = rebuild_site(ctx, now)
    get_run_logger().info("site published: %d files, %d active incidents", files, len(data.active))
    return str(site)


@flow(name="publication")
def publication(now: datetime | None = None) -> str:
    """Rebuild the public site now."""
    ctx = context_for()
    return publish_site(ctx, now or now_utc())
