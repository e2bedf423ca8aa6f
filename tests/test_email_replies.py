"""Customers' emails back (issue 21, item 5): a reply OUT, STOP or HELP to an email reaches
the same conversation as a text does, through a real SMTP listener, and is answered in
its thread through the operator's real SMTP server; what no person wrote is left alone;
and an email asks for a reply only where replies are read."""

from __future__ import annotations

import base64
import smtplib
import time
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from forewarn.channels.email import EmailSender, SmtpServer
from forewarn.config import Settings
from forewarn.context import Context
from forewarn.incidents.replies import Voice
from forewarn.mailbox import Mailbox, first_words, listen, read_reply
from forewarn.notifiers.compose import Brand, render
from forewarn.store import customers, incidents, replies
from testkit.servers import Mailbox as Sink
from testkit.servers import free_port, smtp_server
from tests.conftest import NOW, outage_and_restoration
from tests.test_content import row
from tests.town import Town

ALERTS = "alerts@millroad.example"
LATER = NOW + timedelta(hours=2)
AUTHSERV = "mx.millroad.example"  # the operator's mail server, which checks DMARC


def email(sender: str, body: str, message_id: str, vouched: bool = True, **headers: str) -> bytes:
    """An email as a customer's mail program writes it, and as the operator's mail
    server hands it on (its DMARC verdict in Authentication-Results)."""
    mail = EmailMessage()
    if vouched:
        domain = sender.rpartition("@")[2].strip(">").lower()
        mail["Authentication-Results"] = f"{AUTHSERV}; dmarc=pass (p=reject) header.from={domain}"
    mail["From"], mail["To"] = sender, ALERTS
    mail["Subject"] = "Re: Restored: broadband at 43 Mill Road"
    mail["Message-ID"] = message_id
    mail["In-Reply-To"] = "<1-2-c43-email.abc@millroad.example>"
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    mail.set_content(body)
    return mail.as_bytes()


QUOTED = (
    "OUT\n\nStill nothing here, the router lights are red.\n\n"
    "On Mon, 23 Nov 2026 at 15:11, Mill Road Fibre <alerts@millroad.example> wrote:\n"
    "> Broadband at 43 Mill Road is working again.\n> reply to this email with OUT\n"
)


@pytest.fixture
def listening(town: Town, engine: Engine, settings: Settings) -> Iterator[tuple[int, Sink]]:
    """The street after an outage and its restoration; the listener on a loopback port,
    answering through a real SMTP server of the operator's."""
    ctx = Context.build(settings)
    outage_and_restoration(ctx, settings)
    with smtp_server() as (url, sink):
        host, port = url.removeprefix("smtp://").split(":")
        answers = EmailSender(SmtpServer(host, int(port), False, None, None), ALERTS)
        voice = Voice("Mill Road Fibre", "", ctx.policy, "Europe/London")
        where = free_port()
        mailbox = Mailbox(engine, voice, answers, 100_000, [ALERTS], AUTHSERV, lambda: LATER)
        controller = listen(mailbox, f"127.0.0.1:{where}")
        try:
            yield where, sink
        finally:
            controller.stop()
            ctx.close()


