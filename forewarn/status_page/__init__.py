"""The public status site: Statuspage-compatible JSON and static HTML, published atomically."""

from forewarn.status_page.build import PageConfig, summary
from forewarn.status_page.publish import publish, render_site

__all__ = ["PageConfig", "publish", "render_site", "summary"]
