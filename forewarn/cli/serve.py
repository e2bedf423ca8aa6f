"""`forewarn serve`: the receiver and the flows' beats in one process, stopped cleanly; and
the check that the site folder is forewarn's (serve and run-once both publish there)."""

from __future__ import annotations

import contextvars
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, cast

import typer
from rich.markup import escape

from forewarn.cli.ops import build_context
from forewarn.cli.terminal import console, fail
from forewarn.config import Settings
from forewarn.context import Context

if TYPE_CHECKING:
    from forewarn.incidents.replies import Voice


def serve(
    host: Annotated[str, typer.Option(help="Address for the HTTP receiver.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for the HTTP receiver.")] = 8000,
    interval: Annotated[int, typer.Option(help="Seconds between detection cycles.")] = 60,
    publish_every: Annotated[
        int, typer.Option(help="Seconds between scheduled rebuilds of the public site.")
    ] = 300,
    dispatch_every: Annotated[
        int, typer.Option(help="Seconds between dispatch runs (retries, held messages).")
    ] = 30,
    follow_up_every: Annotated[
        int, typer.Option(help="Seconds between follow-up passes (promised updates, ETR watch).")
    ] = 60,
    mentions_every: Annotated[
        int, typer.Option(help="Seconds between reads of social mentions.")
    ] = 120,
    flows: Annotated[
        bool,
        typer.Option(
            help="Also run the flows; --no-flows serves only the receiver, for when Prefect "
            "workers run the deployments of prefect.yaml."
        ),
    ] = True,
) -> None:
    """Run the flows on the schedules of prefect.yaml, and the HTTP receiver.

    The receiver takes Alertmanager's webhooks, Twilio's callbacks and unsubscribe links,
    and serves the site; all in one process.
    """
    import uvicorn
    from prefect import serve as prefect_serve
    from prefect.deployments.runner import RunnerDeployment

    from forewarn.flows import (
        detection_cycle,
        dispatch,
        follow_up_cycle,
        given_context,
        mentions,
        publication,
    )
    from forewarn.receiver import TwilioHooks, create_app
    from forewarn.receiver_forms import FollowDesk
    from forewarn.store import secret_key, writing

    settings = Settings()
    site_is_ours(settings)
    ctx = build_context(settings, flows)  # says once which channels fall back to the outbox
    token = settings.webhook_token.get_secret_value() if settings.webhook_token else None
    if token is None:
        console.print("FOREWARN_WEBHOOK_TOKEN is not set: /hooks/alertmanager is off.")
    twilio = None
    if settings.twilio_auth_token and settings.public_url:
        voice = _voice(ctx, settings)
        twilio = TwilioHooks(
            settings.twilio_auth_token.get_secret_value(),
            settings.public_url,
            voice,
            settings.phone_region,
        )
    else:
        console.print("TWILIO_AUTH_TOKEN or FOREWARN_PUBLIC_URL unset: Twilio hooks are off.")
    unsubscribe_key = writing(ctx.engine, lambda conn: secret_key(conn, "unsubscribe"), "key")
    if settings.inbound_smtp:
        _read_email_replies(ctx, settings)
    follows = None
    if settings.public_url:
        # Confirmation links name the receiver as the internet reaches it.
        follows = FollowDesk(
            settings.phone_region, settings.time_zone, unsubscribe_key, settings.site_url,
            policy=ctx.policy,  # FOREWARN_REPORTS_MIN and the privacy floor, as configured
        )  # fmt: skip
    else:
        console.print("FOREWARN_PUBLIC_URL is not set: following a place (/follow) is off.")
    receiver = create_app(
        ctx.engine,
        token,
        settings.max_body_bytes,
        settings.site_dir,
        twilio=twilio,
        unsubscribe_key=unsubscribe_key,
        follows=follows,
    )
    server = uvicorn.Server(uvicorn.Config(receiver, host=host, port=port, log_level="warning"))
    if not flows:
        console.print(f"receiver on http://{host}:{port}; the flows run elsewhere")
        server.run()
        return
    signal.signal(signal.SIGTERM, _stop_on_signal)
    threading.Thread(target=server.run, name="receiver", daemon=True).start()
    console.print(f"receiver on http://{host}:{port}; detection cycle every {interval} s")
    if os.environ.get("PREFECT_API_URL"):
        # A Prefect server schedules the runs (and shows them in its UI).
        # to_deployment is typed as "maybe a coroutine"; called from sync code it is not.
        prefect_serve(
            cast(
                RunnerDeployment,
                detection_cycle.to_deployment("detection-cycle", interval=interval),
            ),
            cast(
                RunnerDeployment,
                publication.to_deployment("publication", interval=publish_every),
            ),
            cast(RunnerDeployment, dispatch.to_deployment("dispatch", interval=dispatch_every)),
            cast(
                RunnerDeployment,
                follow_up_cycle.to_deployment("follow-up", interval=follow_up_every),
            ),
            cast(RunnerDeployment, mentions.to_deployment("mentions", interval=mentions_every)),
        )
        return
    # No Prefect server: its temporary one cannot schedule, so forewarn keeps the beat itself.
    console.print("no PREFECT_API_URL: running the flows from this process (no Prefect scheduler)")
    # Each flow keeps its own beat in its own thread: a slow site rebuild or a mentions read
    # never delays the cycle that sees a fault.
    beats = [
        (follow_up_cycle, follow_up_every),
        (mentions, mentions_every),
        (publication, publish_every),
    ]
    # The first cycle starts Prefect's temporary server; the other threads then share it
    # (started together, each would try to start its own on the same port).
    with given_context(ctx):
        _keep_beat(detection_cycle, interval, once=True)
        for run, every in beats:
            # Each beat's thread runs in a copy of this one's context: the given context.
            beat = contextvars.copy_context()
            threading.Thread(target=beat.run, args=(_keep_beat, run, every), daemon=True).start()
        _keep_beat(detection_cycle, interval)


