"""Where an incident or planned work is, as ops give it: a network element, a GeoJSON area,
or an address and a radius; checked before anything is looked up."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from forewarn.cli.terminal import fail

if TYPE_CHECKING:
    from forewarn.context import Context
    from forewarn.incidents.ops import Target

# Exactly one of these (with --radius for --near), in `incident open` and `maintenance add`.
ElementOption = Annotated[str | None, typer.Option(help="A network element.")]
AreaOption = Annotated[
    str | None, typer.Option(help="A GeoJSON Polygon (a file or the JSON itself).")
]
NearOption = Annotated[str | None, typer.Option(help="An address, geocoded.")]
RadiusOption = Annotated[str | None, typer.Option(help="With --near: 300m, 2km...")]


def check_place(
    element: str | None, area: str | None, near: str | None, radius: str | None
) -> float | None:
    """Check where an incident is before anything is looked up: exactly one of --element,
    --area or --near (with a --radius that has its unit). Returns the radius in metres."""
    given = [x for x in (element, area, near) if x]
    if len(given) != 1:
        fail("give exactly one of --element, --area or --near (with --radius)")
    if not near:
        return None
    if not radius:
        fail("--near needs --radius, e.g. --radius 300m or 2km")
    return _metres(radius)


def find_target(
    ctx: Context, element: str | None, area: str | None, near: str | None, metres: float | None
) -> Target:
    """The premises named by one of --element, --area or --near/--radius (see check_place):
    the file is read and the address geocoded here, the rest is the ops' one resolver."""
    from forewarn.incidents.ops import find_target as resolve
    from forewarn.network.geocode import GeocodeError, nominatim

    if area and not area.lstrip().startswith("{") and Path(area).is_file():
        # GeoJSON given inline is not a path (a long one would not even be a valid name)
        area = Path(area).read_text(encoding="utf-8")
    if not near:
        return resolve(ctx.index(), element or None, area or None)
    assert metres is not None  # check_place checked it
    geocoder = nominatim(ctx.settings.geocoder_url, ctx.settings.geocoder_rate)
    try:
        found = geocoder(near)
    except GeocodeError as err:
        fail(f"--near {near!r}: {err}")
    if found is None:
        fail(f"could not find the address {near!r}")
    return resolve(ctx.index(), point=found, radius_m=metres)


def _metres(text: str) -> float:
    """'300m' or '2km' in metres; a bare number is refused (metres or kilometres?)."""
    value = text.strip().lower()
    unit = "km" if value.endswith("km") else "m" if value.endswith("m") else None
    try:
        number = float(value.removesuffix(unit)) if unit else None
    except ValueError:
        number = None
    if number is None or not number > 0:
        fail(f"--radius: not a distance: {text!r} (write 300m or 2km)")
    return number * 1000 if unit == "km" else number
