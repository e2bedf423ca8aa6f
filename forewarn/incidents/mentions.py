"""Social mentions of the operator's account, read on a schedule and answered from the
customer's own history: details only in a direct message, and a public reply that says
no more than the status page does. The account (HTTP) is injected: see `Account`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from forewarn.channels import social
from forewarn.channels.social import Mention
from forewarn.incidents.history import find_customers, incidents_of, last_told, normalise_handle
from forewarn.store import get_meta, incidents, replies, set_meta, writing
from forewarn.texts import day_time, say, zone_name

CURSOR = "mentions:since_id"
LIMIT = 500  # Mastodon's default post length


@dataclass(frozen=True, slots=True)
class Answer:
    """What forewarn says back: a public reply, and a direct message when it knows them."""

    public: str
    direct: str | None
    customer_id: str | None


class Account(Protocol):
    """The social account mentions arrive on (forewarn.channels.social.SocialSender)."""

    def read_mentions(self, since_id: str | None) -> list[Mention]:
        """Mentions newer than `since_id`, oldest first."""
        ...

    def reply(self, text: str, reply_to: str, visibility: str, key: str) -> str:
        """Post a reply; the idempotency key makes a repeat after a crash harmless."""
        ...


class Speaker(Protocol):
    """Who answers, and where the public page lives (forewarn.notifiers.compose.Brand)."""

    @property
    def operator(self) -> str: ...

    @property
    def site_url(self) -> str: ...

    @property
    def time_zone(self) -> str: ...


def compose_answer(
    conn: Connection, mention: Mention, brand: Speaker, now: datetime, floor: int = 10
) -> Answer:
    """The answer to one mention, from the customer's own incident and what they were told."""
    handle = "@" + mention.acct
    found = find_customers(conn, normalise_handle(mention.acct)) if mention.acct else []
    found = [
        c
        for c in found
        if c.social and normalise_handle(c.social) == normalise_handle(mention.acct)
    ]
    site = brand.site_url.rstrip("/")
    if len(found) != 1:
        areas = [
            str(r.area_name)
            for r in conn.execute(
                select(incidents.c.area_name).where(
                    incidents.c.public.is_(True),
                    incidents.c.status != "resolved",
                    incidents.c.source != "maintenance",
                )
            )
            if r.area_name
        ]
        # A stranger: we do not know their language, so the operator's own (English).
        public = say("mention_public_unknown", "en", handle=handle, areas=sorted(set(areas))[:5],
                     site=site)  # fmt: skip
        return Answer(public, None, None)
    who = found[0]
    current = [i for i in incidents_of(conn, who.premise_id) if i.status != "resolved"]
    zone = ZoneInfo(who.timezone or brand.time_zone)
    locale = who.locale or "en"

    def at(moment: datetime | None) -> str:
        if moment is None:
            return "-"
        local = moment.astimezone(zone)
        return day_time(local, locale, zone=zone_name(local))  # the zone named, as in texts

    said = {"handle": handle, "operator": brand.operator, "address": who.address}
    if not current:
        direct = say("mention_direct_clear", locale, **said)
        return Answer(say("mention_public_sent", locale, **said), direct, who.customer_id)
    incident = current[0]
    told = last_told(conn, who.customer_id, incident.id)
    direct = say(
        "mention_direct", locale, **said, since=at(incident.started_at),
        etr=at(incident.etr) if incident.etr else None, next_update=at(incident.next_update_at),
        told_channel=told.channel if told else None, told_at=at(told.sent_at) if told else None,
        told_body=_clip(told.body, 140) if told else None,
    )  # fmt: skip
    # Publicly: only what the page says, and only for an incident the page shows.
    if incident.public and incident.premises_count >= floor and incident.area_name:
        public = say("mention_public_incident", locale, **said, area=incident.area_name,
                     url=f"{site}/incidents/{incident.id}.html")  # fmt: skip
    else:
        public = say("mention_public_private", locale, **said)
    return Answer(public, _clip(direct, LIMIT), who.customer_id)


def answer_mentions(
    engine: Engine, account: Account, brand: Speaker, now: datetime, floor: int = 10
) -> int:
    """Read new mentions and answer each once, recording each (and moving the cursor on)
    in a transaction of its own, outside which the posts are made; how many answered."""
    with engine.connect() as conn:
        cursor = get_meta(conn, CURSOR)
    mentions = account.read_mentions(cursor)
    for mention in mentions:
        with engine.connect() as conn:
            answer = compose_answer(conn, mention, brand, now, floor)
        if answer.direct:
            account.reply(
                answer.direct, mention.status_id, "direct", f"mention-{mention.status_id}-dm"
            )
        account.reply(
            answer.public, mention.status_id, "public", f"mention-{mention.status_id}-public"
        )
        said = (
            answer.public if answer.direct is None else f"{answer.direct}\n(public) {answer.public}"
        )
        # Moved on after each one: a crash repeats at most one, and its posts carry keys.
        writing(engine, partial(_remember, mention, answer, said, now), "mention")
    return len(mentions)


def _remember(mention: Mention, answer: Answer, said: str, now: datetime, conn: Connection) -> None:
    """Keep the mention and what it was answered against the customer; move the cursor."""
    conn.execute(
        replies.insert().values(
            received_at=now,
            channel=social.CHANNEL.name,
            sender=f"@{mention.acct}"[:512],
            customer_id=answer.customer_id,
            body=mention.text[:2000],
            provider_ref=mention.status_id,
            action="mention",
            answer=said,
        )
    )
    set_meta(conn, CURSOR, mention.notification_id)


def _clip(text: Any, limit: int) -> str:
    value = " ".join(str(text).split())
    return value if len(value) <= limit else value[: limit - 1] + "…"
