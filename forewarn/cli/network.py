"""`forewarn import-network`: load or update the topology and the customers from CSV files,
with a progress bar and one line per row skipped or kept with a warning."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forewarn.cli.terminal import console, progress
from forewarn.config import Settings


def import_network_command(
    topology: Annotated[
        Path,
        typer.Argument(
            help="Topology CSV (element_id,parent_id,kind,name,lat,lon).",
            exists=True,
            dir_okay=False,
        ),
    ],
    customers: Annotated[
        Path, typer.Argument(help="Customers CSV (see README).", exists=True, dir_okay=False)
    ],
    region: Annotated[
        str | None,
        typer.Option(
            help="Country for phone numbers written without + (default: FOREWARN_PHONE_REGION)."
        ),
    ] = None,
    show: Annotated[int, typer.Option(help="How many problems to list.")] = 50,
    encoding: Annotated[
        str | None,
        typer.Option(
            help="The files' encoding, e.g. cp1252 or latin-1 (default: UTF-8, or "
            "Windows-1252 for a file that turns out not to be UTF-8)."
        ),
    ] = None,
) -> None:
    """Load or update topology and customers; geocode rows without coordinates."""
    from forewarn.network import import_network
    from forewarn.network.csvfile import CsvFormatError
    from forewarn.network.geocode import nominatim
    from forewarn.network.phones import NOT_VALID
    from forewarn.store import make_engine, now_utc

    settings = Settings()
    engine = make_engine(settings.db_url)
    geocoder = nominatim(settings.geocoder_url, settings.geocoder_rate)
    with customers.open("rb") as handle:
        rows = max(sum(1 for _ in handle) - 1, 0)
    try:
        with progress() as bar:
            task = bar.add_task("customers", total=rows)
            report = import_network(
                engine,
                topology,
                customers,
                geocoder,
                now_utc(),
                region or settings.phone_region,
                progress=lambda done: bar.update(task, completed=done),
                encoding=encoding,
            )
    except CsvFormatError as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from None
    console.print(
        f"elements {report.elements:,}, premises {report.premises:,}, "
        f"customers {report.customers:,}, geocoded {report.geocoded:,}"
    )
    if report.problems:
        console.print(
            f"[yellow]{len(report.problems):,} rows skipped or kept with a warning:[/yellow]"
        )
        for problem in report.problems[:show]:
            console.print(f"  {problem}", markup=False, highlight=False)
        if len(report.problems) > show:
            console.print(f"  ... and {len(report.problems) - show:,} more (use --show)")
    invalid = sum(1 for p in report.problems if NOT_VALID in p.reason)
    if invalid and region is None and "phone_region" not in settings.model_fields_set:
        console.print(
            f"[yellow]{invalid:,} phone numbers were read as {settings.phone_region} numbers "
            "(numbers without + belong to FOREWARN_PHONE_REGION, unset here) and are not "
            "valid there: if your customers are elsewhere, import again with --region and "
            "the country's code (GB, DE, AU, ...), or set FOREWARN_PHONE_REGION.[/yellow]"
        )
