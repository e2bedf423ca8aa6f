"""Publish atomically: write the new site into a fresh folder, then point the site's path
(a symbolic link) at it in one rename, so a reader sees the old site or the new, whole.

Only forewarn's own folders are moved aside or pruned: each build holds a marker file, and
a site folder that is not empty and has no marker (someone's page) is refused whole."""

from __future__ import annotations

import os
import shutil
import uuid
from datetime import datetime
from pathlib import Path

KEEP_VERSIONS = 3  # older ones go; a reader still inside one has had a few cycles to finish
MARKER = ".forewarn-site"  # in every build: this folder is forewarn's to replace


class NotOurs(ValueError):
    """The site folder holds files forewarn did not write; nothing was touched."""


def check_site_dir(site_dir: Path) -> None:
    """Refuse (NotOurs) a site folder that is not empty and was not made by forewarn."""
    if site_dir.is_symlink() or not site_dir.exists():
        return
    if not site_dir.is_dir() or (any(site_dir.iterdir()) and not (site_dir / MARKER).exists()):
        raise NotOurs(
            f"FOREWARN_SITE_DIR {site_dir} holds files forewarn did not write; "
            "point it at an empty or new folder (nothing was changed)"
        )


def publish(site_dir: Path, files: dict[str, bytes], now: datetime) -> Path:
    """Write `files` as a new version and swap `site_dir` over to it."""
    site_dir = Path(os.path.abspath(site_dir))
    check_site_dir(site_dir)
    versions = site_dir.parent / f".{site_dir.name}-versions"
    versions.mkdir(parents=True, exist_ok=True)
    # Unique even for two publications at the same (simulated) instant.
    stamp = f"{now.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}"
    fresh = versions / stamp
    fresh.mkdir(parents=True)
    (fresh / MARKER).write_bytes(b"")
    for relative, content in files.items():
        target = fresh / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    if site_dir.exists() and not site_dir.is_symlink():
        # An empty folder, or a plain one forewarn wrote before (marked): aside once.
        site_dir.rename(versions / f"previous-{stamp}")
    link = site_dir.parent / f".{site_dir.name}.link-{stamp}"
    link.symlink_to(fresh.relative_to(site_dir.parent), target_is_directory=True)
    os.replace(link, site_dir)  # the atomic step
    _prune(versions, keep=fresh)
    return site_dir


def _prune(versions: Path, keep: Path) -> None:
    folders = sorted(
        (p for p in versions.iterdir() if p.is_dir() and not p.is_symlink()),
        key=lambda p: p.stat().st_mtime,
    )
    for old in folders[:-KEEP_VERSIONS]:
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)
