"""`forewarn maintenance`: planned work, with notices to the affected premises only."""

from __future__ import annotations

from typing import Annotated

import typer

from forewarn.cli.ops import ops_context, parse_when
from forewarn.cli.places import (
    AreaOption,
    ElementOption,
    NearOption,
    RadiusOption,
    check_place,
    find_target,
)
from forewarn.cli.terminal import console, fail, shown
from forewarn.store import now_utc, writing

maintenance_app = typer.Typer(
    help="Planned work, with notices to the affected premises only.", no_args_is_help=True
)


@maintenance_app.command("add")
def maintenance_add(
    title: Annotated[str, typer.Option(help="What the work is.")],
    start: Annotated[str, typer.Option(help="When it starts: 2026-11-30T01:00 or +3d.")],
    end: Annotated[str, typer.Option(help="When it ends.")],
    element: ElementOption = None,
    area: AreaOption = None,
    near: NearOption = None,
    radius: RadiusOption = None,
) -> None:
    """Schedule planned work: notices ahead (FOREWARN_MAINTENANCE_NOTICES), at start, at end."""
    from forewarn.incidents.ops import OpsError, add_maintenance

    metres = check_place(element, area, near, radius)
    settings, ctx = ops_context()
    now = now_utc()
    starts, ends = parse_when(start, settings, now), parse_when(end, settings, now)
    assert starts is not None and ends is not None
    try:
        target = find_target(ctx, element, area, near, metres)
        incident_id = writing(
            ctx.engine,
            lambda conn: add_maintenance(
                conn, ctx.index(), target, title, starts, ends, now, ctx.policy
            ),
            "maintenance add",
        )
    except OpsError as err:
        fail(str(err))
    console.print(
        f"planned work {incident_id}: {len(target.rows):,} premises, "
        f"{shown(starts, settings.time_zone)} to {shown(ends, settings.time_zone)}; notices "
        + ", ".join(f"{n} ahead" for n in ctx.policy.notices)
        + ", at start and at end"
    )
