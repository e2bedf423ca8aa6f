"""What customers say back, and what the provider tells us about what we sent.

Every reply is kept against the customer (or the sender, when they match nobody). STOP
and its synonyms opt the customer out of every channel at once; START brings them back;
HELP says who we are and how to stop. Twilio's status callbacks: incidents/callbacks.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from forewarn.channels import contact_of
from forewarn.cleantext import clean
from forewarn.incidents import follower_news, followers, reporting, safety
from forewarn.incidents.ops import reopen_for_customer
from forewarn.incidents.updates import Policy
from forewarn.network.address import premise_at
from forewarn.quiet import zone_info
from forewarn.store import customers, incident_premises, incidents, premises, replies
from forewarn.texts import day_time, say, zone_name

# The most of what someone wrote that an answer repeats back (a text we pay for).
SHOWN = 60
# FOLLOW texts from one number answered in an hour; a flood past them is not answered.
ANSWERS_PER_HOUR = 10

STOP_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
START_WORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})
# "How is my line?": in English and in Spanish.
STATUS_WORDS = frozenset({"STATUS", "ESTADO"})
# "Tell me about this place" (REG as utilities use it), followed by a postcode.
FOLLOW_WORDS = {"FOLLOW": "en", "REG": "en", "SEGUIR": "es"}


@dataclass(frozen=True, slots=True)
class Voice:
    """What forewarn says back, and in whose name; the policy promises the next update
    to a customer who replies OUT."""

    operator: str
    # What HELP answers after the operator's name; empty: the templates' words.
    help_text: str
    policy: Policy = field(default_factory=Policy)
    time_zone: str = "UTC"
    # The public page, as a text names it (no scheme): where a stranger asking STATUS looks.
    site: str = ""


def classify(body: str) -> str:
    """stop, start, help, status, out (still without service), report (OUT, then the
    place that is out), follow (a word of FOLLOW_WORDS, then a place), or other; any case."""
    word = body.strip().strip(".!").upper()
    first = (word.split(maxsplit=1) or [""])[0]
    if first in FOLLOW_WORDS:
        return "follow"
    if word in STOP_WORDS:
        return "stop"
    if word in START_WORDS:
        return "start"
    if word in HELP_WORDS:
        return "help"
    if word in STATUS_WORDS:
        return "status"
    if word == "OUT":
        return "out"
    if first == "OUT":
        return "report"  # OUT and a place: "OUT 45 Mill Road, CB1 2AB"
    return "other"


def handle_reply(
    conn: Connection,
    channel: str,
    sender: str,
    body: str,
    provider_ref: str | None,
    now: datetime,
    voice: Voice,
    kept: str | None = None,
) -> str | None:
    """Record a reply, act on it, and return the answer to send back (None: no answer).
    `body` is what is acted on; `kept`, when given, what is recorded (an email's whole
    text, whose first line is the OUT or STOP)."""
    action = classify(body)
    if action == "report" and channel != "sms":
        action = "other"  # only a text names a place (an email's first line is prose)
    contact = contact_of(channel) or "email"
    field = customers.c[contact]
    # An address is matched whatever its case; a number or a handle as written.
    same = func.lower(field) == sender.lower() if contact == "email" else field == sender
    matched = conn.execute(
        select(customers.c.customer_id, customers.c.opted_out, customers.c.locale).where(same)
    ).all()
    ids: list[str | None] = [str(customer_id) for customer_id, _, _ in matched]
    known = [str(customer_id) for customer_id, _, _ in matched]
    # Answered in the customer's own language (English for a sender we do not know).
    locale = next((str(lang) for _, _, lang in matched if lang), "en")
    answer: str | None = None
    # What the sender follows is theirs as they wrote it: an address whatever its case.
    as_follower = sender.lower() if contact == "email" else sender
    if action == "stop":
        # Confirmed once: a second STOP from someone already out gets no answer.
        ended = followers.stop_contact(conn, as_follower, "stop", now)
        if ended or any(not opted_out for _, opted_out, _ in matched):
            answer = say("reply_stop", locale, operator=voice.operator)
        _set_opted_out(conn, known, True)
    elif action == "start":
        _set_opted_out(conn, known, False)
        # An at-risk customer's YES: they have our message (safety.py), no visit needed.
        safe = safety.confirm(conn, known, f"{channel} yes", now)
        # A YES answering our safety check is not also a YES to a follow someone may have
        # asked for with this number.
        confirmed = (
            followers.confirm_number(conn, sender, now) if channel == "sms" and not safe else []
        )
        if safe:
            answer = say("reply_safe", locale, operator=voice.operator)
        elif confirmed:
            answer = say("reply_followed", locale, operator=voice.operator, places=confirmed)
        elif ids:
            answer = say("reply_start", locale, operator=voice.operator)
    elif action == "follow" and channel == "sms":
        answer = _follow(conn, sender, body, now, voice)
    elif action == "help":
        answer = say("reply_help", locale, operator=voice.operator, help_text=voice.help_text)
    elif action == "report" and known and not _elsewhere(conn, known, body):
        action = "out"  # a customer's own line, or words after OUT that name no place
        answer = _reopen(conn, known, now, voice, locale)
    elif action == "report":
        answer = _report(conn, sender, body, now, voice, locale)
    elif action == "out":
        answer = _reopen(conn, known, now, voice, locale)
    elif action == "status":
        answer = _status(conn, known, now, voice, locale, as_follower)
    rows = [
        {
            "received_at": now,
            "channel": channel,
            "sender": sender,
            "customer_id": customer_id,
            "body": (kept if kept is not None else body)[:2000],
            "provider_ref": provider_ref,
            "action": action,
            "answer": answer,
        }
        for customer_id in (ids or [None])
    ]
    conn.execute(replies.insert(), rows)
    return answer


def _reopen(conn: Connection, known: list[str], now: datetime, voice: Voice, locale: str) -> str:
    """Still out after "restored": reopen each matching customer's case and say so."""
    cases = [reopen_for_customer(conn, customer_id, now, voice.policy) for customer_id in known]
    promise = min((c.next_update_at for c in cases if c is not None), default=None)
    if promise is None:
        return say("reply_out_unknown", locale, operator=voice.operator)
    # A first word of a fault (nothing restored to reopen) is a report, thanked as one.
    kind = "reply_out" if any(c is not None and c.parent_id for c in cases) else "reply_out_new"
    # In the customer's own zone, named, as their texts and emails say it.
    zone = conn.execute(
        select(customers.c.timezone).where(customers.c.customer_id.in_(known)).limit(1)
    ).scalar()
    return say(
        kind, locale, operator=voice.operator, when=_told(promise, zone or voice.time_zone, locale)
    )