def deliver(
    port: int, raw: bytes, mail_from: str = "house43@example.org", to: str = ALERTS
) -> None:
    """Hand an email to the listener as the operator's mail server would."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.sendmail(mail_from, [to], raw)


def wait_for(sink: Sink, count: int, patience: float = 10) -> None:
    """Until `count` answers arrived (at most `patience` seconds), and a moment more."""
    deadline = time.monotonic() + patience
    while len(sink.received) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)  # and nothing more arrives


@pytest.mark.integration
def test_out_by_email_reopens_the_case_and_is_answered_in_its_thread(
    listening: tuple[int, Sink], engine: Engine
) -> None:
    port, sink = listening
    deliver(port, email("House 43 <HOUSE43@Example.org>", QUOTED, "<r1@mail.example>"))
    wait_for(sink, 1)
    with engine.connect() as conn:
        kept = conn.execute(select(replies).where(replies.c.channel == "email")).all()
        case = conn.execute(
            select(incidents).where(
                incidents.c.scope == "premise", incidents.c.status != "resolved"
            )
        ).all()
    assert [(r.customer_id, r.action, r.provider_ref) for r in kept] == [
        ("c43", "out", "<r1@mail.example>")
    ]
    assert "router lights are red" in kept[0].body and "> Broadband" not in kept[0].body
    assert len(case) == 1  # no. 43's line is looked at again, as after a texted OUT
    [answer] = sink.received
    assert answer["To"] == "house43@example.org"
    assert answer["In-Reply-To"] == "<r1@mail.example>"
    assert answer["Subject"] == "Re: Restored: broadband at 43 Mill Road"
    assert answer["Auto-Submitted"] == "auto-replied"
    assert "Mill Road Fibre" in answer.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    # The operator's server hands the same email on again: nothing happens twice.
    deliver(port, email("House 43 <HOUSE43@Example.org>", QUOTED, "<r1@mail.example>"))
    wait_for(sink, 2, patience=1)
    assert len(sink.received) == 1
    with engine.connect() as conn:
        assert len(conn.execute(select(replies)).all()) == 1


@pytest.mark.integration
def test_stop_by_email_stops_every_channel(listening: tuple[int, Sink], engine: Engine) -> None:
    port, sink = listening
    deliver(
        port, email("house41@example.org", "stop\n", "<r2@mail.example>"), "house41@example.org"
    )
    wait_for(sink, 1)
    with engine.connect() as conn:
        opted = conn.execute(
            select(customers.c.opted_out).where(customers.c.customer_id == "c41")
        ).scalar_one()
    assert opted is True
    assert [m["To"] for m in sink.received] == ["house41@example.org"]


@pytest.mark.integration
def test_what_no_person_wrote_is_kept_out(listening: tuple[int, Sink], engine: Engine) -> None:
    port, sink = listening
    away = email("house43@example.org", "OUT of the office until Monday.", "<a1@mail.example>",
                 Auto_Submitted="auto-replied")  # fmt: skip
    deliver(port, away)
    bulk = email("house43@example.org", "OUT", "<a2@mail.example>", Precedence="bulk")
    deliver(port, bulk)
    bounce = email("MAILER-DAEMON@mail.example", "OUT", "<a3@mail.example>")
    deliver(port, bounce, mail_from="")  # a bounce's null reverse-path
    wait_for(sink, 1, patience=1)
    assert sink.received == []
    with engine.connect() as conn:
        assert conn.execute(select(replies)).all() == []


def test_garbage_and_huge_emails_are_refused_or_ignored_without_error() -> None:
    assert read_reply(b"\x00\xff not an email at all") is None
    assert read_reply(b"From: nobody\r\n\r\nOUT") is None  # no address to answer
    assert read_reply(b"") is None
    nested = "".join(
        f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n' for i in range(3000)
    )
    assert read_reply(f"From: a@b.example\r\n{nested}\r\nOUT".encode()) is None  # no RecursionError
    html = (
        b"From: a@b.example\r\nMessage-ID: <h@b>\r\nContent-Type: text/html\r\n\r\n"
        b"<p>HELP</p><blockquote>On Mon wrote:</blockquote>"
    )
    found = read_reply(html)
    assert found is not None and first_words(found.words) == "HELP"


@pytest.mark.integration
def test_an_email_too_big_is_refused_by_the_listener(
    listening: tuple[int, Sink],
) -> None:
    port, _ = listening
    huge = email("house43@example.org", "OUT\n" + "x" * 200_000, "<big@mail.example>")
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp, pytest.raises(smtplib.SMTPException):
        smtp.sendmail("house43@example.org", [ALERTS], huge)


def test_an_email_asks_for_a_reply_only_where_replies_are_read() -> None:
    due = row("email", "en", "restored", None)
    unread, _ = render(due, Brand("Mill Road Fibre", "https://status.example"), NOW)
    read, _ = render(
        due, Brand("Mill Road Fibre", "https://status.example", replies_read=True), NOW
    )
    assert "reply to this email with OUT" in read
    assert "reply" not in unread.lower() and "contact us" in unread


@pytest.mark.integration
def test_an_email_the_mail_server_did_not_vouch_for_changes_nothing(
    listening: tuple[int, Sink], engine: Engine
) -> None:
    """A From is anyone's to write: without DMARC's pass from the operator's own server
    (or with it written by someone else, or sent from another envelope) nothing is done."""
    port, sink = listening
    deliver(port, email("house41@example.org", "STOP", "<f1@evil.example>", vouched=False),
            "house41@example.org")  # fmt: skip
    forged = email("house41@example.org", "STOP", "<f2@evil.example>", vouched=False)
    forged = (
        b"Authentication-Results: mx.evil.example; dmarc=pass header.from=example.org\r\n" + forged
    )
    deliver(port, forged, "house41@example.org")
    deliver(
        port, email("house41@example.org", "STOP", "<f3@evil.example>"), "attacker@evil.example"
    )
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        deliver(port, email("house41@example.org", "STOP", "<f4@evil.example>"),
                "house41@example.org", to="someone-else@millroad.example")  # fmt: skip
    wait_for(sink, 1, patience=1)
    assert sink.received == []
    with engine.connect() as conn:
        assert conn.execute(select(replies)).all() == []
        opted = conn.execute(select(customers.c.opted_out).where(customers.c.customer_id == "c41"))
        assert opted.scalar_one() is False


@pytest.mark.integration
def test_a_message_id_is_never_repeated_into_the_answer_unless_it_is_plain(
    listening: tuple[int, Sink],
) -> None:
    port, sink = listening
    crafted = (
        "=?utf-8?b?"
        + base64.b64encode(
            b"<a@b>\r\nX-Injected: yes\r\nContent-Type: text/html\r\n\r\n<h1>phish</h1>"
        ).decode()
        + "?="
    )
    # Written by hand: a mail library would decode the encoded word when writing it.
    deliver(port, (
        f"Authentication-Results: {AUTHSERV}; dmarc=pass header.from=example.org\r\n"
        f"From: house43@example.org\r\nTo: {ALERTS}\r\nSubject: Re: Restored\r\n"
        f"Message-ID: {crafted}\r\n\r\nHELP\r\n"
    ).encode())  # fmt: skip
    raw = email("house43@example.org", "HELP", "<cafe@mail.example>")
    deliver(port, raw.replace(b"<cafe@", "<café@".encode()))  # 8-bit, as some servers pass
    wait_for(sink, 2)
    assert len(sink.received) == 2  # both answered, neither bounced
    for answer in sink.received:
        assert answer["X-Injected"] is None and "phish" not in answer.as_string()
        assert answer["In-Reply-To"] is None
        assert str(answer["Message-ID"]).startswith("<answer-")


@pytest.mark.integration
def test_nobody_unknown_is_answered(listening: tuple[int, Sink], engine: Engine) -> None:
    port, sink = listening
    deliver(
        port, email("stranger@example.com", "HELP", "<s1@mail.example>"), "stranger@example.com"
    )
    wait_for(sink, 1, patience=1)
    assert sink.received == []  # no mail to an address a stranger chose
    with engine.connect() as conn:
        assert [r.action for r in conn.execute(select(replies))] == ["help"]  # but kept


@pytest.mark.parametrize(
    ("html", "first"),
    [("<head><style>p {margin:0}</style><title>Re: Restored</title></head><body><p>STOP</p>",
      "STOP"),
     ("<div>OUT&nbsp;</div><blockquote>On Mon wrote:</blockquote>", "OUT"),
     ("<p>Ayuda &amp; m&aacute;s</p>", "Ayuda & más")],
)  # fmt: skip
def test_an_html_only_email_is_read_as_its_text(html: str, first: str) -> None:
    raw = (
        "From: a@b.example\r\nMessage-ID: <h@b>\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        + html
    ).encode()
    found = read_reply(raw)
    assert found is not None and first_words(found.words).strip() == first
