"""Keeping the conversation going between changes: the promised follow-up, the warning
before an estimate passes, notices of planned work, and at-risk incidents from degraded
elements. Run on a schedule (the follow-up flow); every step is safe to repeat."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.engine import Connection

from forewarn.channels import CHANNELS
from forewarn.detection import states as state_store
from forewarn.incidents import record, safety
from forewarn.incidents.ledger import PUBLIC
from forewarn.incidents.lock import incidents_lock
from forewarn.incidents.matching import NewIncident, area_of, open_incident
from forewarn.incidents.updates import (
    CLEAR,
    NewUpdate,
    Policy,
    Set,
    incident_zones,
)
from forewarn.network import NetworkIndex
from forewarn.store import deliveries, element_states, etr_history, incident_updates, incidents
from forewarn.texts import stamp, title_words, update_words

# Incidents whose customers are owed updates on the cadence.
CONVERSING = ("detected", "ops", "reply")


@dataclass(slots=True)
class FollowUps:
    """What one pass did, by incident id."""

    reminded: list[int] = field(default_factory=list)
    warned: list[int] = field(default_factory=list)
    maintenance: list[int] = field(default_factory=list)
    at_risk: list[int] = field(default_factory=list)
    # At-risk customers' checks now listed for a visit (unconfirmed too long).
    visits: list[int] = field(default_factory=list)
    # At-risk customers' checks now called (unconfirmed too long, or after a first call).
    calls: list[int] = field(default_factory=list)

    @property
    def changed(self) -> list[int]:
        """Every incident that got an update."""
        return sorted({*self.reminded, *self.warned, *self.maintenance, *self.at_risk})


def follow_up(conn: Connection, index: NetworkIndex, now: datetime, policy: Policy) -> FollowUps:
    """Warn before estimates pass, keep promised updates, move planned work along, and
    open or close at-risk incidents."""
    incidents_lock(conn)
    done = FollowUps()
    done.warned = _warn_before_estimates_pass(conn, now, policy)
    done.reminded = _keep_promises(conn, now, policy)
    done.maintenance = _planned_work(conn, now, policy)
    done.at_risk = _at_risk(conn, index, now, policy)
    escalated = safety.escalate(conn, now, policy.confirm_within, policy.calling, policy.call_wait)
    done.visits, done.calls = escalated.visits, escalated.calls
    return done


def _open_conversations(conn: Connection) -> list[Any]:
    """Open incidents whose customers are owed updates (read afresh by each step: the one
    before may have just moved an incident's promise)."""
    return list(
        conn.execute(
            select(incidents).where(
                incidents.c.status != "resolved",
                incidents.c.notify.is_(True),
                incidents.c.source.in_(CONVERSING),
            )
        )
    )


def warning_time(row: Any, policy: Policy, zones: Sequence[str] = ()) -> datetime | None:
    """When customers (in `zones`) must hear that the announced estimate will be missed.

    A set time before it; but if that falls in the night, before the evening's quiet
    hours when the estimate was given before they began, or else before sleep hours
    (at once, if the estimate was given too close to them). An estimate given during the
    night is warned of with the morning's news: its announcement waited for the morning
    too, and the warning supersedes it, so no customer is left holding an estimate that
    passed without word."""
    etr: datetime | None = row.etr
    if etr is None or row.etr_warned == etr:
        return None
    warn_at = etr - policy.etr_warning
    evening = policy.cadence.held_since(warn_at, zones, routine=True)
    if evening is not None and evening - policy.etr_warning > row.updated_at:
        return min(warn_at, evening - policy.etr_warning)
    sleep = policy.cadence.held_since(warn_at, zones, routine=False)
    if sleep is None or row.updated_at >= sleep:
        return warn_at
    updated: datetime = row.updated_at
    return max(updated, sleep - policy.etr_warning)


def _warn_before_estimates_pass(conn: Connection, now: datetime, policy: Policy) -> list[int]:
    warned = []
    for row in _open_conversations(conn):
        if row.etr is None or row.etr_warned == row.etr:
            continue  # nothing to warn of: no need to look up the customers' zones
        warn_at = warning_time(row, policy, incident_zones(conn, row.id))
        if warn_at is None or now < warn_at:
            continue
        latest = conn.execute(
            select(etr_history)
            .where(etr_history.c.incident_id == row.id)
            .order_by(etr_history.c.id.desc())
            .limit(1)
        ).first()
        # Ops may have given a later estimate that was too close to announce: it is the
        # new estimate now, unless it too is about to pass. Otherwise there is none yet.
        later = latest.etr if latest and latest.etr and latest.etr > row.etr else None
        if later is not None and later < now + policy.etr_warning:
            later = None
        missed = f"{row.etr:%Y-%m-%d %H:%M}"
        heard = _anyone_heard(conn, row.id, row.etr)
        if later is None:
            body = update_words("etr_missed", missed=stamp(row.etr), later=None)
            reason = "about to pass" if heard else "passing before any customer heard it"
            why = f"estimate of {missed} UTC {reason}"
            record.add_estimate(conn, row.id, None, now, reason=why, announced=True)
        else:
            assert latest is not None
            body = update_words("etr_missed", missed=stamp(row.etr), later=stamp(later))
            record.estimate_announced(conn, latest.id)
        record.change(conn, row.id, etr_warned=row.etr)
        event = "etr_missed"
        if not heard:
            # Given in the night and still held for the morning: nobody is told that an
            # estimate they never heard will be missed; the morning says what stands now
            # (and replaces the held message that would hand them a passed estimate).
            event = "followup"
            body = update_words("followup", etr=stamp(later) if later else None)
        news = NewUpdate(event, row.status, body, True, etr=CLEAR if later is None else Set(later))
        record.add_update(conn, row.id, news, now, policy)
        warned.append(int(row.id))
    return warned


def _anyone_heard(conn: Connection, incident_id: int, etr: datetime) -> bool:
    """Whether any customer was sent an update of the incident carrying this estimate."""
    d, u = deliveries.c, incident_updates.c
    found = conn.execute(
        select(d.id)
        .join(incident_updates, and_(u.incident_id == d.incident_id, u.seq == d.update_seq))
        .where(
            d.incident_id == incident_id,
            u.etr == etr,
            d.status == "sent",
            d.customer_id != PUBLIC,
            d.channel.in_([c.name for c in CHANNELS.values() if not c.partners]),
        )
        .limit(1)
    ).first()
    return found is not None


def _keep_promises(conn: Connection, now: datetime, policy: Policy) -> list[int]:
    reminded = []
    for row in _open_conversations(conn):
        if row.next_update_at is None or row.next_update_at > now:
            continue
        body = update_words("followup", etr=stamp(row.etr))
        record.add_update(conn, row.id, NewUpdate("followup", row.status, body, True), now, policy)
        reminded.append(int(row.id))
    return reminded


def _planned_work(conn: Connection, now: datetime, policy: Policy) -> list[int]:
    moved = []
    planned = conn.execute(
        select(incidents).where(
            incidents.c.source == "maintenance", incidents.c.status != "resolved"
        )
    ).all()
    for row in planned:
        start, end = row.scheduled_for, row.scheduled_until
        if now >= end:
            _close(conn, row.id, "maintenance_end", update_words("maintenance_end"), True,
                   now, policy)  # fmt: skip
        elif now >= start and row.status == "scheduled":
            body = update_words("maintenance_start", end=stamp(end))
            news = NewUpdate("maintenance_start", "in_progress", body, True, next_update=CLEAR)
            record.add_update(conn, row.id, news, now, policy)
            record.change(conn, row.id, status="in_progress")
        elif row.status == "scheduled" and _notice_due(conn, row, now, policy):
            body = update_words("maintenance_notice", starts=stamp(start), ends=stamp(end))
            news = NewUpdate("maintenance_notice", "scheduled", body, True, next_update=CLEAR)
            record.add_update(conn, row.id, news, now, policy)
        else:
            continue
        moved.append(int(row.id))
    return moved


def _notice_due(conn: Connection, row: Any, now: datetime, policy: Policy) -> bool:
    """Whether the latest notice time has passed without a notice since (a job added at
    short notice gets one notice at once, not every notice it missed)."""
    start: datetime = row.scheduled_for
    due = [start - ahead for ahead in policy.notices if start - ahead <= now]
    if not due:
        return False
    last = conn.execute(
        select(incident_updates.c.created_at)
        .where(
            incident_updates.c.incident_id == row.id,
            incident_updates.c.event == "maintenance_notice",
        )
        .order_by(incident_updates.c.seq.desc())
        .limit(1)
    ).scalar()
    return last is None or last < max(due)


def _at_risk(conn: Connection, index: NetworkIndex, now: datetime, policy: Policy) -> list[int]:
    degraded = {
        str(element)
        for element, since in conn.execute(
            select(element_states.c.element_id, element_states.c.since).where(
                element_states.c.state == "degraded"
            )
        )
        if since <= now - policy.degraded_after and element in index.tree.index
    }
    open_rows = conn.execute(select(incidents).where(incidents.c.status != "resolved")).all()
    watched = {row.root_element: row for row in open_rows if row.source == "at_risk"}
    busy = {row.root_element for row in open_rows if row.source != "at_risk"}
    changed = []
    for element in sorted(degraded - set(watched) - busy):
        rows = index.premises_under(element)
        area = area_of(conn, index, element, policy.privacy_floor)
        new = NewIncident(
            rows, title_words("at_risk", area=area), source="at_risk", root_element=element,
            notify=False, body=update_words("degraded", premises=f"{len(rows):,}", area=area),
        )  # fmt: skip
        incident_id = open_incident(conn, index, new, now, policy)
        changed.append(incident_id)
    ended = [element for element in watched if element not in degraded]
    states = dict(
        conn.execute(
            select(element_states.c.element_id, element_states.c.state).where(
                element_states.c.element_id.in_(ended)
            )
        ).all()
    )
    for element in ended:
        row = watched[element]
        if states.get(element) == "down":
            # The outage incident takes over; its own messages say what happened.
            body = update_words("cleared_down")
            _close(conn, row.id, "cleared", body, False, now, policy)
        else:
            # Customers who had a heads-up hear that the risk is over.
            body = update_words("cleared")
            _close(conn, row.id, "cleared", body, bool(row.notify), now, policy)
        changed.append(int(row.id))
    return changed


def _close(
    conn: Connection, incident_id: int, event: str, body: str, notify: bool, now: datetime,
    policy: Policy,
) -> None:  # fmt: skip
    """Resolve an incident with a last update (which promises nothing more)."""
    news = NewUpdate(event, "resolved", body, notify, next_update=CLEAR)
    record.add_update(conn, incident_id, news, now, policy)
    record.change(conn, incident_id, status="resolved", resolved_at=now, next_update_at=None)


def next_due(conn: Connection, policy: Policy) -> list[datetime]:
    """When the conversation next has something to do: a promised update, a warning
    before an estimate passes, planned work's notices, start and end, and an element
    degraded long enough to open an at-risk incident."""
    due = [
        st.since + policy.degraded_after
        for st in state_store.load(conn).values()
        if st.state == "degraded" and not st.confirmed
    ]
    for row in conn.execute(select(incidents).where(incidents.c.status != "resolved")):
        due += [m for m in (row.next_update_at, row.scheduled_for, row.scheduled_until) if m]
        if row.etr is not None and row.etr_warned != row.etr:
            warning = warning_time(row, policy, incident_zones(conn, row.id))
            due += [warning] if warning else []
        due += [row.scheduled_for - n for n in policy.notices if row.scheduled_for]
    return due + safety.next_due(conn, policy.confirm_within, policy.call_wait)