def _elsewhere(conn: Connection, known: list[str], body: str) -> bool:
    """Whether a customer's "OUT <place>" names a premise other than their own."""
    premise = premise_at(conn, body.strip().partition(" ")[2])
    if premise is None:
        return False
    theirs = conn.execute(
        select(customers.c.premise_id).where(customers.c.customer_id.in_(known))
    ).scalars()
    return premise.premise_id not in set(theirs)


def _report(
    conn: Connection, sender: str, body: str, now: datetime, voice: Voice, locale: str
) -> str | None:
    """OUT and a place from a number: a report of it (reporting.py), answered alike
    whatever it came to; a postcode they gave may be followed (YES confirms)."""
    place = body.strip().partition(" ")[2]
    taken = reporting.take(conn, "sms", sender, place, now, voice.policy)
    if taken.outcome == "limited":
        return None  # a flood is not answered: each answer is a text we pay for
    postcode = followers.resolve_place(conn, place.rpartition(",")[2], addresses=False)
    shown = _shown(place)
    if postcode is None or postcode.kind != "postcode":
        return say("reply_report", locale, operator=voice.operator, place=shown, postcode="")
    asked = followers.ask(
        conn, "sms", sender, postcode.key, locale, voice.time_zone, "sms", sender, now,
        addresses=False,
    )  # fmt: skip
    if asked.follower_id is None:
        return say("reply_report", locale, operator=voice.operator, place=shown, postcode="")
    followers.confirmation_sent(conn, [asked.follower_id], now)
    if taken.report_id is not None:
        reporting.enrolled(conn, taken.report_id, asked.follower_id)
    return say("reply_report", locale, operator=voice.operator, place=shown, postcode=asked.label)


def _shown(place: str) -> str:
    """What someone wrote, as an answer repeats it: cleaned, one line, short."""
    return " ".join(clean(place).split())[:SHOWN]


def _answered_this_hour(conn: Connection, sender: str, action: str, now: datetime) -> int:
    """How many of this number's texts of one kind were answered in the last hour."""
    r = replies.c
    return int(
        conn.execute(
            select(func.count()).where(
                r.sender == sender,
                r.received_at > now - timedelta(hours=1),
                r.action == action,
                r.answer.is_not(None),
            )
        ).scalar_one()
    )


