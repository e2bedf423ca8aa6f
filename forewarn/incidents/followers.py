"""Followers: anyone may follow a place (a postcode, an address, an incident) without an
account, once confirmed, and hears what the public page says about incidents touching it.

A follow is asked for (the site's form, a FOLLOW text), confirmed (an email's signed link,
a text's YES), and then a recipient of the ledger like a customer, under the key
`follower:<hex>`: the same night policy, the same daily ceiling, never premise-level
words, only public incidents (a case below the privacy floor has no page and no follower).
A follow of an incident ends when it is resolved; a follow of a place lasts until stopped.
Long because consent is one life cycle, read best in one place: what may be asked (the
contact, the place, the limits, a STOP that stays), confirmed, and stopped.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import phonenumbers
from phonenumbers import PhoneNumberType
from sqlalchemy import and_, exists, func, or_, select, true, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import ColumnElement

from forewarn.channels.mime import plain_address
from forewarn.network.address import premise_at, squeezed
from forewarn.network.phones import normalise_phones
from forewarn.store import FOLLOWER_PREFIX, customers, followers, incidents, premises

PREFIX = FOLLOWER_PREFIX
Via = Literal["web", "sms"]


def is_follower(key: str) -> bool:
    """Whether a ledger recipient key is a follower's."""
    return key.startswith(PREFIX)


@dataclass(frozen=True, slots=True)
class Limits:
    """How much one source may ask: follows asked per hour from one IP or number, and
    for one place; follows one contact may hold."""

    per_origin_hour: int = 10
    per_place_hour: int = 30
    per_contact: int = 20
    # Follows asked on the site's form in an hour, from everyone: each costs a text or an
    # email, so many origins at once (rotated IPs) are capped too.
    web_hour: int = 1000


LIMITS = Limits()


class FollowError(ValueError):
    """A request that cannot be a follow (no contact, a malformed one); its message names
    the words (templates/words) that tell the asker why."""


@dataclass(frozen=True, slots=True)
class Place:
    """A place resolved against the network: its kind, key and how it is named."""

    kind: Literal["postcode", "premise", "incident"]
    key: str
    label: str


@dataclass(frozen=True, slots=True)
class Asked:
    """What a request came to: the follow made (None: nothing to follow, a limit, or one
    already asked), and why not, for the log (never told to the asker: no enumeration)."""

    follower_id: str | None
    reason: str = ""
    label: str = ""
    # Refused by a limit (a flood): not worth an answer that costs a text.
    limited: bool = False


def contact_of(text: str, region: str) -> tuple[str, str]:
    """(channel, contact) for what someone typed: an email address or a phone number."""
    text = text.strip()
    if not text:
        raise FollowError("follow_no_contact")
    if len(text) > 320:
        raise FollowError("follow_bad_contact")
    if "@" in text:
        if not plain_address(text) or text.count("@") != 1:
            raise FollowError("follow_bad_contact")
        return "email", text.lower()
    number = normalise_phones([text[:64]], region)[0]
    if not number.startswith("+") or not _a_local_mobile(number, region):
        raise FollowError("follow_bad_contact")
    return "sms", number


def _a_local_mobile(number: str, region: str) -> bool:
    """Whether an E.164 number is a mobile of the operator's country calling code: a
    confirmation is a text we pay for, so never to a premium, satellite or foreign number
    (SMS pumping). By calling code, not region: +44 7911 is Guernsey's, and +44 all the
    same."""
    parsed = phonenumbers.parse(number)
    kind = phonenumbers.number_type(parsed)
    mobile = kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)
    return mobile and parsed.country_code == phonenumbers.country_code_for_region(region.upper())


_INCIDENT = re.compile(r"^(?:incident\s*#?\s*|#)?(\d{1,9})$", re.IGNORECASE)


