"""Customers' emails back: an SMTP listener (aiosmtpd) the operator's mail server hands
replies to, so that OUT, STOP, START and HELP by email reach the same conversation as by
text, and are answered in the email's own thread.

Set FOREWARN_INBOUND_SMTP (host:port, on loopback behind the operator's mail server) and
route the mail for FOREWARN_EMAIL_FROM's mailbox to it (Postfix: a `transport_maps` entry
`alerts@isp.example smtp:[127.0.0.1]:2525`). An email's From is anyone's to write, so
nothing is done on an email's word unless the operator's mail server vouches for it: an
`Authentication-Results` header from FOREWARN_INBOUND_AUTHSERV saying `dmarc=pass`, and
an envelope sender that is its From. Bounces and automatic replies (out of office,
mailing-list robots) are kept out: they are nobody's answer, and answering them would
start a loop. Nobody unknown is answered (no mail to an address a stranger chose)."""

from __future__ import annotations

import asyncio
import html
import logging
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parseaddr
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine

from forewarn.channels.email import CHANNEL, EmailSender
from forewarn.channels.mime import plain_message_id
from forewarn.incidents.replies import Voice, handle_reply
from forewarn.store import customers, first_seen, now_utc, writing

logger = logging.getLogger("forewarn.mailbox")