def _voice(ctx: Context, settings: Settings) -> Voice:
    """Who answers customers who write back, and where a stranger is pointed."""
    from forewarn.channels.base import bare
    from forewarn.incidents.replies import Voice

    site = bare(settings.site_url.rstrip("/"))
    return Voice(settings.operator_name, settings.help_text, ctx.policy, settings.time_zone, site)


def _read_email_replies(ctx: Context, settings: Settings) -> None:
    """Listen for customers' emails back on FOREWARN_INBOUND_SMTP (for as long as the
    process runs); answers go through the email channel's server."""
    from email.utils import parseaddr

    from forewarn.channels.email import CHANNEL, EmailSender
    from forewarn.mailbox import Mailbox, listen

    if not (settings.inbound_authserv and settings.email_from):
        console.print(
            "[red]FOREWARN_INBOUND_SMTP is set but FOREWARN_INBOUND_AUTHSERV or "
            "FOREWARN_EMAIL_FROM is not: no email reply is read[/red] (an email's From is "
            "anyone's to write; forewarn acts only on what your mail server's DMARC check "
            "vouches for, in mail sent to FOREWARN_EMAIL_FROM)"
        )
        return
    sender = ctx.registry.senders.get(CHANNEL.name)
    answers = sender if isinstance(sender, EmailSender) else None
    voice = _voice(ctx, settings)
    ours = [parseaddr(settings.email_from)[1]]
    mailbox = Mailbox(
        ctx.engine, voice, answers, settings.max_body_bytes, ours, settings.inbound_authserv
    )
    listen(mailbox, str(settings.inbound_smtp))
    said = "answered by email" if answers else "not answered (no email channel)"
    console.print(f"email replies read on smtp://{settings.inbound_smtp}, {said}")


def site_is_ours(settings: Settings) -> None:
    """Refuse to start when FOREWARN_SITE_DIR holds someone else's files."""
    from forewarn.status_page.publish import NotOurs, check_site_dir

    try:
        check_site_dir(settings.site_dir)
    except NotOurs as err:
        fail(str(err))


# Set when `serve` is asked to stop: the beats in other threads start no new run.
_stopping = threading.Event()


def _stop_on_signal(signum: int, _frame: object) -> None:
    """SIGTERM: leave as after Ctrl-C, so that the exit handlers run (Prefect stops its
    temporary server in one; killed outright, `serve` would leave that server running,
    orphaned). A run cut short is a crash the delivery ledger is built to survive."""
    _stopping.set()  # the other beats start no new run meanwhile
    console.print(f"{signal.Signals(signum).name}: stopping")
    raise SystemExit(0)


def _keep_beat(run: Callable[[], object], every: float, once: bool = False) -> None:
    """Run a flow every `every` seconds until `serve` stops (or once); a failed run is
    reported, not fatal."""
    while not _stopping.is_set():
        started = time.monotonic()
        try:
            run()
        except Exception as err:  # one failed run must not stop the service
            console.print(f"[red]{getattr(run, 'name', 'flow')} failed:[/red] {escape(str(err))}")
        if once or _stopping.wait(max(every - (time.monotonic() - started), 0.5)):
            return
