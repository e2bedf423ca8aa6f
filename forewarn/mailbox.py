"""Customers' emails back: an SMTP listener (aiosmtpd) the operator's mail server hands
replies to, so that OUT, STOP, START and HELP by email reach the same conversation as by
text, and are answered in the email's own thread.

Set FOREWARN_INBOUND_SMTP (host:port) and route the mail for FOREWARN_EMAIL_FROM's
mailbox to it (Postfix: a `transport_maps` entry `alerts@isp.example smtp:[127.0.0.1]:2525`).
Bounces and automatic replies (out of office, mailing-list robots) are kept out: they are
nobody's answer, and answering them would start a loop."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parseaddr
from typing import Any

from sqlalchemy.engine import Connection, Engine

from forewarn.channels.email import CHANNEL, EmailSender
from forewarn.incidents.replies import Voice, handle_reply
from forewarn.store import insert_ignoring_conflicts, now_utc, seen_requests, writing

logger = logging.getLogger("forewarn.mailbox")

# Where the customer's own words end and the quoted email they answer begins.
_QUOTE_HEAD = re.compile(
    r"^(>|On .+wrote:$|El .+escribió:$|-----\s*Original Message\s*-----|From: |De: |Sent from )",
    re.IGNORECASE,
)
_TAGS = re.compile(r"<[^>]+>")
KEPT_CHARS = 2000
# Senders that are mail systems, not people (RFC 2142's and the delivery reports').
ROBOTS = frozenset({"mailer-daemon", "postmaster", "noreply", "no-reply", "bounce", "bounces"})


@dataclass(frozen=True, slots=True)
class Reply:
    """A person's email, as the conversation needs it."""

    sender: str
    words: str  # what they wrote, before the quoted email
    message_id: str
    subject: str


def read_reply(raw: bytes) -> Reply | None:
    """The reply a customer wrote, or None for a bounce, an automatic reply, or an email
    with no sender or words to act on."""
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
    message_id = str(mail.get("Message-ID", "")).strip()[:250]
    subject = " ".join(str(mail.get("Subject", "")).split())[:200]
    return Reply(sender, words, message_id, subject)


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
        text = _TAGS.sub("\n", text)  # a paragraph or a quote starts a line of its own
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
    answered (outside it) through the operator's SMTP server."""

    def __init__(
        self,
        engine: Engine,
        voice: Voice,
        answers: EmailSender | None,
        max_bytes: int,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self.engine, self.voice, self.answers = engine, voice, answers
        self.max_bytes, self.clock = max_bytes, clock

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """aiosmtpd's hook for a whole message: 250 once it is kept, 5xx if refused."""
        raw = envelope.original_content or envelope.content or b""
        if len(raw) > self.max_bytes:
            return "552 5.3.4 Message too big"
        if (envelope.mail_from or "").strip("<> ") == "":  # a bounce (null reverse-path)
            return "250 OK"
        self.take(bytes(raw))
        return "250 OK"

    def take(self, raw: bytes) -> str | None:
        """Act on one email; the answer sent back, if any."""
        reply = read_reply(raw)
        if reply is None:
            return None
        now = self.clock()

        def work(conn: Connection) -> str | None:
            if reply.message_id and not _first_time(conn, reply.message_id, now):
                return None  # the same email again (a retry of the operator's server)
            said = first_words(reply.words)
            return handle_reply(
                conn, CHANNEL.name, reply.sender, said, reply.message_id or None, now,
                self.voice, kept=reply.words,
            )  # fmt: skip

        answer = writing(self.engine, work, "email reply")
        if answer and self.answers is not None:
            subject = reply.subject if reply.subject.lower().startswith("re:") else (
                f"Re: {reply.subject}" if reply.subject else self.voice.operator)  # fmt: skip
            failed = self.answers.answer(reply.sender, subject, answer, reply.message_id)
            if failed:
                logger.warning("answer to an email reply not sent: %s", failed)
        return answer


def _first_time(conn: Connection, message_id: str, now: datetime) -> bool:
    token = f"email:{message_id}"[:256]
    seen = conn.execute(seen_requests.select().where(seen_requests.c.token == token)).first()
    if seen is not None:
        return False
    insert_ignoring_conflicts(conn, seen_requests, [{"token": token, "received_at": now}])
    return True


def listen(mailbox: Mailbox, address: str) -> Any:
    """Start the SMTP listener on `address` (host:port) in a thread of its own; returns
    aiosmtpd's controller (stop() it to close the port)."""
    from aiosmtpd.controller import Controller

    host, _, port = address.rpartition(":")
    controller = Controller(
        mailbox, hostname=host or "127.0.0.1", port=int(port), data_size_limit=mailbox.max_bytes
    )
    controller.start()
    return controller
