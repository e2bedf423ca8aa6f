"""Fan-out through the whole path (ledger claim, template, send, record) to local
servers, against the raw ceiling of the clients and against Apprise, in one run:
`python bench/bench_fanout.py --deliveries 100000`.

The servers run in their own processes. Raw ceilings: the `twilio` library sending
straight to the same endpoint, one message after another; `smtplib` over one reused
connection. Apprise sends the same messages to the same servers (its Twilio plugin
pointed at the local endpoint and its own 0.2 s pause between requests turned off)."""

from __future__ import annotations

import argparse
import resource
import smtplib
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.local_servers import ServerProcess, server_process  # noqa: E402
from forewarn.config import Settings  # noqa: E402
from forewarn.context import Context  # noqa: E402
from forewarn.notifiers.delivery import BATCH, Rules, deliver_batch  # noqa: E402
from forewarn.quiet import AWAKE  # noqa: E402
from testkit.ledger_data import fill_ledger, phone  # noqa: E402

ACCOUNT = "AC" + "0123456789abcdef" * 2
SENDER = "alerts@millroad.example"
BODY = (
    "Mill Road Fibre: broadband fault at 12 Mill Road. Engineers on it. No fix time yet. "
    "Next update 16:05. status.millroad.example"
)


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds else float("inf")


def timed(send: Callable[[int], None], count: int) -> float:
    started = time.perf_counter()
    for i in range(count):
        send(i)
    return rate(count, time.perf_counter() - started)


def raw_twilio(url: str, count: int) -> float:
    """The twilio library alone, its own HTTP client, one message after another."""
    from twilio.rest import Client

    client = Client(ACCOUNT, "benchtoken")
    client.api.base_url = url
    return timed(
        lambda i: client.messages.create(to=phone(i), from_="+15005550006", body=BODY), count
    )


def raw_twilio_httpx(url: str, count: int) -> float:
    """The twilio library over the same httpx client forewarn gives it."""
    import httpx
    from twilio.rest import Client

    from forewarn.channels.sms import HttpxTwilioClient

    client = Client(ACCOUNT, "benchtoken", http_client=HttpxTwilioClient(httpx.Client()))
    client.api.base_url = url
    return timed(
        lambda i: client.messages.create(to=phone(i), from_="+15005550006", body=BODY), count
    )


def raw_smtp(url: str, count: int) -> float:
    """smtplib over one reused connection, sending messages of the same shape and size as
    forewarn's (text and HTML parts), built beforehand so only the sending is timed."""
    from forewarn.channels.base import Message
    from forewarn.channels.email import EmailSender, SmtpServer

    composer = EmailSender(SmtpServer("127.0.0.1", 25, False, None, None), SENDER)
    mails = [
        composer.compose(Message(i, "email", f"house{i}@example.org", f"r{i}", 9, 1, BODY, "Fault"))
        for i in range(count)
    ]
    host, port = url.removeprefix("smtp://").split(":")
    with smtplib.SMTP(host, int(port)) as smtp:
        return timed(lambda i: smtp.sendmail(SENDER, [f"house{i}@example.org"], mails[i]), count)


def apprise_sms(url: str, count: int) -> float:
    import apprise
    from apprise.plugins.twilio import NotifyTwilio

    NotifyTwilio.notify_sms_url = url + "/2010-04-01/Accounts/{sid}/Messages.json"
    NotifyTwilio.request_rate_per_sec = 0

    def send(i: int) -> None:
        notifier = apprise.Apprise()
        notifier.add(f"twilio://{ACCOUNT}:benchtoken@15005550006/{phone(i).lstrip('+')}")
        assert notifier.notify(body=BODY)

    return timed(send, count)


def apprise_email(url: str, count: int) -> float:
    import apprise

    host_port = url.removeprefix("smtp://")

    def send(i: int) -> None:
        notifier = apprise.Apprise()
        notifier.add(f"mailto://{host_port}?mode=insecure&from={SENDER}&to=house{i}@example.org")
        assert notifier.notify(body=BODY, title="Fault")

    return timed(send, count)


