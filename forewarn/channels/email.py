"""The email channel, over SMTP: text and HTML parts, RFC 8058 one-click unsubscribe,
and a Message-ID derived from the ledger key, so a resend after a crash is the same
message to every mail system that sees both."""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from dataclasses import dataclass
from email.utils import formatdate
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from forewarn.channels.base import Channel, Limiter, Message, Outcome, Result, Sending, Session
from forewarn.channels.mime import (
    Dkim,
    SigningFailed,
    header,
    html_part,
    message_id,
    plain_address,
    plain_message_id,
    sender_domain,
    text_part,
)
from forewarn.channels.rate import RateLimiter
from forewarn.channels.unsubscribe import Links, no_links, unsubscribe_link

if TYPE_CHECKING:
    from forewarn.config import Settings

RFC8058_POST = "List-Unsubscribe-Post: List-Unsubscribe=One-Click"


@dataclass(frozen=True, slots=True)
class SmtpServer:
    """Where and how to connect; `password` stays out of every repr and message."""

    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None

    @classmethod
    def from_url(cls, url: str) -> SmtpServer:
        """Parse `smtp://[user:pass@]host:port` (STARTTLS if offered) or `smtps://` (TLS)."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("FOREWARN_SMTP_URL must look like smtp://[user:pass@]host:port")
        tls = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if tls else 25),
            tls=tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )

    def __repr__(self) -> str:
        return f"SmtpServer({self.host}:{self.port}, tls={self.tls}, user={self.username!r})"


class EmailSender(Sending):
    """Sends over `concurrency` reused SMTP connections at the `limiter`'s rate (by
    default 50 messages a second)."""

    channel = "email"

    def __init__(
        self,
        server: SmtpServer,
        sender: str,
        unsubscribe_url: Links = no_links,
        limiter: RateLimiter | None = None,
        concurrency: int = 4,
        timeout: float = 15.0,
        dkim: Dkim | None = None,
    ) -> None:
        self.server = server
        self.sender = sender
        self.dkim = dkim
        # One list per sender's domain (RFC 2919): mail filters and the unsubscribe
        # headers' readers expect a List-Id beside List-Unsubscribe.
        self.list_id = f"<outages.{sender_domain(sender)}>"
        self.unsubscribe_url = unsubscribe_url
        self.limiter = limiter or RateLimiter(50.0)
        self.concurrency = concurrency
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"EmailSender({self.server!r}, sender={self.sender!r})"

    def compose(self, message: Message) -> bytes:
        """The MIME message for one ledger row, as the bytes that go over the wire.

        Assembled from a fixed skeleton with the standard library's encoders: building an
        `EmailMessage` costs about a millisecond a message, twenty times this.
        """
        mid = message_id(message.key, self.sender)
        link = self.unsubscribe_url(message.customer_id) if message.customer_id else None
        extra = [f"List-Unsubscribe: <{link}>", RFC8058_POST] if link else []
        return self._wire(
            message.to, message.subject or "", message.body, message.locale, mid,
            ["Auto-Submitted: auto-generated", f"List-Id: {self.list_id}", *extra],
        )  # fmt: skip

    def compose_answer(
        self, to: str, subject: str, body: str, replying_to: str, locale: str = "en"
    ) -> bytes:
        """The answer to a customer's email (OUT, STOP, HELP), in its thread: its own
        Message-ID is made from a digest of theirs (none of their text is repeated in
        it), so their server sees one answer however often the same email reaches us."""
        thread = replying_to if plain_message_id(replying_to) else None
        seed = thread or f"{to}-{subject}-{body}"
        mid = message_id("answer-" + hashlib.sha256(seed.encode()).hexdigest()[:24], self.sender)
        headers = ["Auto-Submitted: auto-replied"]
        if thread:
            headers += [f"In-Reply-To: {thread}", f"References: {thread}"]
        return self._wire(to, subject, body, locale, mid, headers)

    def answer(
        self, to: str, subject: str, body: str, replying_to: str, locale: str = "en"
    ) -> str | None:
        """Send an answer at once over a connection of its own; None when it went, else
        why not (the customer's own email is kept and acted on either way)."""
        if not plain_address(to):
            return "not a valid address"
        try:
            smtp = self.connect()
        except (OSError, smtplib.SMTPException) as err:
            return _connect_failure(err, self.server)
        try:
            wire = self.compose_answer(to, subject, body, replying_to, locale)
            smtp.sendmail(self.sender, [to], wire)
        except (OSError, smtplib.SMTPException) as err:
            return f"smtp: {_reason(err)}"
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()
        return None

    def _wire(
        self, to: str, subject: str, body: str, locale: str, mid: str, headers: list[str]
    ) -> bytes:
        """A text and HTML message from this sender, with these extra headers."""
        head = [
            f"From: {self.sender}",
            f"To: {to}",
            f"Subject: {header(subject)}",
            f"Date: {formatdate(usegmt=True)}",
            f"Message-ID: {mid}",
            *headers,
            "MIME-Version: 1.0",
        ]
        # The boundary comes from the Message-ID: the same row makes the same message.
        boundary = "=_forewarn_" + hashlib.sha256(mid.encode()).hexdigest()[:24]
        html = html_part(body, subject, locale)
        parts = [
            *head,
            f'Content-Type: multipart/alternative; boundary="{boundary}"',
            "",
            f"--{boundary}",
            *text_part("plain", body),
            f"--{boundary}",
            *text_part("html", html),
            f"--{boundary}--",
            "",
        ]
        wire = "\r\n".join(parts).encode("ascii")
        return wire if self.dkim is None else self.dkim.header(wire) + wire

    def session(self) -> Session:
        """One SMTP connection, opened at the first message that can go."""
        return SmtpSession(self)

    def connect(self) -> smtplib.SMTP:
        """A new connection to the server, secured and signed in as the settings say."""
        server = self.server
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if server.tls:
            smtp = smtplib.SMTP_SSL(server.host, server.port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(server.host, server.port, timeout=self.timeout)
            smtp.ehlo()
            if smtp.has_extn("starttls"):
                smtp.starttls(context=context)
                smtp.ehlo()
        if server.username and server.password:
            try:
                smtp.login(server.username, server.password)
            except BaseException:
                smtp.close()  # a refused login must not leave the socket open
                raise
        return smtp


class SmtpSession:
    """One connection's share of a batch: connected when first needed, connected again
    after the server drops it, and if it cannot connect, the rest of its share waits
    for the next try (without another attempt for each message)."""

    def __init__(self, sender: EmailSender) -> None:
        self.sender = sender
        self.smtp: smtplib.SMTP | None = None
        self.broken: str | None = None

    def refuse(self, message: Message) -> Result | None:
        """A bad address for good; no connection for now."""
        if not plain_address(message.to):
            # Also keeps a hostile address from adding headers of its own.
            return Result(message.delivery_id, Outcome.PERMANENT, "not a valid address")
        if self.smtp is None and self.broken is None:
            try:
                self.smtp = self.sender.connect()
            except (OSError, smtplib.SMTPException) as err:
                self.broken = _connect_failure(err, self.sender.server)
        if self.broken is not None:
            return Result(message.delivery_id, Outcome.RETRYABLE, self.broken)
        return None

    def send(self, message: Message) -> Result:
        """Hand one message to the server; a dropped connection is opened again next time."""
        assert self.smtp is not None  # refuse() connected
        result = _send_one(self.smtp, self.sender, message)
        if result.outcome is Outcome.RETRYABLE and "disconnected" in result.detail:
            self.smtp.close()  # gone or hung: no goodbye that could wait out the timeout
            self.smtp = None
        return result

    def close(self) -> None:
        """Say goodbye to the server (or just close the socket if it has gone)."""
        smtp, self.smtp = self.smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()


def _send_one(smtp: smtplib.SMTP, sender: EmailSender, message: Message) -> Result:
    ref = message_id(message.key, sender.sender)
    try:
        wire = sender.compose(message)
    except SigningFailed as err:  # the operator's key: every message waits, none is lost
        return Result(message.delivery_id, Outcome.RETRYABLE, str(err), ref)
    try:
        refused = smtp.sendmail(sender.sender, [message.to], wire)
    except smtplib.SMTPRecipientsRefused as err:
        code, text = next(iter(err.recipients.values()))
        return Result(message.delivery_id, _by_code(code), f"smtp {code}: {_text(text)}", ref)
    except smtplib.SMTPResponseException as err:
        outcome = _by_code(err.smtp_code)
        if isinstance(err, smtplib.SMTPSenderRefused | smtplib.SMTPAuthenticationError):
            outcome = Outcome.RETRYABLE  # our configuration, not this message
        detail = f"smtp {err.smtp_code}: {_text(err.smtp_error)}"
        return Result(message.delivery_id, outcome, detail, ref)
    except smtplib.SMTPServerDisconnected:
        return Result(message.delivery_id, Outcome.RETRYABLE, "smtp server disconnected", ref)
    except TimeoutError:
        return Result(
            message.delivery_id, Outcome.RETRYABLE, "smtp server disconnected: timeout", ref
        )
    except OSError as err:
        return Result(
            message.delivery_id,
            Outcome.RETRYABLE,
            f"smtp server disconnected: {_reason(err)}",
            ref,
        )
    if refused:
        code, text = next(iter(refused.values()))
        return Result(message.delivery_id, _by_code(code), f"smtp {code}: {_text(text)}", ref)
    return Result(message.delivery_id, Outcome.DELIVERED, "accepted by smtp server", ref)


def _by_code(code: int) -> Outcome:
    return Outcome.RETRYABLE if 400 <= code < 500 else Outcome.PERMANENT


def _text(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return text[:200]


def _connect_failure(err: BaseException, server: SmtpServer) -> str:
    """Why no connection was made, naming the server (never its credentials)."""
    where = f"{server.host}:{server.port}"
    if isinstance(err, ConnectionRefusedError):
        return f"smtp connection failed: connection refused by {where}"
    if isinstance(err, TimeoutError):
        return f"smtp connection failed: no answer from {where}"
    return f"smtp connection failed: {_reason(err)} ({where})"


def _reason(err: BaseException) -> str:
    # Exception text from smtplib can echo the AUTH exchange; keep to the type and code.
    code = getattr(err, "smtp_code", None) or getattr(err, "errno", None)
    return f"{type(err).__name__}{f' {code}' if code else ''}"


def build(settings: Settings, signing_key: bytes, limiter: Limiter) -> EmailSender | None:
    """The email sender the settings describe, or None without a server and a sender."""
    s = settings
    if not (s.smtp_url and s.email_from):
        return None
    dkim = None
    if s.dkim_private_key is not None:
        dkim = Dkim.from_setting(
            s.dkim_private_key.get_secret_value(), s.dkim_selector, s.email_from
        )
    return EmailSender(
        SmtpServer.from_url(s.smtp_url.get_secret_value()),
        s.email_from,
        unsubscribe_url=unsubscribe_link(s.public_url, signing_key),
        limiter=limiter(s.email_rate, None),
        concurrency=min(s.send_concurrency, 8),
        dkim=dkim,
    )


CHANNEL = Channel(
    name="email",
    noun="email",
    contact="email",
    tier=0,
    long_form=True,
    build=build,
    settings=(("FOREWARN_SMTP_URL", "smtp_url"), ("FOREWARN_EMAIL_FROM", "email_from")),
)
