"""What the Prefect UI shows of each incident: its delivery progress per channel, updated
as batches complete, and a table of its updates. Only inside a flow or task run."""

from __future__ import annotations

from collections.abc import Iterable

from prefect.artifacts import create_progress_artifact, create_table_artifact
from prefect.context import FlowRunContext, TaskRunContext
from sqlalchemy import select

from forewarn.context import Context
from forewarn.incidents.ledger import progress
from forewarn.store import incident_updates


def _in_a_run() -> bool:
    # The tests run tasks' code without the engine (task.fn); there is no UI to feed then.
    return TaskRunContext.get() is not None or FlowRunContext.get() is not None


def delivery_progress(ctx: Context, incident_ids: Iterable[int]) -> None:
    """One progress artifact per incident: settled share, and counts per channel."""
    if not _in_a_run():
        return
    with ctx.engine.connect() as conn:
        found = progress(conn, sorted(set(incident_ids)))
    for item in found:
        create_progress_artifact(
            item.percent,
            key=f"incident-{item.incident_id}-delivery",
            description=f"Incident {item.incident_id} deliveries\n\n{item.summary()}",
        )


def update_tables(ctx: Context, incident_ids: Iterable[int]) -> None:
    """One table artifact per incident: every update so far, oldest first."""
    if not _in_a_run():
        return
    ids = sorted(set(incident_ids))
    if not ids:
        return
    u = incident_updates.c
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            select(u.incident_id, u.seq, u.event, u.status, u.created_at, u.etr, u.body)
            .where(u.incident_id.in_(ids))
            .order_by(u.incident_id, u.seq)
        ).all()
    for incident_id in ids:
        table = [
            {"seq": r.seq, "event": r.event, "status": r.status,
             "at": r.created_at.isoformat(), "etr": r.etr.isoformat() if r.etr else "",
             "update": r.body}
            for r in rows
            if r.incident_id == incident_id
        ]  # fmt: skip
        create_table_artifact(
            table, key=f"incident-{incident_id}-updates", description=f"Incident {incident_id}"
        )