def forewarn_path(
    channel: str, server: ServerProcess, count: int, directory: Path, concurrency: int
) -> float:
    """Queue `count` deliveries on one channel and dispatch them all through the ledger."""
    db = directory / f"fanout-{channel}.db"
    settings = Settings(
        db_url=f"sqlite:///{db}",
        outbox=directory / "outbox",
        journal_dir=directory / "journal",
        operator_name="Mill Road Fibre",
        site_url="https://status.millroad.example",
        twilio_account_sid=ACCOUNT,
        twilio_auth_token="benchtoken",
        sms_from="+15005550006",
        twilio_api_url=server.url if channel == "sms" else "http://127.0.0.1:9",
        sms_rate=1e9,
        smtp_url=server.url if channel == "email" else None,
        email_from=SENDER if channel == "email" else None,
        email_rate=1e9,
        send_concurrency=concurrency,
        _env_file=None,  # type: ignore[call-arg]
    )  # type: ignore[arg-type]
    ctx = Context.build(settings)
    now = datetime.now(UTC)
    fill_ledger(ctx.engine, count, (channel,), now)
    before = server.count()
    rules = Rules(night=AWAKE)  # the real clock may be at night: nothing waits for it
    started = time.perf_counter()
    while deliver_batch(
        ctx.engine, ctx.registry.senders, ctx.brand, now, BATCH, rules,
        ctx.registry.journal,
    ).claimed:  # fmt: skip
        pass
    seconds = time.perf_counter() - started
    held = server.count() - before
    assert held == count, f"{channel}: the server holds {held} of {count}"
    return rate(count, seconds)


def main() -> None:
    """Measure and print each figure and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--deliveries", type=int, default=100_000)
    parser.add_argument("--raw", type=int, default=5_000, help="messages for each raw ceiling")
    parser.add_argument("--apprise", type=int, default=1_000, help="messages for Apprise")
    # On loopback there is no network wait to overlap: one text in flight is fastest (more
    # threads only contend for the interpreter lock), while two SMTP connections let the
    # client compose while the server parses.
    parser.add_argument("--sms-concurrency", type=int, default=1)
    parser.add_argument("--email-concurrency", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="forewarn-fanout-") as tmp:
        directory = Path(tmp)
        figures: dict[str, float] = {}
        for channel, kind in (("sms", "twilio"), ("email", "smtp")):
            with server_process(kind) as server:
                raw = raw_twilio if channel == "sms" else raw_smtp
                figures[f"{channel} raw"] = raw(server.url, args.raw)
                if channel == "sms":
                    figures["sms raw httpx"] = raw_twilio_httpx(server.url, args.raw)
                    print(
                        f"sms: the twilio library over forewarn's httpx client alone "
                        f"{figures['sms raw httpx']:,.0f}/s",
                        flush=True,
                    )
                through_apprise = apprise_sms if channel == "sms" else apprise_email
                figures[f"{channel} apprise"] = through_apprise(
                    server.url, args.apprise if channel == "sms" else args.apprise // 4
                )
                concurrency = args.sms_concurrency if channel == "sms" else args.email_concurrency
                figures[f"{channel} forewarn"] = forewarn_path(
                    channel, server, args.deliveries, directory, concurrency
                )
            print(
                f"{channel}: forewarn {figures[f'{channel} forewarn']:,.0f}/s through the ledger "
                f"({args.deliveries:,} deliveries, {concurrency} in flight); "
                f"raw client {figures[f'{channel} raw']:,.0f}/s; "
                f"Apprise {figures[f'{channel} apprise']:,.0f}/s; forewarn / raw = "
                f"{figures[f'{channel} forewarn'] / figures[f'{channel} raw']:.0%}, forewarn / "
                f"Apprise = {figures[f'{channel} forewarn'] / figures[f'{channel} apprise']:.1f}x",
                flush=True,
            )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of the sending process: {peak:,.0f} MB")


if __name__ == "__main__":
    main()