def resolve_place(conn: Connection, text: str, addresses: bool = True) -> Place | None:
    """The place someone named: an incident id ("12", "incident 12"), or a postcode the
    network knows, named alone, at the end of an address, or (with `addresses`) by an
    address the network knows. An address is followed as its postcode: a follower hears
    what the page says of an area, never of one line (nor is told the network's own
    spelling of an address). None: no such place."""
    text = " ".join(text.split())[:200]
    if not text:
        return None
    number = _INCIDENT.match(text)
    # Bare digits are a postcode first where postcodes are digits (a US ZIP, 02139), then
    # an incident id; "incident 12" or "#12" is always the incident.
    zip_code = _postcode(conn, text) if number is not None and text.isdigit() else None
    if number is not None and zip_code is None:
        i = incidents.c
        found = conn.execute(
            select(i.id, i.area_name, i.title).where(i.id == int(number.group(1)), i.public)
        ).first()
        if found is None:
            return None
        return Place("incident", str(found.id), f"{found.area_name or found.title} ({found.id})")
    _, comma, tail = text.rpartition(",")
    postcode = zip_code or _postcode(conn, text) or (_postcode(conn, tail) if comma else None)
    if postcode is None and addresses:
        premise = premise_at(conn, text)  # one premise, or nothing
        postcode = str(premise.postcode) if premise is not None and premise.postcode else None
    return None if postcode is None else Place("postcode", postcode, postcode)


def _postcode(conn: Connection, text: str) -> str | None:
    """The network's postcode `text` names, as typed or without spaces, any case."""
    postcode = (
        conn.execute(
            select(premises.c.postcode).where(premises.c.postcode == text.upper()).limit(1)
        ).scalar()
        or conn.execute(
            select(premises.c.postcode)
            .where(func.upper(func.replace(premises.c.postcode, " ", "")) == squeezed(text))
            .limit(1)
        ).scalar()
    )
    return str(postcode) if postcode else None


def ask(
    conn: Connection,
    channel: str,
    contact: str,
    place_text: str,
    locale: str,
    zone: str,
    via: Via,
    origin: str,
    now: datetime,
    limits: Limits = LIMITS,
    addresses: bool = True,
) -> Asked:
    """Record a request to follow a place, pending until confirmed; one already made
    (pending or followed) is not made again, a stopped one is asked afresh."""
    hour = now - timedelta(hours=1)
    f = followers.c
    recent = select(func.count()).select_from(followers).where(f.requested_at > hour)
    if conn.execute(recent.where(f.requested_from == origin[:128])).scalar_one() >= (
        limits.per_origin_hour
    ):
        reason = f"{origin} asked {limits.per_origin_hour} follows this hour"
        return Asked(None, reason=reason, limited=True)
    if via == "web" and (
        conn.execute(recent.where(f.requested_via == "web")).scalar_one() >= limits.web_hour
    ):
        return Asked(
            None, reason=f"{limits.web_hour} follows asked on the site this hour", limited=True
        )
    if via == "web" and said_stop(conn, channel, contact):
        # Only their own FOLLOW text (from that number) may undo a STOP, never a form.
        return Asked(None, reason=f"{contact} said STOP")
    place = resolve_place(conn, place_text, addresses)
    if place is None:
        return Asked(None, reason="no such place on the network")
    if conn.execute(recent.where(f.place == place.key)).scalar_one() >= limits.per_place_hour:
        reason = f"{limits.per_place_hour} follows of {place.label} asked this hour"
        return Asked(None, reason=reason, limited=True)
    held = conn.execute(
        select(func.count())
        .select_from(followers)
        .where(f.contact == contact, f.state.in_(("pending", "active")))
    ).scalar_one()
    if held >= limits.per_contact:
        return Asked(None, reason=f"{contact} already holds {limits.per_contact} follows")
    same = and_(
        f.channel == channel, f.contact == contact, f.place_kind == place.kind, f.place == place.key
    )
    before = conn.execute(select(f.follower_id, f.state).where(same)).first()
    if before is not None and before.state in ("pending", "active"):
        return Asked(before.follower_id, reason="already asked", label=place.label)
    values = {
        "label": place.label[:256],
        "locale": locale,
        "timezone": zone,
        "state": "pending",
        "requested_at": now,
        "requested_via": via,
        "requested_from": origin[:128],
        "confirm_sent_at": None,
        "confirm_error": None,
        "confirmed_at": None,
        "confirmed_by": None,
        "ended_at": None,
        "end_reason": None,
    }
    if before is not None:  # stopped or ended before: asked afresh, confirmed afresh
        conn.execute(update(followers).where(same).values(**values))
        return Asked(str(before.follower_id), label=place.label)
    follower_id = PREFIX + secrets.token_hex(8)
    conn.execute(
        followers.insert().values(
            follower_id=follower_id,
            channel=channel,
            contact=contact,
            place_kind=place.kind,
            place=place.key,
            **values,
        )
    )
    return Asked(follower_id, label=place.label)