# Where the customer's own words end and the quoted email they answer begins.
_QUOTE_HEAD = re.compile(
    r"^(>|On .+wrote:$|El .+escribió:$|-----\s*Original Message\s*-----|From: |De: |Sent from )",
    re.IGNORECASE,
)
_TAGS = re.compile(r"<[^>]+>")
# What an HTML email holds that is not its text.
_NOT_TEXT = re.compile(r"<(head|style|script|title)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
KEPT_CHARS = 2000
# Senders that are mail systems, not people (RFC 2142's and the delivery reports').
ROBOTS = frozenset({"mailer-daemon", "postmaster", "noreply", "no-reply", "bounce", "bounces"})


@dataclass(frozen=True, slots=True)
class Reply:
    """A person's email, as the conversation needs it."""

    sender: str
    words: str  # what they wrote, before the quoted email
    message_id: str  # "" when it had none fit to repeat
    subject: str
    # Whether the operator's mail server found it truly from its From (DMARC).
    vouched: bool = False


def vouched_for(mail: EmailMessage, authserv: str, sender: str) -> bool:
    """Whether an Authentication-Results header written by the operator's own server
    (`authserv`, RFC 8601's authserv-id) says the From's domain passed DMARC."""
    domain = sender.rpartition("@")[2]
    for value in mail.get_all("Authentication-Results") or []:
        text = " ".join(str(value).split()).lower()
        serv, _, results = text.partition(";")
        if serv.split()[:1] != [authserv.lower()]:
            continue  # written by someone else: anyone can add such a header
        for result in results.split(";"):
            words = result.split()
            if words[:1] == ["dmarc=pass"] and f"header.from={domain}" in words:
                return True
    return False


def read_reply(raw: bytes, authserv: str = "") -> Reply | None:
    """The reply a customer wrote, or None for a bounce, an automatic reply, or an email
    with no sender or words to act on; vouched for when `authserv`'s DMARC check passed."""
    try:
        return _read(raw, authserv)
    except RecursionError:  # MIME parts nested thousands deep: nobody's reply
        return None


def _read(raw: bytes, authserv: str) -> Reply | None:
    try:
        mail = BytesParser(policy=policy.default).parsebytes(raw)
    except (ValueError, TypeError, LookupError):
        return None
    if not isinstance(mail, EmailMessage) or _automatic(mail):
        return None
    sender = parseaddr(str(mail.get("From", "")))[1].strip().lower()
    if "@" not in sender or len(sender) > 320 or sender.split("@")[0] in ROBOTS:
        return None
    words = _own_words(mail)
    given = " ".join(str(mail.get("Message-ID", "")).split())
    message_id = given if plain_message_id(given) else ""  # never repeated unless plain
    subject = " ".join(str(mail.get("Subject", "")).split())[:200]
    vouched = bool(authserv) and vouched_for(mail, authserv, sender)
    return Reply(sender, words, message_id, subject, vouched)


def _automatic(mail: EmailMessage) -> bool:
    """Whether a program sent it (RFC 3834's Auto-Submitted, the older Precedence and
    X-Autoreply headers, a mailing list, a delivery report)."""
    submitted = str(mail.get("Auto-Submitted", "no")).strip().lower()
    precedence = str(mail.get("Precedence", "")).strip().lower()
    return (
        submitted != "no"
        or precedence in ("bulk", "junk", "list", "auto_reply")
        or mail.get("X-Autoreply") is not None
        or mail.get("List-Id") is not None
        or mail.get_content_type() in ("multipart/report", "message/delivery-status")
    )


def _own_words(mail: EmailMessage) -> str:
    """The text the customer typed: the plain part (or the HTML without its tags), up to
    the quoted email it answers."""
    part = mail.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        text = str(part.get_content())
    except (LookupError, ValueError, AssertionError):
        return ""
    if part.get_content_subtype() == "html":
        # A paragraph or a quote starts a line of its own; entities are what they say.
        text = html.unescape(_TAGS.sub("\n", _NOT_TEXT.sub("\n", text)))
    own: list[str] = []
    for line in text.splitlines():
        if _QUOTE_HEAD.match(line.strip()):
            break
        own.append(line.rstrip())
    return "\n".join(own).strip()[:KEPT_CHARS]


def first_words(words: str) -> str:
    """The first line they wrote: where OUT, STOP or HELP is."""
    return next((line.strip() for line in words.splitlines() if line.strip()), "")


class Mailbox:
    """The listener's handler: each email kept and acted on in one transaction, then
    answered (outside it) through the operator's SMTP server; the work runs in a thread,
    so one slow store or server never holds up the listener's other sessions."""

    def __init__(
        self,
        engine: Engine,
        voice: Voice,
        answers: EmailSender | None,
        max_bytes: int,
        ours: Collection[str],
        authserv: str,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self.engine, self.voice, self.answers = engine, voice, answers
        self.max_bytes, self.clock = max_bytes, clock
        self.ours = {address.lower() for address in ours}
        self.authserv = authserv

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        """Only forewarn's own address takes mail here."""
        if address.lower() not in self.ours:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """aiosmtpd's hook for a whole message: 250 once it is kept (or left alone),
        451 when the store could not keep it (the mail server tries again)."""
        raw = envelope.original_content or envelope.content or b""
        if len(raw) > self.max_bytes:
            return "552 5.3.4 Message too big"
        envelope_from = (envelope.mail_from or "").strip("<> ").lower()
        if not envelope_from:  # a bounce (null reverse-path)
            return "250 OK"
        loop = asyncio.get_running_loop()
        kept = await loop.run_in_executor(None, self.take, bytes(raw), envelope_from)
        return "250 OK" if kept else "451 4.3.0 Try again later"

    def take(self, raw: bytes, envelope_from: str = "") -> bool:
        """Act on one email and answer it; False only when the store could not keep it."""
        reply = read_reply(raw, self.authserv)
        if reply is None:
            return True
        if not reply.vouched or (envelope_from and envelope_from != reply.sender):
            logger.warning("an email reply not vouched for by the mail server was left alone")
            return True
        now = self.clock()

        def work(conn: Connection) -> tuple[str | None, str | None]:
            if not first_seen(conn, [f"email:{reply.message_id}" if reply.message_id else ""], now):
                return None, None  # the same email again (a retry of the operator's server)
            said = first_words(reply.words)
            answer = handle_reply(
                conn, CHANNEL.name, reply.sender, said, reply.message_id or None, now,
                self.voice, kept=reply.words,
            )  # fmt: skip
            return answer, _locale_of(conn, reply.sender)

        try:
            answer, locale = writing(self.engine, work, "email reply")
        except Exception:
            logger.exception("an email reply could not be kept")
            return False
        if answer and locale and self.answers is not None:  # a customer's: never a stranger's
            self._answer(reply, answer, locale)
        return True

    def _answer(self, reply: Reply, answer: str, locale: str) -> None:
        subject = reply.subject if reply.subject.lower().startswith("re:") else (
            f"Re: {reply.subject}" if reply.subject else self.voice.operator)  # fmt: skip
        assert self.answers is not None
        try:
            failed = self.answers.answer(reply.sender, subject, answer, reply.message_id, locale)
        except Exception:
            logger.exception("an answer to an email reply could not be made")
            return
        if failed:
            logger.warning("answer to an email reply not sent: %s", failed)


def _locale_of(conn: Connection, address: str) -> str | None:
    """The language of the customer at this address; None for an address we do not know."""
    found = conn.execute(
        select(customers.c.locale).where(func.lower(customers.c.email) == address).limit(1)
    ).first()
    return (found.locale or "en") if found is not None else None


def listen(mailbox: Mailbox, address: str) -> Any:
    """Start the SMTP listener on `address` (host:port) in a thread of its own; returns
    aiosmtpd's controller (stop() it to close the port)."""
    from aiosmtpd.controller import Controller

    host, _, port = address.rpartition(":")
    controller = Controller(
        mailbox, hostname=host.strip("[]") or "127.0.0.1", port=int(port),
        data_size_limit=mailbox.max_bytes,
    )  # fmt: skip
    controller.start()
    return controller
