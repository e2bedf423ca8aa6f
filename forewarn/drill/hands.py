"""What people do during a drill: ops' commands (open, update, resolve, heads-up,
planned work) and customers' texts, done through the same functions the CLI and the
receiver call."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from forewarn.channels import contact_of
from forewarn.detection.run import down_now
from forewarn.drill.scenario import DrillError, OpsStep, ReplyStep, ReportStep, TextStep
from forewarn.drill.summary import iso
from forewarn.durations import parse_time
from forewarn.incidents import followers, reporting
from forewarn.incidents.ops import (
    OpsError,
    add_maintenance,
    find_target,
    heads_up,
    open_by_ops,
    resolve_by_ops,
    update_by_ops,
)
from forewarn.incidents.replies import Voice, handle_reply
from forewarn.incidents.updates import CLEAR, KEEP, Change, Policy, Set
from forewarn.network import NetworkIndex
from forewarn.store import customers, incident_premises, incidents, premises


def act(conn: Connection, index: NetworkIndex, ops: OpsStep, now: datetime, policy: Policy) -> None:
    """Do what an ops step says, as the `forewarn incident` commands would."""
    try:
        if ops.action in ("open", "maintenance"):
            area = json.dumps(ops.area) if ops.area else None
            target = find_target(index, ops.element or None, area, ops.near, ops.radius_m)
            if ops.action == "open":
                open_by_ops(conn, index, target, ops.title or "Reported fault", now, policy)
            else:
                if not ops.start or not ops.end:
                    raise OpsError("maintenance needs start and end")
                add_maintenance(
                    conn, index, target, ops.title or "Planned work",
                    parse_time(ops.start, now, "UTC"), parse_time(ops.end, now, "UTC"),
                    now, policy,
                )  # fmt: skip
            return
        incident_id = _incident(conn, ops.incident)
        if ops.action == "update":
            etr: Change[datetime] = KEEP
            if ops.etr is not None:
                etr = CLEAR if ops.etr == "none" else Set(parse_time(ops.etr, now, "UTC"))
            update_by_ops(conn, incident_id, now, policy, ops.status, ops.cause,
                          estimate=etr, note=ops.note)  # fmt: skip
        elif ops.action == "resolve":
            resolve_by_ops(conn, index, incident_id, down_now(conn), now, policy)
        else:
            heads_up(conn, incident_id, ops.note, now, policy)
    except (OpsError, ValueError) as err:
        raise DrillError(f"at {iso(now)}: ops {ops.action}: {err}") from None


def _incident(conn: Connection, which: int | str) -> int:
    """An incident id, "latest" (the newest area incident), or "customer:ID" (that
    customer's newest incident, e.g. the case an OUT reply opened)."""
    if isinstance(which, int):
        return which
    query = select(incidents.c.id).order_by(incidents.c.id.desc())
    if which.startswith("customer:"):
        query = (
            query.join(incident_premises, incident_premises.c.incident_id == incidents.c.id)
            .join(customers, customers.c.premise_id == incident_premises.c.premise_id)
            .where(customers.c.customer_id == which.removeprefix("customer:"))
        )
    else:
        query = query.where(incidents.c.scope == "area")
    found = conn.execute(query.limit(1)).scalar()
    if found is None:
        raise DrillError(f"ops refer to incident {which!r}, but there is none yet")
    return int(found)


def customer_texts(
    conn: Connection, step: ReplyStep, now: datetime, voice: Voice
) -> list[dict[str, Any]]:
    """A customer's text (or email...) and the answer they get, as the drill records both."""
    field = contact_of(step.channel) or "phone"
    phone = conn.execute(
        select(customers.c[field]).where(customers.c.customer_id == step.customer)
    ).scalar()
    if phone is None:
        raise DrillError(f"reply from {step.customer!r}, who has no {field}")
    answer = handle_reply(conn, step.channel, phone, step.body, None, now, voice)
    heard = {
        "at": iso(now),
        "direction": "in",
        "channel": step.channel,
        "customer_id": step.customer,
    }
    said: list[dict[str, Any]] = [{**heard, "body": step.body}]
    if answer:
        case = conn.execute(
            select(incidents.c.id, incidents.c.next_update_at)
            .join(premises, premises.c.element_id == incidents.c.root_element)
            .join(customers, customers.c.premise_id == premises.c.premise_id)
            .where(customers.c.customer_id == step.customer, incidents.c.status != "resolved")
            .order_by(incidents.c.id.desc())
        ).first()
        said.append({
            "at": iso(now), "direction": "out", "channel": step.channel, "to": phone,
            "customer_id": step.customer, "incident_id": case.id if case else None,
            "event": "answer", "etr": None,
            "next_update_at": iso(case.next_update_at) if case and case.next_update_at else None,
            "body": answer,
        })  # fmt: skip
    return said


def anyone_texts(
    conn: Connection, step: TextStep, now: datetime, voice: Voice
) -> list[dict[str, Any]]:
    """A text from any number (a follower-to-be, a stranger) and its answer, as recorded."""
    answer = handle_reply(conn, "sms", step.sender, step.body, None, now, voice)
    heard = {"at": iso(now), "direction": "in", "channel": "sms", "from": step.sender}
    said: list[dict[str, Any]] = [{**heard, "body": step.body}]
    if answer:
        said.append({
            "at": iso(now), "direction": "out", "channel": "sms", "to": step.sender,
            "event": "answer", "body": answer,
        })  # fmt: skip
    return said


def site_report(
    conn: Connection, step: ReportStep, now: datetime, voice: Voice, region: str
) -> list[dict[str, Any]]:
    """A report on the site's form, taken as the receiver takes it; recorded as heard."""
    contact = followers.contact_of(step.contact, region) if step.contact else None
    reporting.take_from_site(
        conn, step.origin, step.place, contact, step.locale, voice.time_zone, now, voice.policy
    )
    return [{"at": iso(now), "direction": "in", "channel": "web", "from": step.origin,
             "body": step.place}]  # fmt: skip