def said_stop(conn: Connection, channel: str, contact: str) -> bool:
    """Whether this number or address said STOP (or unsubscribed): of a follow, or as a
    customer who opted out."""
    f, c = followers.c, customers.c
    stopped = conn.execute(
        select(f.follower_id)
        .where(f.contact == contact, f.end_reason.in_(("stop", "unsubscribe link")))
        .limit(1)
    ).first()
    field = c.phone if channel == "sms" else func.lower(c.email)
    opted_out = conn.execute(
        select(c.customer_id).where(field == contact, c.opted_out.is_(True)).limit(1)
    ).first()
    return stopped is not None or opted_out is not None


def confirm(conn: Connection, follower_ids: Sequence[str], how: str, now: datetime) -> list[str]:
    """Confirm these pending follows (a signed link opened, a YES); the places now followed."""
    f = followers.c
    pending = and_(f.follower_id.in_(follower_ids), f.state == "pending")
    labels = list(conn.execute(select(f.label).where(pending).order_by(f.label)).scalars())
    conn.execute(
        update(followers).where(pending).values(state="active", confirmed_at=now, confirmed_by=how)
    )
    return labels


def pending(conn: Connection, follower_id: str) -> tuple[str, str] | None:
    """A follow still to confirm: its place as named and its language (None: no such
    follow, or no longer pending)."""
    f = followers.c
    row = conn.execute(
        select(f.label, f.locale).where(f.follower_id == follower_id, f.state == "pending")
    ).first()
    return None if row is None else (str(row.label), str(row.locale))


def confirm_number(conn: Connection, number: str, now: datetime) -> list[str]:
    """A YES from a number: confirm every follow it was asked to confirm; their places."""
    f = followers.c
    ids = conn.execute(
        select(f.follower_id).where(
            f.channel == "sms",
            f.contact == number,
            f.state == "pending",
            f.confirm_sent_at.is_not(None),
        )
    ).scalars()
    return confirm(conn, list(ids), "sms yes", now)


def stop(conn: Connection, where: ColumnElement[bool], reason: str, now: datetime) -> int:
    """End the follows `where` selects (a STOP, an unsubscribe link, ops); how many."""
    live = and_(where, followers.c.state.in_(("pending", "active", "ended")))
    changed = update(followers).where(live).values(state="stopped", ended_at=now, end_reason=reason)
    return int(conn.execute(changed).rowcount)


def stop_contact(conn: Connection, contact: str, reason: str, now: datetime) -> int:
    """End every follow of one number or address (STOP ends them all); how many."""
    return stop(conn, followers.c.contact == contact, reason, now)


def stop_follower(conn: Connection, follower_id: str, reason: str, now: datetime) -> bool:
    """End one follow (its unsubscribe link, or ops); whether it existed."""
    f = followers.c
    found = conn.execute(select(f.follower_id).where(f.follower_id == follower_id)).first()
    stop(conn, f.follower_id == follower_id, reason, now)
    return found is not None


@dataclass(frozen=True, slots=True)
class Confirmation:
    """A confirmation to send: to whom, on which channel, for which place, in what words."""

    follower_id: str
    channel: str
    contact: str
    label: str
    locale: str


