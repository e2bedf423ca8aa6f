"""`forewarn customer`: one customer's incidents and every message out and reply in."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from forewarn.cli.ops import ops_context
from forewarn.cli.terminal import console, fail, shown
from forewarn.config import Settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


def lookup_region(settings: Settings, conn: Connection) -> str:
    """The country a national number typed by ops belongs to: FOREWARN_PHONE_REGION when
    set, else the one the customers were imported with (`--region`), else the default."""
    from forewarn.network.importer import PHONE_REGION
    from forewarn.store import get_meta

    if "phone_region" in settings.model_fields_set:
        return settings.phone_region
    return get_meta(conn, PHONE_REGION) or settings.phone_region


def customer(
    lookup: Annotated[str, typer.Argument(help="Id, phone, email, social handle or address.")],
    limit: Annotated[int, typer.Option(help="How many history lines to show.")] = 50,
) -> None:
    """One customer's incidents and every message out and reply in, newest first."""
    from forewarn.incidents.history import find_customers, history, incidents_of

    settings, ctx = ops_context(sending=False)
    zone = settings.time_zone
    with ctx.engine.connect() as conn:
        found = find_customers(conn, lookup, lookup_region(settings, conn))
        if not found:
            fail(f"no customer matches {lookup!r}")
        if len(found) > 1:
            table = Table("customer", "address", "phone", "email", "social")
            for c in found:
                table.add_row(
                    escape(c.customer_id),
                    escape(c.address),
                    escape(c.phone or ""),
                    escape(c.email or ""),
                    escape(c.social or ""),
                )
            console.print(table)
            console.print(f"{len(found)} customers match; look one up by id")
            return
        who = found[0]
        cases = incidents_of(conn, who.premise_id)
        lines = history(conn, who.customer_id, limit)
    console.print(
        f"[bold]{escape(who.customer_id)}[/bold], {escape(who.address)}; channels "
        f"{escape(who.channels)}{' (opted out)' if who.opted_out else ''}"
    )
    contacts = [
        f"{label} {escape(value)}"
        for label, value in (("phone", who.phone), ("email", who.email), ("social", who.social))
        if value
    ]
    console.print(
        f"{'; '.join(contacts) or 'no phone, email or handle'}; language {who.locale or 'en'}, "
        f"zone {who.timezone or 'UTC'}",
        highlight=False,
    )
    if who.needs:  # ops' eyes only: never on the page, never in a public post
        console.print(f"at risk when the line fails: {escape(who.needs)}", highlight=False)
    table = Table("incident", "title", "status", "this premise", "since", "resolved")
    for i in cases:
        table.add_row(
            str(i.id),
            escape(i.title),
            i.status,
            i.premise_state,
            shown(i.started_at, zone),
            shown(i.resolved_at, zone),
        )
    console.print(table if cases else "No incidents.")
    table = Table("when", "", "channel", "incident", "status", "text")
    for e in lines:
        text = e.text if e.answer is None else f"{e.text}\n-> {e.answer}"
        table.add_row(
            shown(e.at, zone),
            "out" if e.direction == "out" else "in",
            e.channel,
            str(e.incident_id or ""),
            escape(e.status),
            escape(text),
        )
    console.print(table if lines else "No messages yet.")


def follower(
    lookup: Annotated[
        str, typer.Argument(help="Follower id, phone, email, postcode, or incident id.")
    ],
    remove: Annotated[
        bool, typer.Option(help="Stop the follows found (they hear nothing more).")
    ] = False,
) -> None:
    """People following a place without an account: what, since when, with what consent."""
    from forewarn.incidents.followers import find, stop_follower
    from forewarn.store import now_utc, writing

    settings, ctx = ops_context(sending=False)
    zone = settings.time_zone
    with ctx.engine.connect() as conn:
        found = find(conn, lookup, lookup_region(settings, conn))
    if not found:
        fail(f"no follower matches {lookup!r}")
    table = Table("follower", "contact", "follows", "state", "asked", "confirmed", "ended")
    for f in found:
        table.add_row(
            escape(f.follower_id),
            escape(f"{f.channel} {f.contact}"),
            escape(f"{f.place_kind} {f.label}"),
            f.state,
            escape(f"{shown(f.requested_at, zone)} by {f.requested_via} from {f.requested_from}"),
            escape(f"{shown(f.confirmed_at, zone)} by {f.confirmed_by}") if f.confirmed_at else "",
            escape(f"{shown(f.ended_at, zone)}: {f.end_reason}") if f.ended_at else "",
        )
    console.print(table)
    if remove:
        now = now_utc()

        def work(conn: Connection) -> int:
            live = [f for f in found if f.state in ("pending", "active", "ended")]
            return sum(stop_follower(conn, f.follower_id, "removed by ops", now) for f in live)

        removed = writing(ctx.engine, work, "remove followers")
        console.print(f"removed {removed:,} follow{'s' if removed != 1 else ''}")