def _follow(conn: Connection, sender: str, body: str, now: datetime, voice: Voice) -> str | None:
    """FOLLOW <postcode or incident> from a number: a follow asked, its confirmation the
    answer (YES confirms). Addresses are not looked up by text: an answer saying whether
    one is on the network would tell anyone who lives where. A flood is not answered
    (each answer is a text we pay for), and a place not found is echoed short."""
    word, _, place = body.strip().partition(" ")
    locale = FOLLOW_WORDS.get(word.upper(), "en")
    asked = followers.ask(
        conn, "sms", sender, place, locale, voice.time_zone, "sms", sender, now,
        addresses=False,
    )  # fmt: skip
    if asked.limited or _answered_this_hour(conn, sender, "follow", now) >= ANSWERS_PER_HOUR:
        return None
    if asked.follower_id is None:
        shown = _shown(place)
        return say("reply_follow_unknown", locale, operator=voice.operator, place=shown)
    followers.confirmation_sent(conn, [asked.follower_id], now)
    return say("reply_follow_confirm", locale, operator=voice.operator, place=asked.label)


def _status(
    conn: Connection, known: list[str], now: datetime, voice: Voice, locale: str, sender: str
) -> str:
    """How each of the sender's premises is now: down (with its incident's estimate and
    next update) or with no known fault; a follower hears of their places; a sender we
    do not know hears where to look, and how to follow a place."""
    if not known:
        return _followed_status(conn, sender, voice, locale)
    places = conn.execute(
        select(premises.c.premise_id, premises.c.address, customers.c.timezone)
        .join(customers, customers.c.premise_id == premises.c.premise_id)
        .where(customers.c.customer_id.in_(known))
        .order_by(premises.c.address)
    ).all()
    down = {
        row.premise_id: row
        for row in conn.execute(
            select(incident_premises.c.premise_id, incidents.c.etr, incidents.c.next_update_at)
            .join(incidents, incidents.c.id == incident_premises.c.incident_id)
            .where(
                incident_premises.c.premise_id.in_([p.premise_id for p in places]),
                incident_premises.c.state.in_(("affected", "still_down")),
                incidents.c.status != "resolved",
                # Faults only: planned work ahead and equipment merely at risk are not.
                incidents.c.source.not_in(("maintenance", "at_risk")),
            )
            .order_by(incidents.c.id)
        )
    }
    said = []
    for place in {p.premise_id: p for p in places}.values():  # each premise once
        zone = place.timezone or voice.time_zone
        fault = down.get(place.premise_id)
        if fault is None:
            said.append(say("reply_status_fine", locale, address=place.address))
            continue
        etr, promise = (_told(m, zone, locale) for m in (fault.etr, fault.next_update_at))
        said.append(
            say("reply_status_down", locale, address=place.address, etr=etr, next_update=promise)
        )
    return f"{voice.operator}: " + " ".join(said)


def _followed_status(conn: Connection, sender: str, voice: Voice, locale: str) -> str:
    """STATUS from a follower: each place they follow, with any fault the page shows there."""
    places = follower_news.status_of(conn, sender)
    if not places:
        return say("reply_status_unknown", locale, operator=voice.operator, site=voice.site)
    said = []
    for place in places:
        zone = place.zone or voice.time_zone
        if place.area is None:
            said.append(say("reply_status_place_fine", place.locale, place=place.label))
            continue
        etr, promise = (_told(m, zone, place.locale) for m in (place.etr, place.next_update_at))
        words = {"place": place.label, "area": place.area, "etr": etr, "next_update": promise}
        said.append(say("reply_status_place_down", place.locale, **words))
    return f"{voice.operator}: " + " ".join(said)


def _told(moment: datetime | None, zone: str, locale: str) -> str:
    """A moment as a reply says it, in the reader's zone ('' when there is none)."""
    if moment is None:
        return ""
    local = moment.astimezone(zone_info(zone))
    return day_time(local, locale, zone=zone_name(local))


def opt_out(conn: Connection, customer_id: str, channel: str, now: datetime) -> bool:
    """Opt one customer out, or end one follow (an unsubscribe link); True if they exist."""
    if followers.is_follower(customer_id):
        if not followers.stop_follower(conn, customer_id, "unsubscribe link", now):
            return False
    else:
        found = conn.execute(
            select(customers.c.customer_id).where(customers.c.customer_id == customer_id)
        ).first()
        if found is None:
            return False
        _set_opted_out(conn, [customer_id], True)
    conn.execute(
        replies.insert(),
        {
            "received_at": now,
            "channel": channel,
            "sender": "unsubscribe link",
            "customer_id": customer_id,
            "body": "List-Unsubscribe=One-Click",
            "action": "stop",
        },
    )
    return True


def _set_opted_out(conn: Connection, ids: list[str], value: bool) -> None:
    if ids:
        conn.execute(
            update(customers).where(customers.c.customer_id.in_(ids)).values(opted_out=value)
        )