def confirmations_due(
    conn: Connection, now: datetime, limit: int = 500, channels: Sequence[str] | None = None
) -> list[Confirmation]:
    """The confirmations the form's requests are owed (on these `channels`, or all),
    claimed for sending (once: a contact that never confirms gets one confirmation, never
    more, however often it is asked for, and a contact that said STOP gets none from a
    form)."""
    f = followers.c
    other = followers.alias("other")
    o = other.c
    outstanding = exists().where(
        o.contact == f.contact, o.confirm_sent_at.is_not(None), o.confirmed_at.is_(None)
    )
    stopped = exists().where(o.contact == f.contact, o.end_reason == "stop")
    rows = conn.execute(
        select(f.follower_id, f.channel, f.contact, f.label, f.locale)
        .where(
            f.state == "pending",
            f.requested_via == "web",
            f.confirm_sent_at.is_(None),
            ~outstanding,
            ~stopped,
            true() if channels is None else f.channel.in_(channels),
        )
        .order_by(f.requested_at)
        .limit(limit)
    ).all()
    chosen: dict[str, Confirmation] = {}
    for row in rows:  # one per contact per pass, for the same reason
        chosen.setdefault(row.contact, Confirmation(*row))
    if chosen:
        ids = [c.follower_id for c in chosen.values()]
        conn.execute(update(followers).where(f.follower_id.in_(ids)).values(confirm_sent_at=now))
    return list(chosen.values())


def confirmation_sent(conn: Connection, follower_ids: Sequence[str], now: datetime) -> None:
    """Note that these follows were asked to confirm (a FOLLOW text's answer asks it)."""
    conn.execute(
        update(followers)
        .where(followers.c.follower_id.in_(follower_ids))
        .values(confirm_sent_at=now)
    )


def confirmation_failed(conn: Connection, failures: dict[str, str]) -> None:
    """Note why confirmations did not go (they are not sent again: the asker may ask again)."""
    for follower_id, why in failures.items():
        conn.execute(
            update(followers)
            .where(followers.c.follower_id == follower_id)
            .values(confirm_error=why[:500])
        )


@dataclass(frozen=True, slots=True)
class Follow:
    """One follow as ops see it."""

    follower_id: str
    channel: str
    contact: str
    place_kind: str
    label: str
    state: str
    requested_at: datetime
    requested_via: str
    requested_from: str
    confirmed_at: datetime | None
    confirmed_by: str | None
    ended_at: datetime | None
    end_reason: str | None


def find(conn: Connection, lookup: str, region: str) -> list[Follow]:
    """Follows matching an id, a contact (a number as ops type it), a postcode or an
    incident id, newest first."""
    f = followers.c
    text = lookup.strip()
    keys = {text, text.lower(), text.upper()}
    if not text.startswith(PREFIX) and "@" not in text:
        number = normalise_phones([text], region)[0]
        if number.startswith("+"):
            keys.add(number)
    matching = or_(
        f.follower_id.in_(keys),
        f.contact.in_(keys),
        f.place.in_(keys),
        func.upper(func.replace(f.label, " ", "")) == text.replace(" ", "").upper(),
    )
    columns = [f[name] for name in Follow.__dataclass_fields__]
    rows = conn.execute(select(*columns).where(matching).order_by(f.requested_at.desc()))
    return [Follow(*row) for row in rows]


def counts(conn: Connection) -> dict[str, int]:
    """Follows by state, for `forewarn status`."""
    rows = conn.execute(select(followers.c.state, func.count()).group_by(followers.c.state))
    return {str(state): int(n) for state, n in rows}


__all__ = [
    "LIMITS",
    "PREFIX",
    "Asked",
    "Confirmation",
    "Follow",
    "FollowError",
    "Limits",
    "Place",
    "ask",
    "confirm",
    "confirm_number",
    "confirmation_failed",
    "confirmation_sent",
    "confirmations_due",
    "contact_of",
    "counts",
    "find",
    "is_follower",
    "pending",
    "resolve_place",
    "stop_contact",
    "stop_follower",
]
