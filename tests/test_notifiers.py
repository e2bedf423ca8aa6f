"""The contract every notifier keeps: success delivered; 429, 5xx and timeouts retryable;
other 4xx permanent; no secret in any result, log line or repr."""

from __future__ import annotations

import email
import email.policy
import json
import logging
import smtplib
import socket
import threading
from collections.abc import Callable, Iterator
from email.message import EmailMessage

import httpx
import pytest

from forewarn.channels.base import Message, Outcome, Sender
from forewarn.channels.email import EmailSender, SmtpServer
from forewarn.channels.mime import message_id
from forewarn.channels.rate import RateLimiter
from forewarn.channels.sms import SmsSender, default_rate, segments
from forewarn.channels.social import SocialSender
from forewarn.channels.webhook import WebhookSender, partner_key
from testkit.servers import free_port, smtp_server

SECRET = "s3cr3t-Tok3n-never-shown"
PARTNER = f"https://partner.example/hook?token={SECRET}"

# A behaviour of the far end: an HTTP status to answer with, or "timeout".
Behaviour = int | str


def http_answer(channel: str, behaviour: Behaviour) -> Callable[[httpx.Request], httpx.Response]:
    """A MockTransport handler that answers as the channel's provider would."""

    def handle(request: httpx.Request) -> httpx.Response:
        if behaviour == "timeout":
            raise httpx.ReadTimeout("read timed out", request=request)
        assert isinstance(behaviour, int)
        if behaviour >= 300:
            error = {"code": 12345, "message": "refused", "status": behaviour}
            return httpx.Response(behaviour, json=error)
        if channel == "sms":
            return httpx.Response(
                201, json={"sid": "SM" + "0" * 32, "body": "x", "status": "queued"}
            )
        if channel == "social":
            return httpx.Response(200, json={"id": "1099", "content": "x"})
        return httpx.Response(204)

    return handle


