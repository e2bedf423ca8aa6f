"""What the ledger hands the channels: `DueDelivery`, one due ledger row with all its
message is composed from (read in one query per batch), and `Attempt`, what a send came
to, which the ledger records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Select, and_, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import ColumnElement

from forewarn.channels import CHANNELS
from forewarn.incidents import lanes
from forewarn.incidents.ledger.queue import PUBLIC
from forewarn.store import (
    customers,
    deliveries,
    followers,
    incident_updates,
    incidents,
    premises,
)


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """One ledger row that is due, with all its message is composed from.

    `customer_id` is PUBLIC for a public post and a partner key for a webhook; the
    customer's fields are None when there is no such customer. `recipient`, `sent_body`,
    `sent_subject` and `claimed_at` are what the (latest) claim wrote down; `reply_to` is
    the public post a public social update answers.
    """

    delivery_id: int
    incident_id: int
    update_seq: int
    customer_id: str
    channel: str
    attempts: int
    claimed_at: datetime | None
    recipient: str | None
    sent_body: str | None
    sent_subject: str | None
    # The customer and their premise.
    phone: str | None
    email: str | None
    social: str | None
    locale: str | None
    time_zone: str | None
    opted_out: bool | None
    address: str | None
    # The update this delivery tells.
    event: str
    update_status: str
    update_body: str
    # What the update's words say (its kind and values as JSON), to say it in any locale.
    update_kind: str | None
    update_params: str | None
    update_at: datetime
    etr: datetime | None
    next_update_at: datetime | None
    # Its incident.
    title: str
    incident_status: str
    area_name: str | None
    cause: str | None
    started_at: datetime
    resolved_at: datetime | None
    etr_warned: datetime | None
    scheduled_for: datetime | None
    scheduled_until: datetime | None
    reply_to: str | None = None
    # Whether the incident has a page of its own on the site (a message may point there).
    incident_public: bool = True
    # For a follower, the place they follow as they named it (their words are the page's).
    follows: str | None = None
    # What the customer's line keeps alive ("telecare"): at risk in an outage. None: not.
    needs: str | None = None

    @property
    def public(self) -> bool:
        """A public post, not a message to one customer."""
        return self.customer_id == PUBLIC


# How a send ended: the channels' outcomes, as the ledger records them.
Verdict = Literal["delivered", "retryable", "permanent"]


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one send (or a provider's or the journal's memory of it) came to."""

    delivery_id: int
    verdict: Verdict
    detail: str = ""
    ref: str | None = None


def due_rows(conn: Connection, where: ColumnElement[bool], limit: int) -> list[DueDelivery]:
    """Due ledger rows with all a message needs; locked rows are skipped on PostgreSQL.

    The rows are chosen first (index scans in queue order, each priority lane its share:
    lanes.py), then joined with what a message needs, for this batch only.
    """
    ids = lanes.choose(conn, where, limit)
    if not ids:
        return []
    query: Select[Any] = (
        select(
            deliveries.c.id.label("delivery_id"),
            deliveries.c.incident_id,
            deliveries.c.update_seq,
            deliveries.c.customer_id,
            deliveries.c.channel,
            deliveries.c.attempts,
            deliveries.c.claimed_at,
            deliveries.c.recipient,
            deliveries.c.body.label("sent_body"),
            deliveries.c.subject.label("sent_subject"),
            customers.c.phone,
            customers.c.email,
            customers.c.social,
            customers.c.locale,
            customers.c.timezone.label("time_zone"),
            customers.c.opted_out,
            premises.c.address,
            customers.c.needs,
            incident_updates.c.event,
            incident_updates.c.status.label("update_status"),
            incident_updates.c.body.label("update_body"),
            incident_updates.c.kind.label("update_kind"),
            incident_updates.c.params.label("update_params"),
            incident_updates.c.created_at.label("update_at"),
            incident_updates.c.etr,
            incident_updates.c.next_update_at,
            incidents.c.title,
            incidents.c.status.label("incident_status"),
            incidents.c.area_name,
            incidents.c.cause,
            incidents.c.started_at,
            incidents.c.resolved_at,
            incidents.c.etr_warned,
            incidents.c.scheduled_for,
            incidents.c.scheduled_until,
            incidents.c.public.label("incident_public"),
            followers.c.contact.label("f_contact"),
            followers.c.channel.label("f_channel"),
            followers.c.label.label("f_label"),
            followers.c.locale.label("f_locale"),
            followers.c.timezone.label("f_zone"),
            followers.c.state.label("f_state"),
        )
        .join(
            incident_updates,
            and_(
                incident_updates.c.incident_id == deliveries.c.incident_id,
                incident_updates.c.seq == deliveries.c.update_seq,
            ),
        )
        .join(incidents, incidents.c.id == deliveries.c.incident_id)
        .outerjoin(customers, customers.c.customer_id == deliveries.c.customer_id)
        .outerjoin(premises, premises.c.premise_id == customers.c.premise_id)
        .outerjoin(followers, followers.c.follower_id == deliveries.c.customer_id)
        .where(deliveries.c.id.in_(ids))
        .order_by(deliveries.c.rank, deliveries.c.id)
    )
    rows = [_as_follower(dict(row)) for row in conn.execute(query).mappings()]
    # A public post answers the incident's thread.
    threaded = {c.name for c in CHANNELS.values() if c.public}
    posts = {
        r["delivery_id"] for r in rows if r["channel"] in threaded and r["customer_id"] == PUBLIC
    }
    heads = {(r["incident_id"], r["channel"]) for r in rows if r["delivery_id"] in posts}
    threads = _thread_heads(conn, heads)
    return [
        DueDelivery(
            **row,
            reply_to=threads.get((row["incident_id"], row["channel"]))
            if row["delivery_id"] in posts
            else None,
        )
        for row in rows
    ]


def _as_follower(row: dict[str, Any]) -> dict[str, Any]:
    """A row with the follower's contact, language and zone where a customer's would be
    (a stopped or unconfirmed follow reads as opted out); a customer's row loses the
    follower columns."""
    contact, channel = row.pop("f_contact"), row.pop("f_channel")
    label, locale, zone, state = (row.pop(k) for k in ("f_label", "f_locale", "f_zone", "f_state"))
    if contact is None:
        return row
    field = CHANNELS[channel].contact if channel in CHANNELS else None
    if field is not None:
        row[field] = contact
    # Stopped, or asked afresh since and not yet confirmed again: nothing goes.
    stopped = state in ("stopped", "pending")
    row.update(locale=locale, time_zone=zone, opted_out=stopped, follows=label)
    return row


def _thread_heads(conn: Connection, heads: set[tuple[int, str]]) -> dict[tuple[int, str], str]:
    """The last public post of each incident's thread on each channel, which the next
    update answers."""
    if not heads:
        return {}
    rows = conn.execute(
        select(deliveries.c.incident_id, deliveries.c.channel, deliveries.c.provider_ref)
        .where(
            deliveries.c.incident_id.in_({incident_id for incident_id, _ in heads}),
            deliveries.c.channel.in_({name for _, name in heads}),
            deliveries.c.customer_id == PUBLIC,
            deliveries.c.status == "sent",
            deliveries.c.provider_ref.is_not(None),
        )
        .order_by(deliveries.c.update_seq)
    )
    return {(int(incident_id), str(name)): str(ref) for incident_id, name, ref in rows}


__all__ = ["Attempt", "DueDelivery", "Verdict", "due_rows"]
