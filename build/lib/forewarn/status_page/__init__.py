"""The public status site: static HTML in two locales, Statuspage-compatible JSON, an Atom
feed, a map of affected areas and an "Am I affected?" lookup, published atomically."""

from forewarn.status_page.components import Component, load_components
from forewarn.status_page.publish import publish
from forewarn.status_page.site import SiteData, collect, render
from forewarn.status_page.statuspage import PageConfig

__all__ = ["Component", "PageConfig", "SiteData", "collect", "load_components", "publish", "render"]
