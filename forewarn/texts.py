"""Where customer- and public-facing words come from: the Jinja templates in the root
folder `templates/` (shipped inside the package as `forewarn/templates`), with single
files overridden from FOREWARN_TEMPLATES_DIR. One environment factory for every text."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import jinja2

_PACKAGE = Path(__file__).parent


def shipped_templates() -> Path:
    """The templates forewarn ships: inside the installed package, or in a checkout's root."""
    inside = _PACKAGE / "templates"
    return inside if inside.is_dir() else _PACKAGE.parent / "templates"


@lru_cache(maxsize=4)
def environment(*, lstrip_blocks: bool = False, override: str | None = None) -> jinja2.Environment:
    """A template environment (autoescaping only for HTML; a missing value is an error).

    `override` (FOREWARN_TEMPLATES_DIR when not given) is a folder whose files replace
    the shipped ones of the same path, file by file."""
    folder = override if override is not None else os.environ.get("FOREWARN_TEMPLATES_DIR")
    loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(shipped_templates())]
    if folder:
        loaders.insert(0, jinja2.FileSystemLoader(folder))
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=lstrip_blocks,
        keep_trailing_newline=False,
    )
