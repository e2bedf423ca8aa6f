"""`forewarn at-risk`: at-risk customers in an outage who have not confirmed our message,
those needing a visit first; `forewarn at-risk reached ID --note` once someone reached them."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from forewarn.cli.ops import ops_context
from forewarn.cli.terminal import console, fail, shown

at_risk_app = typer.Typer(
    help="At-risk customers not yet confirmed, those needing a visit first; mark them reached.",
    invoke_without_command=True,
)


@at_risk_app.callback()
def at_risk(ctx: typer.Context) -> None:
    """At-risk customers in an outage not yet confirmed: visit needed first, then the
    longest waiting, with their needs, premise and phone."""
    if ctx.invoked_subcommand is not None:
        return
    from forewarn.incidents.safety import listing
    from forewarn.store import now_utc

    settings, context = ops_context(sending=False)
    zone = settings.time_zone
    now = now_utc()
    with context.engine.connect() as conn:
        rows = listing(conn)
    if not rows:
        console.print("No at-risk customer is waiting to be reached.")
        return
    table = Table(
        "check", "state", "unconfirmed", "customer", "needs", "premise", "phone", "incident"
    )
    for row in rows:
        waited = (now - row.asked_at).total_seconds() / 60
        state = {
            "visit": "visit needed",
            "calling": f"called ({row.calls} of 2)",
        }.get(row.state, "asked to confirm")
        table.add_row(
            str(row.id),
            state,
            f"{waited:,.0f} min (since {shown(row.asked_at, zone)})",
            escape(row.customer_id),
            escape(row.needs),
            escape(f"{row.address}, {row.postcode}" if row.postcode else row.address),
            escape(row.phone or "-"),
            str(row.incident_id),
        )
    console.print(table)


@at_risk_app.command("reached")
def reached(
    check: Annotated[int, typer.Argument(help="The check's number, as listed.")],
    note: Annotated[str, typer.Option(help="Who reached them, how, and how they are.")],
) -> None:
    """Someone reached the customer (a visit, a call by hand): off the list, in their history."""
    from forewarn.cleantext import clean
    from forewarn.incidents.safety import reached as mark_reached
    from forewarn.store import now_utc, writing

    text = " ".join(clean(note).split())
    if not text:
        fail("the note is empty: say who reached them and how")
    if len(text) > 2000:
        fail("the note is longer than 2000 characters")
    _, context = ops_context(sending=False)
    now = now_utc()
    done = writing(context.engine, lambda conn: mark_reached(conn, check, text, now), "reached")
    if not done:
        fail(f"no open check {check} (see `forewarn at-risk`)")
    console.print(f"check {check}: reached, noted")