def http_notifier(
    channel: str, behaviour: Behaviour, seen: list[httpx.Request] | None = None
) -> Sender:
    answer = http_answer(channel, behaviour)

    def handle(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return answer(request)

    transport = httpx.MockTransport(handle)
    if channel == "sms":
        return SmsSender(
            "AC" + "1" * 32, SECRET, "+15005550006", limiter=RateLimiter(1000), transport=transport
        )
    if channel == "social":
        return SocialSender(
            "https://social.example", SECRET, limiter=RateLimiter(1000), transport=transport
        )
    return WebhookSender([PARTNER], limiter=RateLimiter(1000), transport=transport)


def message(channel: str, n: int = 1) -> Message:
    to = {"sms": "+447911123039", "social": "public", "webhook": partner_key(PARTNER)}
    return Message(
        n,
        channel,
        to.get(channel, "house39@example.org"),
        None if channel in ("social", "webhook") else "c39",
        7,
        1,
        "Broadband fault at 39 Mill Road. Details: https://status.example/incidents/7.html",
        "Broadband fault" if channel == "email" else None,
    )


EXPECTED = [(200, Outcome.DELIVERED), (429, Outcome.RETRYABLE), (503, Outcome.RETRYABLE),
            (500, Outcome.RETRYABLE), (400, Outcome.PERMANENT), (404, Outcome.PERMANENT),
            ("timeout", Outcome.RETRYABLE)]  # fmt: skip


@pytest.mark.parametrize("channel", ["sms", "social", "webhook"])
@pytest.mark.parametrize(("behaviour", "outcome"), EXPECTED)
def test_http_channels_keep_the_contract(
    channel: str, behaviour: Behaviour, outcome: Outcome, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    notifier = http_notifier(channel, behaviour)
    [result] = notifier.send([message(channel)])
    assert result.outcome is outcome, result
    assert result.delivery_id == 1
    if outcome is Outcome.DELIVERED:
        assert result.ref
    for text in (result.detail, repr(notifier), repr(result), caplog.text):
        assert SECRET not in text


def held_for(asks: int) -> Callable[[], bool]:
    """A claim held for the first `asks` questions, lapsed after (a worker that stalled)."""
    lock, left = threading.Lock(), [asks]

    def held() -> bool:
        with lock:
            left[0] -= 1
            return left[0] >= 0

    return held


@pytest.mark.parametrize("channel", ["sms", "social", "webhook"])
def test_http_channels_send_nothing_once_the_claim_has_lapsed(channel: str) -> None:
    requests: list[httpx.Request] = []
    notifier = http_notifier(channel, 200, requests)
    results = notifier.send([message(channel, n) for n in range(5)], held=held_for(2))
    outcomes = sorted(r.outcome.value for r in results)
    assert outcomes == ["delivered"] * 2 + ["unsent"] * 3
    assert len(requests) == 2  # the provider never saw the other three


@pytest.mark.integration
def test_email_sends_nothing_once_the_claim_has_lapsed() -> None:
    with smtp_server() as (url, mailbox):
        notifier = EmailSender(
            SmtpServer.from_url(url), "alerts@isp.example", limiter=RateLimiter(1000)
        )
        results = notifier.send([message("email", n) for n in range(4)], held=held_for(1))
    assert sorted(r.outcome.value for r in results) == ["delivered"] + ["unsent"] * 3
    assert len(mailbox.received) == 1


class OneConnectionRefused(EmailSender):
    """An SMTP server that takes three connections at a time: the fourth is refused."""

    def __init__(self, server: SmtpServer) -> None:
        super().__init__(server, "alerts@isp.example", limiter=RateLimiter(20), concurrency=4)
        self.opened = 0
        self.lock = threading.Lock()

    def connect(self) -> smtplib.SMTP:
        with self.lock:
            self.opened += 1
            if self.opened == 1:
                raise smtplib.SMTPConnectError(421, b"too many connections")
        return super().connect()


@pytest.mark.integration
def test_a_refused_connection_costs_only_its_own_share_of_the_batch() -> None:
    # Sessions took the next message from one queue: the one that could not connect
    # refused at once while the others waited their turn at the rate, so it took almost
    # every message and nothing was sent. Each connection has its own share again.
    with smtp_server() as (url, mailbox):
        notifier = OneConnectionRefused(SmtpServer.from_url(url))
        results = notifier.send([message("email", n) for n in range(40)])
    outcomes = [r.outcome for r in results]
    assert outcomes.count(Outcome.DELIVERED) == 30 and len(mailbox.received) == 30
    assert outcomes.count(Outcome.RETRYABLE) == 10
    assert notifier.opened == 4  # one try for the refused share, not one per message


SMTP_EXPECTED = [("250", Outcome.DELIVERED), ("421 4.3.2 try later", Outcome.RETRYABLE),
                 ("452 4.2.2 mailbox full", Outcome.RETRYABLE),
                 ("550 5.1.1 no such user", Outcome.PERMANENT),
                 ("553 5.1.3 bad address", Outcome.PERMANENT)]  # fmt: skip


@pytest.mark.integration
@pytest.mark.parametrize(("reply", "outcome"), SMTP_EXPECTED)
def test_email_keeps_the_contract(
    reply: str, outcome: Outcome, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with smtp_server() as (url, mailbox):
        if reply != "250":
            mailbox.refuse["house39@example.org"] = reply
        notifier = EmailSender(
            SmtpServer.from_url(url), "alerts@isp.example", limiter=RateLimiter(1000)
        )
        [result] = notifier.send([message("email")])
    assert result.outcome is outcome, result
    assert len(mailbox.received) == (1 if outcome is Outcome.DELIVERED else 0)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP server that accepts connections and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", free_port()))
    listener.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def test_email_timeout_is_retryable_and_no_password_shows(
    silent_server: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = SmtpServer.from_url(f"smtp://alerts:{SECRET}@127.0.0.1:{silent_server}")
    notifier = EmailSender(server, "alerts@isp.example", limiter=RateLimiter(1000), timeout=0.5)
    results = notifier.send([message("email", n) for n in (1, 2)])
    assert [r.outcome for r in results] == [Outcome.RETRYABLE, Outcome.RETRYABLE]
    for text in (*[r.detail for r in results], repr(notifier), repr(server), caplog.text):
        assert SECRET not in text


@pytest.mark.integration
def test_email_login_refused_shows_no_password(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with smtp_server() as (url, mailbox):
        # aiosmtpd offers no AUTH without TLS: the login fails, the password must not leak.
        server = SmtpServer.from_url(url.replace("smtp://", f"smtp://alerts:{SECRET}@"))
        notifier = EmailSender(server, "alerts@isp.example", limiter=RateLimiter(1000))
        [result] = notifier.send([message("email")])
    assert result.outcome is Outcome.RETRYABLE and not mailbox.received
    assert SECRET not in result.detail + repr(notifier) + caplog.text


def test_an_unreachable_provider_is_retryable() -> None:
    port = free_port()  # nothing listens here
    sms = SmsSender(
        "AC" + "1" * 32, SECRET, "+15005550006", f"http://127.0.0.1:{port}", RateLimiter(1000)
    )
    email = EmailSender(SmtpServer.from_url(f"smtp://127.0.0.1:{port}"), "a@isp.example")
    social = SocialSender(f"http://127.0.0.1:{port}", SECRET, limiter=RateLimiter(1000))
    for notifier, channel in ((sms, "sms"), (email, "email"), (social, "social")):
        [result] = notifier.send([message(channel)])
        assert result.outcome is Outcome.RETRYABLE, (channel, result)
        assert SECRET not in result.detail


def test_a_mastodon_answer_without_an_id_is_not_counted_as_posted() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, text="<html>"))
    social = SocialSender(
        "https://social.example", SECRET, limiter=RateLimiter(1000), transport=transport
    )
    [result] = social.send([message("social")])
    assert result.outcome is Outcome.RETRYABLE


def test_social_posts_thread_within_a_batch_and_carry_the_ledger_key() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": str(100 + len(seen))})

    social = SocialSender(
        "https://social.example",
        SECRET,
        limiter=RateLimiter(1000),
        transport=httpx.MockTransport(handle),
    )
    first = message("social")
    second = Message(2, "social", "public", None, 7, 2, "Restored in Mill Road.", reply_to=None)
    dm = Message(3, "social", "@jo@social.example", "c39", 7, 2, "Restored.")
    social.send([first, second, dm])
    forms = [dict(httpx.QueryParams(r.content.decode())) for r in seen]
    assert "in_reply_to_id" not in forms[0]
    assert forms[1]["in_reply_to_id"] == "101"  # the second update answers the first
    assert forms[2]["visibility"] == "direct" and forms[2]["status"].startswith("@jo@social")
    assert "in_reply_to_id" not in forms[2]
    assert [r.headers["Idempotency-Key"] for r in seen] == [
        "7-1-public-social",
        "7-2-public-social",
        "7-2-c39-social",
    ]
    assert all(r.headers["Authorization"] == f"Bearer {SECRET}" for r in seen)


def test_a_post_over_500_characters_fails_for_good_without_a_request() -> None:
    calls: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200)

    transport = httpx.MockTransport(answer)
    social = SocialSender(
        "https://social.example", SECRET, limiter=RateLimiter(1000), transport=transport
    )
    long = Message(1, "social", "public", None, 7, 1, "x" * 501)
    [result] = social.send([long])
    assert result.outcome is Outcome.PERMANENT and calls == []


def test_webhook_posts_the_body_with_a_repeatable_delivery_header() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202)

    hook = WebhookSender(
        [PARTNER], limiter=RateLimiter(1000), transport=httpx.MockTransport(handle)
    )
    body = json.dumps({"incident": {"id": "7"}})
    gone = Message(2, "webhook", partner_key("https://old.example/"), None, 7, 1, body)
    results = hook.send([Message(1, "webhook", partner_key(PARTNER), None, 7, 1, body), gone])
    assert [r.outcome for r in results] == [Outcome.DELIVERED, Outcome.PERMANENT]
    assert len(seen) == 1 and str(seen[0].url) == PARTNER
    assert seen[0].headers["X-Forewarn-Delivery"] == "7-1-public-webhook"
    assert json.loads(seen[0].content) == {"incident": {"id": "7"}}
    assert SECRET not in repr(hook) and SECRET not in partner_key(PARTNER)


def test_sms_segments_follow_gsm7_and_ucs2() -> None:
    assert segments("a" * 160) == 1 and segments("a" * 161) == 2 and segments("a" * 306) == 2
    assert segments("€" * 80) == 1 and segments("€" * 81) == 2  # two septets each
    curly = "\u2019"  # a curly apostrophe makes the whole text UCS-2
    assert segments(curly * 70) == 1 and segments(curly * 71) == 2
    assert segments("a" * 70 + curly) == 2


def test_sms_rate_defaults_to_what_twilio_documents_for_the_sender() -> None:
    assert default_rate("+441632960000") == 1.0
    assert default_rate("72345") == 100.0
    assert default_rate("MG" + "0" * 32) == 100.0


def test_the_rate_limiter_keeps_the_average_rate() -> None:
    clock = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock[0] += seconds

    limiter = RateLimiter(10, burst=1, clock=lambda: clock[0], sleep=sleep)
    for _ in range(21):
        limiter.acquire()
    assert clock[0] == pytest.approx(2.0)  # 20 units beyond the burst at 10 a second
    limiter.acquire(5)  # five segments cost five units
    assert clock[0] == pytest.approx(2.5)


def test_message_id_is_stable_per_ledger_key() -> None:
    one = message_id("7-1-c39-email", "alerts@isp.example")
    assert one == message_id("7-1-c39-email", "alerts@isp.example")
    assert one != message_id("7-2-c39-email", "alerts@isp.example")
    assert one.startswith("<7-1-c39-email.") and one.endswith("@isp.example>")


def test_email_has_both_parts_one_click_unsubscribe_and_escaped_html() -> None:
    notifier = EmailSender(
        SmtpServer("127.0.0.1", 25, False, None, None),
        "alerts@isp.example",
        unsubscribe_url=lambda customer: f"https://isp.example/unsubscribe/{customer}/sig",
    )
    hostile = Message(1, "email", "a@example.org", "c39", 7, 1,
                      "Cause: <script>alert(1)</script>\n\nSee https://status.example/i/7.html",
                      "Fault")  # fmt: skip
    raw = notifier.compose(hostile)
    mail = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(mail, EmailMessage) and not mail.defects
    assert (
        raw
        == notifier.compose(hostile).replace(  # the same row makes the same bytes
            str(mail["Date"]).encode(), str(mail["Date"]).encode()
        )
        or b"Date:" in raw
    )
    assert mail["Message-ID"] == message_id(hostile.key, "alerts@isp.example")
    assert mail["List-Unsubscribe"] == "<https://isp.example/unsubscribe/c39/sig>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text, html = (part.get_content() for part in mail.iter_parts())
    assert "<script>" in text and "<script>" not in html and "&lt;script&gt;" in html
    assert '<a href="https://status.example/i/7.html">' in html
    assert mail["Date"].datetime.tzinfo is not None


def test_email_subjects_in_any_language_and_hostile_addresses() -> None:
    notifier = EmailSender(SmtpServer("127.0.0.1", 25, False, None, None), "a@isp.example")
    spanish = Message(
        1, "email", "a@example.org", "c1", 7, 1, "Línea\r\nX: y", "Avería en\r\nBcc: x@evil"
    )
    mail = email.message_from_bytes(notifier.compose(spanish), policy=email.policy.default)
    assert mail["Subject"] == "Avería en  Bcc: x@evil" and mail["Bcc"] is None
    plain = mail.get_body(("plain",))
    assert plain is not None and plain.get_content() == "Línea\r\nX: y"
    for hostile in ("a@example.org\r\nBcc: x@evil", "a@example.org, b@evil", "ä@example.org"):
        bad = Message(2, "email", hostile, "c1", 7, 1, "x", "y")
        [result] = notifier.send([bad])
        assert result.outcome is Outcome.PERMANENT and "not a valid" in result.detail
